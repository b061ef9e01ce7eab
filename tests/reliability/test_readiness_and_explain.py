"""/readyz takes no warehouse lock (issue 19, item 12): with a worker-like process holding
the DuckDB file for writing it still answers ready with the warehouse "ok" (an open attempt
would meet the lock), and after it the API process holds nothing another process waits on.
Explain is bounded: a cluster with more identifier edges than IDR_EXPLAIN_MAX_EDGES is a
422 naming the limit."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import duckdb

from app.demo.generator import demo_config
from app.platforms.duckdb import DuckDBAdapter
from tests.service.conftest import RECORDS, make_settings, wait_run

HOLD = """
import sys, time, duckdb
path = sys.argv[1]
while True:  # as a worker would: retry until the API lets go of the file
    try:
        con = duckdb.connect(path)
        break
    except duckdb.IOException:
        time.sleep(0.05)
con.execute("CREATE OR REPLACE TABLE main.held AS SELECT 1 AS x")  # a write connection, in use
print("held", flush=True)
sys.stdin.read()  # until the test closes stdin
"""


def _hold(path: Path) -> subprocess.Popen:
    p = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "held"
    return p


def _release(p: subprocess.Popen) -> None:
    assert p.stdin is not None
    p.stdin.close()
    p.wait(30)


def test_readyz_is_ready_while_another_process_holds_the_duckdb_file(app_factory, tmp_path, warehouse_path):
    client = app_factory(make_settings(tmp_path, warehouse_path, duckdb_keep_open_seconds=0))
    holder = _hold(warehouse_path)
    try:
        for _ in range(3):
            r = client.get("/readyz")
            assert r.status_code == 200, r.text
            # "ok", not "busy": readiness never tried to open the file the other process holds.
            assert r.json()["checks"]["warehouse:default"] == "ok", r.json()
    finally:
        _release(holder)


def test_readyz_leaves_the_duckdb_file_free_for_a_worker(app_factory, tmp_path, warehouse_path):
    # A long keep-open: anything readiness opened would stay held by the API for a minute.
    client = app_factory(make_settings(tmp_path, warehouse_path, duckdb_keep_open_seconds=60))
    time.sleep(0.1)
    from app.services.warehouse import keep_open

    keep_open.release()  # what start-up itself opened (recovery): not readiness's doing
    for _ in range(3):
        assert client.get("/readyz").status_code == 200
    assert not keep_open.holding(str(warehouse_path))
    con = duckdb.connect(str(warehouse_path))  # another process would get the lock now
    con.close()
    out = subprocess.run(
        [sys.executable, "-c", "import duckdb, sys; duckdb.connect(sys.argv[1]).close()", str(warehouse_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr


def test_readyz_reports_a_duckdb_file_it_cannot_use(app_factory, tmp_path, warehouse_path):
    client = app_factory(make_settings(tmp_path, warehouse_path, duckdb_keep_open_seconds=0))
    moved = warehouse_path.rename(tmp_path / "elsewhere.duckdb")
    warehouse_path.mkdir()  # what is there now is no DuckDB file
    try:
        r = client.get("/readyz")
    finally:
        warehouse_path.rmdir()
        moved.rename(warehouse_path)
    assert r.status_code == 503 and r.json()["checks"]["warehouse:default"].startswith("error"), r.text


def _edges(path: Path, resolved_id: str) -> int:
    with DuckDBAdapter.from_path(str(path)) as a:
        return int(
            a.scalar(
                "SELECT count(*) FROM idr_state.identifier_values AS v "
                "JOIN idr_state.value_holders AS h ON h.vid = v.vid AND h.eid <> v.anchor_eid "
                "JOIN idr_state.entities AS a ON a.eid = v.anchor_eid "
                "JOIN idr_out.identity_resolved_membership_current AS m ON m.entity_key = a.entity_key "
                "WHERE v.linked AND m.resolved_id = $r",
                {"r": resolved_id},
            )
        )


def test_explain_refuses_a_cluster_above_the_limit_with_a_422_naming_it(app_factory, tmp_path, warehouse_path):
    client = app_factory(make_settings(tmp_path, warehouse_path))
    assert client.put("/v1/config", json=demo_config(records=RECORDS)).status_code == 200
    assert wait_run(client, client.post("/v1/runs", json={"mode": "FULL"}).json()["id"])["status"].startswith("SUCC")
    with DuckDBAdapter.from_path(str(warehouse_path)) as a:
        rid = a.scalar(
            "SELECT resolved_id FROM idr_out.identity_clusters_current ORDER BY cluster_size DESC, resolved_id LIMIT 1"
        )
        first, last = a.fetchone(
            "SELECT min(entity_key), max(entity_key) FROM idr_out.identity_resolved_membership_current "
            "WHERE resolved_id = $r",
            {"r": rid},
        )
    edges = _edges(warehouse_path, rid)
    assert edges >= 2
    url = f"/v1/entities/{first}/explain"
    at_limit = app_factory(make_settings(tmp_path, warehouse_path, explain_max_edges=edges))
    assert at_limit.get(url, params={"to": last}).status_code == 200
    over = app_factory(make_settings(tmp_path, warehouse_path, explain_max_edges=edges - 1))
    r = over.get(url, params={"to": last})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "limit_exceeded" and "IDR_EXPLAIN_MAX_EDGES" in body["detail"]
    assert f"more than {edges - 1} identifier edges" in body["detail"] and rid in body["detail"]
