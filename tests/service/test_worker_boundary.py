"""Workers are a leaf (issue 19, item 13).

- Nothing in ``app/`` imports ``workers/``: the services own the task code
  (app.services.tasks) and the runtime; workers only register and run them.
- Importing the worker module builds no Celery app.
- The embedded worker and a Celery worker run the same tasks with the settings they were
  given, not with whatever the environment or the defaults say: both are started with
  non-default paths while the environment points at decoys, and each run must land in the
  given warehouse and state DB and nowhere else.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.core.settings import Settings, get_settings
from app.demo.generator import demo_config
from app.platforms.duckdb import DuckDBAdapter
from tests.service.conftest import RECORDS, make_settings, wait_run
from tests.service.test_celery import REDIS, redis_queue  # noqa: F401

REPO = Path(__file__).resolve().parents[2]


def _imports(path: Path, package: str) -> list[tuple[int, str]]:
    """Every module a file imports (top level or inside functions), relative ones resolved."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], *([base] if base else [])])
            out += [(node.lineno, base)] + [(node.lineno, ".".join(filter(None, (base, a.name)))) for a in node.names]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            out.append((node.lineno, node.args[0].value))
    return out


def _worker_imports_under(root: Path) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(REPO).with_suffix("")
        package = ".".join(rel.parts[:-1] if rel.name != "__init__" else rel.parts[:-1])
        for line, mod in _imports(path, package):
            if mod == "workers" or mod.startswith("workers."):
                bad.append(f"{path.relative_to(REPO)}:{line} imports {mod}")
    return bad


def test_the_import_walk_sees_every_kind_of_import(tmp_path):
    """The checker itself must be able to fail."""
    pkg = tmp_path / "app" / "services"
    pkg.mkdir(parents=True)
    (pkg / "x.py").write_text(
        "import workers\n"
        "def f():\n    from workers.celery_app import make_celery\n"
        "import importlib\nimportlib.import_module('workers.celery_app')\n"
    )
    found = [m for _, m in _imports(pkg / "x.py", "app.services")]
    assert found.count("workers") == 1 and "workers.celery_app" in found and "workers.celery_app.make_celery" in found
    (pkg / "y.py").write_text("from ..main import create_app\n")
    assert "app.main.create_app" in [m for _, m in _imports(pkg / "y.py", "app.services")]


def test_app_never_imports_workers():
    assert (REPO / "app" / "services" / "runtime.py").exists()
    assert _worker_imports_under(REPO / "app") == []


def test_importing_the_worker_module_builds_no_celery_app():
    # A fresh interpreter: nothing else has asked for the command line's app yet.
    code = (
        "import sys, celery\n"
        "built = []\n"
        "orig = celery.Celery.__init__\n"
        "def spy(self, *a, **k):\n    built.append(1); orig(self, *a, **k)\n"
        "celery.Celery.__init__ = spy\n"
        "import workers.celery_app as m\n"
        "assert not built, 'a Celery app was built at import'\n"
        "assert m.app is m.app and len(built) == 1  # the celery CLI's lookup builds it, once\n"
        "assert 'idr.run' in m.app.tasks\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------ same settings in both workers
@pytest.fixture
def decoy_env(tmp_path, monkeypatch) -> dict[str, str]:
    """The environment points elsewhere: anything built from global settings goes there."""
    decoy = tmp_path / "decoy"
    env = {
        "IDR_DUCKDB_PATH": str(decoy / "decoy.duckdb"),
        "IDR_STATE_DB_URL": f"sqlite:///{decoy}/decoy_state.db",
        "IDR_CELERY_QUEUE": "idr-decoy-queue",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()
    assert not decoy.exists(), f"something used the environment's settings: {list(decoy.iterdir())}"
    assert not (tmp_path / "idr.duckdb").exists() and not (tmp_path / "idr_state.db").exists()


def _landed(settings: Settings, run_id: str) -> tuple[str, str]:
    """(status in the settings' warehouse run_history, status in the settings' state DB)."""
    with DuckDBAdapter.from_path(settings.duckdb_path) as a:
        wh = a.scalar("SELECT status FROM idr_out.run_history WHERE run_id = $r", {"r": run_id})
    db = settings.state_db_url.removeprefix("sqlite:///")
    with sqlite3.connect(db) as c:
        (st,) = c.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
    return wh, st


def _copy(warehouse_path: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(warehouse_path.read_bytes())
    return dst


def _full_run(client) -> str:
    assert client.put("/v1/config", json=demo_config(records=RECORDS)).status_code == 200
    r = client.post("/v1/runs", json={"mode": "FULL"})
    assert r.status_code == 202, r.text
    return r.json()["id"]


def test_embedded_worker_runs_with_the_settings_given_to_create_app(app_factory, warehouse_path, tmp_path, decoy_env):
    wh = _copy(warehouse_path, tmp_path / "given" / "my-warehouse.duckdb")
    settings = make_settings(
        tmp_path / "given", wh, state_db_url=f"sqlite:///{tmp_path}/given/my-state.db", duckdb_keep_open_seconds=0
    )
    client = app_factory(settings)
    run = wait_run(client, _full_run(client))
    assert run["status"] in ("SUCCESS", "SUCCESS_WITH_WARNINGS"), run
    assert _landed(settings, run["id"]) == (run["status"], run["status"])


def _worker_kwargs(settings: Settings) -> str:
    kw = {}
    for name, value in settings.model_dump().items():
        kw[name] = value.get_secret_value() if hasattr(value, "get_secret_value") else value
    return json.dumps(kw, default=str)


# The explicit bootstrap: a worker built from a Settings object, in a process whose
# environment says otherwise.
BOOT = """
import json, sys
from app.core.settings import Settings
from workers.celery_app import make_celery

app = make_celery(Settings(**json.loads(sys.argv[1])))
app.worker_main(["worker", "--pool", "threads", "--concurrency", "2", "--loglevel", "INFO",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"])
"""


def test_celery_worker_runs_with_the_settings_it_is_given(
    app_factory, warehouse_path, tmp_path, decoy_env, redis_queue  # noqa: F811
):
    wh = _copy(warehouse_path, tmp_path / "given" / "my-warehouse.duckdb")
    settings = make_settings(
        tmp_path / "given",
        wh,
        state_db_url=f"sqlite:///{tmp_path}/given/my-state.db",
        broker_url=REDIS,
        celery_queue=redis_queue,
        duckdb_keep_open_seconds=0,
    )
    client = app_factory(settings)  # migrates the given state DB
    assert client.get("/readyz").json()["mode"] == "celery"
    cwd = tmp_path / "worker-cwd"
    cwd.mkdir()
    log = tmp_path / "worker.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", BOOT, _worker_kwargs(settings)],
        cwd=cwd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while b"ready." not in log.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        run = wait_run(client, _full_run(client), timeout=90)
        assert run["status"] in ("SUCCESS", "SUCCESS_WITH_WARNINGS"), (run, log.read_text()[-3000:])
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
    assert _landed(settings, run["id"]) == (run["status"], run["status"])
    assert list(cwd.iterdir()) == [], "the worker wrote default-path files"
