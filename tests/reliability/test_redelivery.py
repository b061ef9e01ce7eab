"""A paused worker's unacknowledged task is handed to another worker after the (short)
visibility timeout: the redelivered task finds its run no longer QUEUED and does nothing."""

from __future__ import annotations

import os
import signal
import time

from app.demo.generator import demo_config
from tests.service.conftest import RECORDS, make_settings, wait_run
from tests.service.flow import fingerprints
from tests.service.test_celery import REDIS, Worker, redis_queue  # noqa: F401


def test_redelivered_run_task_is_a_no_op(app_factory, warehouse_path, tmp_path, redis_queue):  # noqa: F811
    settings = make_settings(
        tmp_path, warehouse_path, broker_url=REDIS, celery_queue=redis_queue, run_stage_delay_seconds=0.5,
        celery_visibility_timeout_seconds=1.0, run_stale_after_seconds=120.0,
    )  # fmt: skip
    client = app_factory(settings)
    assert client.put("/v1/config", json=demo_config(records=RECORDS)).status_code == 200
    before = fingerprints(warehouse_path)
    first = Worker(settings, tmp_path / "worker1.log")
    second = None
    try:
        run_id = client.post("/v1/runs", json={"mode": "FULL"}).json()["id"]
        wait_run(client, run_id, until=lambda b: b["status"] == "RUNNING")
        os.killpg(first.proc.pid, signal.SIGSTOP)  # holds the task, unacknowledged
        time.sleep(1.5)  # past the visibility timeout
        second = Worker(settings, tmp_path / "worker2.log")
        log = tmp_path / "worker2.log"
        deadline = time.monotonic() + 30
        while "idr.run[" not in log.read_text() or "succeeded" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
        text = log.read_text()
        assert "'RUNNING'" in text, text[-2000:]  # it found the run RUNNING and left it alone
        body = client.get(f"/v1/runs/{run_id}").json()
        assert body["status"] == "RUNNING"
        first.kill()
    finally:
        if second is not None:
            second.stop()
        first.stop()
    assert fingerprints(warehouse_path) == before
    with client.app.state.runtime.session() as s:
        from app.db.models import Run

        assert s.get(Run, run_id).attempts == 1  # claimed once, never run again
