"""Fenced runs: a run whose lease was taken (the reaper gave it up) can neither publish nor
change its status; terminal statuses are final; every status change is a compare-and-set."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from app.db.models import Run, now_utc
from app.demo.generator import demo_config
from app.pipeline import publish
from app.platforms.duckdb import DuckDBAdapter
from app.services import runs
from app.services.execution import reap_stale_runs
from tests.service.conftest import RECORDS, make_settings, wait_run
from tests.service.flow import fingerprints


@pytest.mark.parametrize("how", ["reaper", "state-only"])
def test_run_whose_lease_was_taken_before_publish_writes_nothing(
    app_factory, warehouse_path, tmp_path, receiver, monkeypatch, how
):
    """The lease is taken after the run's last stage boundary and before its publish
    transaction: the check inside that transaction refuses, production is untouched, the
    status stays what the reaper set and subscribers hear of the run once."""
    client = app_factory(make_settings(tmp_path, warehouse_path))
    assert client.put("/v1/config", json=demo_config(records=RECORDS)).status_code == 200
    client.post("/v1/webhooks", json={"url": receiver.url, "events": ["run.succeeded", "run.failed"]})
    rt = client.app.state.runtime
    before = fingerprints(warehouse_path)
    prepare = publish.prepare

    def lease_taken(ctx) -> None:
        prepare(ctx)
        with rt.session() as s:
            if how == "reaper":  # the worker looks dead to the reaper
                s.execute(update(Run).where(Run.id == ctx.run_id).values(heartbeat_at=now_utc() - timedelta(hours=1)))
            else:  # the reaper could not reach the warehouse: only the state DB knows
                assert runs.transition(
                    s, ctx.run_id, frm=("RUNNING",), to="FAILED", lease_generation=Run.lease_generation + 1,
                    error_message="given up",
                )  # fmt: skip
        if how == "reaper":
            assert reap_stale_runs() == [ctx.run_id]

    monkeypatch.setattr(publish, "prepare", lease_taken)
    run_id = client.post("/v1/runs", json={"mode": "FULL"}).json()["id"]
    done = wait_run(client, run_id)
    monkeypatch.setattr(publish, "prepare", prepare)
    assert done["status"] == "FAILED", done
    assert fingerprints(warehouse_path) == before
    # The status the test (or reaper) set is visible at once; the worker still finishes its
    # side (the refused publish, the warehouse row) a moment later.
    deadline = time.monotonic() + 20
    while True:
        with DuckDBAdapter.from_path(str(warehouse_path)) as a:
            row = a.fetchone("SELECT status, error_message FROM idr_out.run_history WHERE run_id = $r", {"r": run_id})
        if row[0] != "RUNNING" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if how == "reaper":  # the warehouse's own fence: the reaper marked the history row
        assert row == ("FAILED", "worker lost"), row
        # Subscribers hear once, and only of the failure.
        receiver.wait_for(lambda q: q["json"]["data"]["run_id"] == run_id)
    else:  # the state DB's lease, checked inside the publish transaction
        # Refused inside the publish transaction, or interrupted by the worker's heartbeat
        # once it saw the lease gone: either way nothing was written.
        assert row[0] == "FAILED" and ("lease" in row[1] or "Interrupt" in row[1]), row
        assert done["error"]["message"] == "given up"
    time.sleep(0.5)
    events = [q["json"]["type"] for q in receiver.requests if q["json"]["data"]["run_id"] == run_id]
    assert events == (["run.failed"] if how == "reaper" else []), events
    # The target is free, and the next run publishes.
    again = client.post("/v1/runs", json={"mode": "FULL"})
    assert again.status_code == 202, again.text
    assert wait_run(client, again.json()["id"])["status"] in ("SUCCESS", "SUCCESS_WITH_WARNINGS")
    assert fingerprints(warehouse_path) != before


def test_terminal_statuses_are_final_and_changes_compare_and_set(app_factory, warehouse_path, tmp_path):
    client = app_factory(make_settings(tmp_path, warehouse_path))
    assert client.put("/v1/config", json=demo_config(records=RECORDS)).status_code == 200
    rt = client.app.state.runtime
    run_id = client.post("/v1/runs", json={"mode": "FULL", "dry_run": True}).json()["id"]
    assert wait_run(client, run_id)["status"] == "DRY_RUN_COMPLETE"
    with rt.session() as s, pytest.raises(ValueError, match="final"):
        runs.transition(s, run_id, frm=("DRY_RUN_COMPLETE",), to="RUNNING")
    with rt.session() as s:
        # A stale writer (QUEUED -> RUNNING, or RUNNING -> anything) finds nothing to change.
        assert not runs.transition(s, run_id, frm=("QUEUED",), to="RUNNING")
        assert not runs.transition(s, run_id, frm=("RUNNING",), to="SUCCESS")
    assert runs.claim(rt, run_id) is None  # a redelivered task cannot claim it again
    assert client.get(f"/v1/runs/{run_id}").json()["status"] == "DRY_RUN_COMPLETE"
    assert client.post(f"/v1/runs/{run_id}/cancel").status_code == 409
