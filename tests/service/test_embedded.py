"""Embedded mode: no broker; the Celery task code runs on worker threads inside the API."""

from __future__ import annotations

import shutil

from app.demo.generator import demo_config
from app.platforms.duckdb import DuckDBAdapter
from app.platforms.targets import DuckDBTarget
from tests.service.conftest import ADMIN_KEY, RECORDS, make_settings, wait_run
from tests.service.flow import full_flow


def test_full_flow_embedded(app_factory, warehouse_path, tmp_path, receiver):
    client = app_factory(make_settings(tmp_path, warehouse_path))
    assert client.get("/readyz").json()["mode"] == "embedded"
    full_flow(client, warehouse_path, receiver)


def test_runs_on_a_named_target_leave_the_default_target_alone(
    app_factory, warehouse_path, warehouse_template, tmp_path
):
    other = tmp_path / "other.duckdb"
    shutil.copyfile(warehouse_template, other)
    other_target = DuckDBTarget(platform="duckdb", path=str(other))
    settings = make_settings(tmp_path, warehouse_path, targets={"other": other_target})
    client = app_factory(settings)
    h = {"Authorization": f"Bearer {ADMIN_KEY}"}
    put = client.put("/v1/config", params={"target": "other"}, json=demo_config(records=RECORDS), headers=h)
    assert put.status_code == 200, put.text
    bad = client.post("/v1/runs", json={"target": "nope", "mode": "FULL"}, headers=h)
    assert bad.status_code == 422 and bad.json()["field"] == "target"
    r = client.post("/v1/runs", json={"target": "other", "mode": "FULL", "dry_run": True}, headers=h)
    assert r.status_code == 202, r.text
    run = wait_run(client, r.json()["id"])
    assert run["status"] == "DRY_RUN_COMPLETE" and run["target"] == "other"
    client.close()
    for path, expected in ((other, 1), (warehouse_path, 0)):
        a = DuckDBAdapter.from_path(str(path))
        n = a.scalar("SELECT count(*) FROM idr_out.run_history WHERE run_id = $r", {"r": run["id"]})
        a.close()
        assert n == expected, path
