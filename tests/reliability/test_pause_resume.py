"""The issue's scenario, in production shape (Celery worker process, Redis): the worker is
paused (SIGSTOP) mid-run, the reaper gives the run up and a second run is accepted; when
the worker resumes, the first run neither publishes nor changes its status, and its
subscribers hear of it once (run.failed)."""

from __future__ import annotations

import os
import signal
import time

from app.demo.generator import demo_config
from app.platforms.duckdb import DuckDBAdapter
from tests.service.conftest import RECORDS, make_settings, wait_run
from tests.service.test_celery import REDIS, Worker, redis_queue  # noqa: F401


def test_paused_worker_is_fenced_after_reaping(app_factory, warehouse_path, tmp_path, receiver, redis_queue):  # noqa: F811
    settings = make_settings(
        tmp_path, warehouse_path, broker_url=REDIS, celery_queue=redis_queue, run_stage_delay_seconds=0.4,
        run_stale_after_seconds=2.0, reaper_interval_seconds=0.5,
    )  # fmt: skip
    client = app_factory(settings)
    assert client.put("/v1/config", json=demo_config(records=RECORDS)).status_code == 200
    hook = client.post("/v1/webhooks", json={"url": receiver.url, "events": ["run.succeeded", "run.failed"]})
    assert hook.status_code == 201, hook.text
    worker = Worker(settings, tmp_path / "worker.log")
    try:
        first = client.post("/v1/runs", json={"mode": "FULL"}).json()["id"]
        wait_run(client, first, until=lambda b: b["current_stage"] == "resolve_ids")
        os.killpg(worker.proc.pid, signal.SIGSTOP)
        try:
            reaped = wait_run(client, first, timeout=30)
            assert reaped["status"] == "FAILED" and "worker lost" in reaped["error"]["message"], reaped
            second = client.post("/v1/runs", json={"mode": "FULL"})
            assert second.status_code == 202, second.text  # the target was freed
        finally:
            os.killpg(worker.proc.pid, signal.SIGCONT)
        done = wait_run(client, second.json()["id"], timeout=90)
        assert done["status"] in ("SUCCESS", "SUCCESS_WITH_WARNINGS"), done
        receiver.wait_for(lambda q: q["json"]["data"]["run_id"] == second.json()["id"])
        receiver.wait_for(lambda q: q["json"]["data"]["run_id"] == first)
        time.sleep(1.0)  # anything the resumed worker would still send
    finally:
        worker.stop()
    assert client.get(f"/v1/runs/{first}").json()["status"] == "FAILED"
    events = [q["json"]["type"] for q in receiver.requests if q["json"]["data"]["run_id"] == first]
    assert events == ["run.failed"], events
    with DuckDBAdapter.from_path(str(warehouse_path)) as a:
        rows = dict(a.fetchall("SELECT run_id, status FROM idr_out.run_history"))
        last = a.scalar("SELECT max(last_run_id) FROM idr_meta.run_state")
    assert rows[first] == "FAILED", rows
    assert last == second.json()["id"]  # production holds the second run's results only
