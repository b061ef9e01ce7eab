"""API keys that just work: one state DB for the CLI and the service, an admin key minted on
the first start only, `idr api-keys list` without secrets, no key from the environment printed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from fastapi.testclient import TestClient

from app.core.settings import get_settings

REPO = Path(__file__).resolve().parents[2]
IDR = [sys.executable, "-m", "app.cli"]


def test_cli_and_service_share_the_state_db_by_default(cli, monkeypatch, demo_db, tmp_path):
    from app.main import create_app

    path, _ = demo_db
    monkeypatch.delenv("IDR_STATE_DB_URL")
    r = cli("api-keys", "create", "ci", "--scopes", "read", "--key-only", env={"IDR_DUCKDB_PATH": str(path)})
    assert r.exit_code == 0, r.output
    key = r.stdout.strip()
    assert (tmp_path / "idr_state.db").exists()  # the documented default, relative to the working directory
    get_settings.cache_clear()
    with TestClient(create_app(get_settings())) as client:
        resp = client.get("/v1/runs", headers={"Authorization": f"Bearer {key}"})
        assert resp.status_code == 200, resp.text


def test_make_run_uses_the_same_defaults_as_the_cli():
    out = subprocess.run(["make", "-n", "run"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    commands = out.replace("\\\n", " ").splitlines()  # continuation lines belong to their command
    serve = next(line for line in commands if "idr serve" in line)
    assert "IDR_STATE_DB_URL" not in serve and "IDR_DUCKDB_PATH" not in serve, serve


def test_api_keys_list_shows_use_but_never_secrets(cli, tmp_path):
    from app.main import create_app

    key = cli("api-keys", "create", "etl", "--scopes", "run", "--key-only").stdout.strip()
    cli("api-keys", "create", "old", "--scopes", "read")
    rows = json.loads(cli("api-keys", "list", "--format", "json").stdout)
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == {"etl", "old"} and by_name["etl"]["scopes"] == "run"
    assert by_name["etl"]["last_used_at"] is None and by_name["etl"]["created_at"]
    get_settings.cache_clear()
    with TestClient(create_app(get_settings())) as client:
        assert client.get("/v1/runs", headers={"X-API-Key": key}).status_code == 200
    rows = json.loads(cli("api-keys", "list", "--format", "json").stdout)
    assert next(r for r in rows if r["name"] == "etl")["last_used_at"]
    table = cli("api-keys", "list")
    assert table.exit_code == 0 and "etl" in table.stdout and key not in table.stdout and key[8:20] not in table.stdout
    assert cli("api-keys", "revoke", by_name["old"]["id"]).exit_code == 0
    assert [r["name"] for r in json.loads(cli("api-keys", "list", "--format", "json").stdout)] == ["etl"]
    assert {r["name"] for r in json.loads(cli("api-keys", "list", "--all", "--format", "json").stdout)} == {
        "etl",
        "old",
    }
    r = cli("api-keys", "revoke", "nope")
    assert r.exit_code == 1 and "api-keys list" in r.stderr


def _serve_once(env: dict[str, str], cwd: Path) -> str:
    """Start `idr serve` until it answers, then stop it; its output."""
    p = subprocess.Popen(
        [*IDR, "serve", "--port", "0"], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    deadline = time.monotonic() + 60
    assert p.stdout is not None
    try:
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Application startup complete" in line:
                break
    finally:
        p.send_signal(signal.SIGINT)
        rest, _ = p.communicate(timeout=30)
    out = "".join(lines) + rest
    assert "Application startup complete" in out, out
    return out


def _env(tmp_path: Path, db: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDR_")}
    env.update(IDR_DUCKDB_PATH=str(db), IDR_STATE_DB_URL=f"sqlite:///{tmp_path}/state.db", PYTHONPATH=str(REPO))
    env.update(IDR_DUCKDB_THREADS="1", IDR_DUCKDB_MEMORY_LIMIT="1GB", **extra)
    return env


def test_serve_mints_an_admin_key_on_the_first_start_only(tmp_path, demo_db):
    path, _ = demo_db
    first = _serve_once(_env(tmp_path, path), tmp_path)
    keys = set(re.findall(r"idr_[A-Za-z0-9_-]{20,}", first))
    assert len(keys) == 1, first
    (key,) = keys
    assert first.count(key) == 1  # the export line only (the curl lines use $IDR_API_KEY)
    second = _serve_once(_env(tmp_path, path), tmp_path)
    assert not re.findall(r"idr_[A-Za-z0-9_-]{20,}", second), second
    assert "idr api-keys create" in second and "1 active" in second
    from app.db.models import ApiKey
    from app.db.session import make_engine, make_session_factory, session_scope

    with session_scope(make_session_factory(make_engine(f"sqlite:///{tmp_path}/state.db"))) as s:
        assert s.query(ApiKey).count() == 1


def test_serve_never_prints_the_bootstrap_key(tmp_path, demo_db):
    path, _ = demo_db
    secret = "idr_from_the_environment_0123456789"
    client_key = "idr_client_key_from_the_environment_42"  # the CLI's own key, set in the same shell
    env = _env(tmp_path, path, IDR_BOOTSTRAP_API_KEY=secret, IDR_API_KEY=client_key)
    outs = [_serve_once(env, tmp_path) for _ in range(2)]
    for out in outs:
        assert secret not in out and client_key not in out and "IDR_BOOTSTRAP_API_KEY" in out
        assert not re.findall(r"idr_[A-Za-z0-9_-]{20,}", out), out  # nor a minted one
    from app.db.models import ApiKey
    from app.db.session import make_engine, make_session_factory, session_scope

    # Two starts, one key: the environment's, stored once (by its hash), nothing minted beside it.
    with session_scope(make_session_factory(make_engine(f"sqlite:///{tmp_path}/state.db"))) as s:
        rows = s.query(ApiKey).all()
        assert [(r.name, r.scopes) for r in rows] == [("bootstrap", "admin")]
        assert rows[0].key_hash != secret
