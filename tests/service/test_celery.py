"""Production shape: a real Celery worker process on the machine's Redis, PostgreSQL state.

Also: killing the worker mid-run leaves production untouched and the run ends FAILED
(the API's reaper sees the heartbeat stop), and a new run then succeeds.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.demo.generator import demo_config
from app.platforms.duckdb import DuckDBAdapter
from tests.service.conftest import RECORDS, make_settings, require_service, settings_env, wait_run
from tests.service.flow import fingerprints, full_flow

REDIS = "redis://127.0.0.1:6379/0"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def redis_queue() -> str:
    require_service("127.0.0.1", 6379, "Redis")
    return f"idr-test-{secrets.token_hex(4)}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    require_service("127.0.0.1", 5432, "PostgreSQL")
    import psycopg

    name = f"idr_test_{secrets.token_hex(4)}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Worker:
    def __init__(self, settings, log: Path) -> None:
        env = {**os.environ, **settings_env(settings)}
        self.log = log
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "--pool", "threads",
                "--concurrency", "2", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while b"ready." not in log.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("celery worker did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.1)

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def test_full_flow_celery_redis_postgres(app_factory, warehouse_path, tmp_path, receiver, redis_queue, pg_url):
    settings = make_settings(tmp_path, warehouse_path, broker_url=REDIS, celery_queue=redis_queue, state_db_url=pg_url)
    client = app_factory(settings)  # migrates the PostgreSQL database
    ready = client.get("/readyz").json()
    assert ready["mode"] == "celery" and ready["checks"]["broker"] == "ok"
    worker = Worker(settings, tmp_path / "worker.log")
    try:
        out = full_flow(client, warehouse_path, receiver)
    finally:
        worker.stop()
    # The run ids the service hands out are the warehouse's run ids.
    with DuckDBAdapter.from_path(str(warehouse_path)) as a:
        status = a.scalar("SELECT status FROM idr_out.run_history WHERE run_id = $r", {"r": out["incr"]["id"]})
    assert status == out["incr"]["status"]


def test_killed_worker_leaves_production_untouched(app_factory, warehouse_path, tmp_path, redis_queue):
    settings = make_settings(
        tmp_path, warehouse_path, broker_url=REDIS, celery_queue=redis_queue, run_stage_delay_seconds=0.5
    )
    client = app_factory(settings)
    assert client.put("/v1/config", json=demo_config(records=RECORDS)).status_code == 200
    before = fingerprints(warehouse_path)
    worker = Worker(settings, tmp_path / "worker1.log")
    try:
        run_id = client.post("/v1/runs", json={"mode": "FULL"}).json()["id"]
        wait_run(client, run_id, until=lambda b: b["current_stage"] == "components")
        worker.kill()
    finally:
        worker.stop()
    assert fingerprints(warehouse_path) == before
    failed = wait_run(client, run_id, timeout=30)
    assert failed["status"] == "FAILED" and "worker lost" in failed["error"]["message"], failed
    with DuckDBAdapter.from_path(str(warehouse_path)) as a:
        assert a.scalar("SELECT status FROM idr_out.run_history WHERE run_id = $r", {"r": run_id}) == "FAILED"
    # Nothing to repair: a new run simply runs.
    worker = Worker(settings, tmp_path / "worker2.log")
    try:
        again = client.post("/v1/runs", json={"mode": "FULL"})
        assert again.status_code == 202, again.text
        assert wait_run(client, again.json()["id"], timeout=60)["status"] in ("SUCCESS", "SUCCESS_WITH_WARNINGS")
    finally:
        worker.stop()
    assert fingerprints(warehouse_path) != before
