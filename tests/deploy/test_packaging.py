"""`make run` installs only what the service needs; `make test` the rest; the image the real
warehouse drivers without the test stand-ins."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
HEAVY = (
    "pyspark",
    "fakesnow",
    "pytest",
    "hypothesis",
    "schemathesis",
    "snowflake",
    "google-cloud",
    "databricks",
    "datadog",
)


def _names(reqs: list[str]) -> set[str]:
    return {re.split(r"[<>=\[ ;]", r, maxsplit=1)[0].lower() for r in reqs}


def _pip_installs(target: str) -> list[str]:
    out = subprocess.run(["make", "-n", "-B", target], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if "pip install" in line and "--upgrade pip" not in line]


def test_make_run_installs_the_service_alone():
    (install,) = _pip_installs("run")
    assert install.rstrip().endswith("-e ."), install  # no extras
    core = _names(PYPROJECT["project"]["dependencies"])
    assert not [n for n in core if n.startswith(HEAVY)], core


def test_make_test_installs_dev_drivers_and_stand_ins():
    installs = " ".join(_pip_installs("test"))
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert "'.[test]'" in installs
    wanted = _names(extras["test"][0].split("[", 1)[1].rstrip("]").split(","))
    assert wanted == {"dev", "warehouses", "standins", "datadog"}
    assert {"pytest", "fakesnow", "pyspark"} <= _names(extras["dev"] + extras["standins"])


def test_warehouses_extra_is_the_real_drivers_only_and_the_image_installs_it():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert _names(extras["warehouses"]) == {
        "snowflake-connector-python",
        "google-cloud-bigquery",
        "databricks-sql-connector",
    }
    docker = (REPO / "Dockerfile").read_text()
    (install,) = [line for line in docker.splitlines() if "pip install" in line]
    assert "warehouses" in install and "standins" not in install and "dev" not in install and "test" not in install


BLOCKER = """
import sys
BLOCKED = {blocked!r}
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in BLOCKED or name.startswith('google.cloud'):
            raise ImportError(f'{{name}} is not installed by make run')
        return None
sys.meta_path.insert(0, Block())
sys.argv = ['idr', *sys.argv[1:]]
from app.cli import main
main()
"""


def test_the_service_runs_without_any_extra(tmp_path):
    """A FULL run, a dry run and the review commands with every extra's packages unimportable."""
    blocked = [
        "pyspark",
        "fakesnow",
        "snowflake",
        "databricks",
        "datadog_api_client",
        "pytest",
        "schemathesis",
        "hypothesis",
        "py4j",
    ]
    code = BLOCKER.format(blocked=blocked)
    db = str(tmp_path / "d.duckdb")
    env_cmds = [
        ["demo", "--db", db, "--records", "300"],
        ["run", "--db", db, "--mode", "FULL", "-q"],
        ["run", "--db", db, "--mode", "INCR", "--dry-run", "-q"],
        ["dry-runs", "list", "--db", db],
        ["metrics", "export", "--provider", "stdout", "--db", db],
    ]
    for args in env_cmds:
        r = subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", "IDR_STATE_DB_URL": f"sqlite:///{tmp_path}/s.db", "IDR_DUCKDB_THREADS": "1"},
        )
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            code.replace(
                "from app.cli import main\nmain()", "from app.main import create_app\ncreate_app()\nprint('ok')"
            ),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "IDR_DUCKDB_PATH": db},
    )
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr
