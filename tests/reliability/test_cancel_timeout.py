"""Cancel and the run timeout interrupt the running statement: a stage stuck in a slow
expression stops within seconds, production stays untouched, the target is free again."""

from __future__ import annotations

import time

import pytest

from app.config import functions
from app.demo.generator import demo_config
from app.platforms.duckdb import DuckDBAdapter
from tests.service.conftest import RECORDS, make_settings, wait_run
from tests.service.flow import fingerprints

# ~600 rows x 0.2 s keeps extract_entities busy for two minutes. The expression allow-list
# refuses sleep_ms (at apply and again at run time), so these tests allow it for DuckDB.
SLOW = "lower(email) || coalesce(CAST(sleep_ms(200) AS VARCHAR), '')"


@pytest.fixture(autouse=True)
def sleep_allowed(monkeypatch):
    monkeypatch.setitem(functions.EXTRA, "duckdb", functions.EXTRA["duckdb"] | {"sleep_ms"})


def _slow_config(client, warehouse_path) -> None:
    doc = demo_config(records=RECORDS)
    mapping = next(m for m in doc["identifier_mappings"] if m["identifier_type"] == "EMAIL")
    mapping["identifier_value_expr"] = SLOW
    r = client.put("/v1/config", json=doc)
    assert r.status_code == 200, r.text


def test_cancel_interrupts_a_slow_statement(app_factory, warehouse_path, tmp_path):
    client = app_factory(make_settings(tmp_path, warehouse_path))
    _slow_config(client, warehouse_path)
    before = fingerprints(warehouse_path)
    run_id = client.post("/v1/runs", json={"mode": "FULL"}).json()["id"]
    wait_run(client, run_id, until=lambda b: b["current_stage"] == "extract_entities")
    time.sleep(1.0)  # inside the slow statement
    t0 = time.monotonic()
    assert client.post(f"/v1/runs/{run_id}/cancel").status_code == 202
    done = wait_run(client, run_id, timeout=30)
    stopped_after = time.monotonic() - t0
    assert done["status"] == "CANCELLED", done
    assert done["error"]["stage"] == "extract_entities", done
    assert stopped_after < 15, stopped_after  # not the two minutes the statement would take
    assert fingerprints(warehouse_path) == before
    again = client.post("/v1/runs", json={"mode": "FULL"})
    assert again.status_code == 202, again.text  # the target is free again
    assert client.post(f"/v1/runs/{again.json()['id']}/cancel").status_code == 202
    assert wait_run(client, again.json()["id"], timeout=30)["status"] == "CANCELLED"


def test_run_timeout_stops_the_run_the_same_way(app_factory, warehouse_path, tmp_path):
    client = app_factory(make_settings(tmp_path, warehouse_path, run_timeout_seconds=2.0))
    _slow_config(client, warehouse_path)
    before = fingerprints(warehouse_path)
    run_id = client.post("/v1/runs", json={"mode": "FULL"}).json()["id"]
    done = wait_run(client, run_id, timeout=30)
    assert done["status"] == "FAILED", done
    assert "IDR_RUN_TIMEOUT_SECONDS" in done["error"]["message"], done
    assert fingerprints(warehouse_path) == before
    with DuckDBAdapter.from_path(str(warehouse_path)) as a:
        assert a.scalar("SELECT status FROM idr_out.run_history WHERE run_id = $r", {"r": run_id}) == "FAILED"
