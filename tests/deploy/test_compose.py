"""The compose stack without a Docker engine: the file's services, commands, volumes,
healthchecks and the Prometheus token agree with each other, the image and the README;
scripts/compose-init.sh runs against a stand-in for `docker compose` that executes each
`run --rm api CMD` here, as the container would."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_services_and_their_commands():
    assert set(SERVICES) == {"api", "worker", "beat", "redis", "postgres", "prometheus"}
    api = SERVICES["api"]["command"]
    assert api[:3] == ["uvicorn", "app.main:create_app", "--factory"]
    from app.main import create_app  # the factory the command names exists

    assert callable(create_app)
    worker = SERVICES["worker"]["command"]
    assert worker[:4] == ["celery", "-A", "workers.celery_app", "worker"]
    # One worker process with threads: the DuckDB file is open in one process at a time.
    assert worker[worker.index("--pool") + 1] == "threads"
    assert SERVICES["beat"]["command"][:4] == ["celery", "-A", "workers.celery_app", "beat"]
    import workers.celery_app as celery_module

    assert celery_module.celery_app.conf.beat_schedule


def test_volumes_and_settings_put_the_warehouse_on_the_shared_volume():
    for name in ("api", "worker", "beat"):
        svc = SERVICES[name]
        assert "warehouse:/data" in svc["volumes"], name
        env = svc["environment"]
        assert env["IDR_DUCKDB_PATH"].startswith("/data/")
        assert env["IDR_STATE_DB_URL"].startswith("postgresql+psycopg://") and env["IDR_BROKER_URL"].startswith("redis")
    assert set(COMPOSE["volumes"]) == {"warehouse", "pgdata"}
    assert SERVICES["postgres"]["volumes"] == ["pgdata:/var/lib/postgresql/data"]
    # Only the API migrates the state database.
    assert SERVICES["worker"]["environment"]["IDR_STATE_DB_AUTO_MIGRATE"] == "false"
    # An unset bootstrap key is allowed (the init script creates keys) and means no key.
    assert SERVICES["api"]["environment"]["IDR_BOOTSTRAP_API_KEY"] == "${IDR_BOOTSTRAP_API_KEY:-}"
    from app.core.settings import Settings

    assert Settings(bootstrap_api_key="").bootstrap_api_key is None


def test_healthchecks_and_start_order():
    for name in ("api", "redis", "postgres"):
        test = SERVICES[name]["healthcheck"]["test"]
        assert test and test[0] in ("CMD", "CMD-SHELL"), name
    assert "/healthz" in " ".join(SERVICES["api"]["healthcheck"]["test"])
    for name, svc in SERVICES.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in SERVICES, (name, dep)
            if cond.get("condition") == "service_healthy":
                assert "healthcheck" in SERVICES[dep], (name, dep)


def test_prometheus_token_is_one_documented_file():
    prom = SERVICES["prometheus"]
    assert prom["secrets"] == ["prometheus_token"]
    assert COMPOSE["secrets"]["prometheus_token"]["file"] == "./deploy/prometheus/token"
    assert not any("token" in v for v in prom.get("volumes", [])), "a bind mount becomes a directory when missing"
    scrape = yaml.safe_load((REPO / "deploy/prometheus/prometheus-compose.yml").read_text())
    (job,) = scrape["scrape_configs"]
    assert job["authorization"]["credentials_file"] == "/run/secrets/prometheus_token"
    assert job["static_configs"][0]["targets"] == ["api:8000"]
    mounted = {v.split(":")[1] for v in prom["volumes"]}
    assert set(scrape["rule_files"]) <= mounted
    readme = (REPO / "README.md").read_text()
    assert "deploy/prometheus/token" in readme and "scripts/compose-init.sh" in readme
    for path in ("README.md", "docker-compose.yml", "deploy/prometheus/prometheus-compose.yml"):
        assert "IDR_METRICS_TOKEN" not in (REPO / path).read_text(), path


def test_readme_compose_commands_are_real_cli_commands():
    readme = (REPO / "README.md").read_text()
    cmds = [
        line.split(" api ", 1)[1] for line in readme.splitlines() if "docker compose run" in line and " api " in line
    ]
    assert len(cmds) >= 4, cmds
    for cmd in cmds:
        args = shlex.split(cmd.split("#")[0])
        assert args[0] == "idr", cmd
        words = [a for a in args[1:] if not a.startswith("-")][:2]
        r = subprocess.run(
            [sys.executable, "-m", "app.cli", *words, "--help"], cwd=REPO, capture_output=True, text=True
        )
        assert r.returncode == 0, (cmd, r.stderr)


FAKE_COMPOSE = """#!/usr/bin/env bash
# Stand-in for `docker compose`: `run --rm -T api CMD...` runs CMD here with the service's
# settings, /data being $FAKE_DATA; build and up are logged and skipped.
set -euo pipefail
echo "compose $*" >> "$FAKE_LOG"
case "$1" in
  build|up) exit 0 ;;
  run) shift; while [[ "$1" == -* ]]; do shift; done; shift  # options, then the service
       export IDR_DUCKDB_PATH="$FAKE_DATA/idr.duckdb"
       exec "$@" ;;
esac
echo "unexpected: $*" >&2; exit 3
"""


def test_compose_init_script_creates_keys_token_and_warehouse_once(tmp_path):
    fake = tmp_path / "compose"
    fake.write_text(FAKE_COMPOSE)
    fake.chmod(0o755)
    (tmp_path / "data").mkdir()
    repo = tmp_path / "repo"  # the script writes deploy/prometheus/token next to itself
    (repo / "scripts").mkdir(parents=True)
    (repo / "deploy/prometheus").mkdir(parents=True)
    (repo / "scripts/compose-init.sh").write_text((REPO / "scripts/compose-init.sh").read_text())
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "idr").write_text(f'#!/bin/sh\nexec {sys.executable} -m app.cli "$@"\n')
    (bindir / "idr").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDR_")}
    env.update(
        COMPOSE=str(fake),
        FAKE_DATA=str(tmp_path / "data"),
        FAKE_LOG=str(tmp_path / "log"),
        PATH=f"{bindir}:{env['PATH']}",
        PYTHONPATH=str(REPO),
        IDR_STATE_DB_URL=f"sqlite:///{tmp_path}/s.db",
        IDR_DUCKDB_THREADS="1",
        IDR_DUCKDB_MEMORY_LIMIT="1GB",
    )
    first = subprocess.run(
        ["bash", str(repo / "scripts/compose-init.sh"), "--demo"], env=env, capture_output=True, text=True, timeout=300
    )
    assert first.returncode == 0, first.stdout + first.stderr
    token = repo / "deploy/prometheus/token"
    assert token.stat().st_mode & 0o777 == 0o600
    key = token.read_text().strip()
    assert key.startswith("idr_") and key not in first.stdout  # the read key goes to the file only
    assert "shown once" in first.stdout and (tmp_path / "data/idr.duckdb").exists()
    second = subprocess.run(
        ["bash", str(repo / "scripts/compose-init.sh"), "--demo"], env=env, capture_output=True, text=True, timeout=300
    )
    assert second.returncode == 0, second.stderr
    assert "shown once" not in second.stdout and "kept" in second.stdout and token.read_text().strip() == key
    from app.db.session import make_engine, make_session_factory, session_scope
    from app.services.auth import authenticate, list_keys

    with session_scope(make_session_factory(make_engine(f"sqlite:///{tmp_path}/s.db"))) as s:
        assert sorted((k.name, k.scopes) for k in list_keys(s)) == [("admin", "admin"), ("prometheus", "read")]
        assert authenticate(s, key).allows("read") and not authenticate(s, key).allows("run")
    log = (tmp_path / "log").read_text()
    assert "compose build" in log and "compose up -d --wait redis postgres" in log
