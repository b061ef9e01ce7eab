"""Embedded mode shares its DuckDB file: while `idr serve` runs, another process loads
source rows and the CLI reads the same file; an INCR run through the API then sees the
new rows. A file held by someone else gets 503 + Retry-After, not a hang or a 500."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.service.live import clean_env, free_port, idr, live_service

LOADER = """
import duckdb, sys, time
deadline = time.monotonic() + 20
while True:  # the documented way: retry while the service holds the file for a run or request
    try:
        con = duckdb.connect(sys.argv[1])
        break
    except duckdb.IOException as e:
        if 'lock' not in str(e).lower() or time.monotonic() > deadline:
            raise
        time.sleep(0.2)
con.execute(
    "INSERT INTO crm.customers (customer_id, email, phone, first_name, last_name, city, updated_at) "
    "VALUES (777001, 'late.arrival@example.org', '555-0199', 'Late', 'Arrival', 'Oslo', now()::TIMESTAMP), "
    "(777002, 'LATE.ARRIVAL@example.org ', NULL, 'Late', 'Arrival', 'Oslo', now()::TIMESTAMP)")
con.close()
print('loaded')
"""


def _wait_run(client, run_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/v1/runs/{run_id}").json()
        if body["status"] not in ("QUEUED", "RUNNING"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.2)


def test_embedded_service_shares_its_warehouse(tmp_path):
    port = free_port()
    db = tmp_path / "idr.duckdb"
    env = clean_env(
        IDR_DUCKDB_PATH=str(db),
        IDR_STATE_DB_URL=f"sqlite:///{tmp_path}/idr_state.db",
        IDR_API_PORT=str(port),
        IDR_DUCKDB_KEEP_OPEN_SECONDS="0.3",
        IDR_WAREHOUSE_BUSY_WAIT_SECONDS="0.5",
    )
    with live_service([sys.executable, "-m", "app.cli", "serve", "--demo"], env, tmp_path, port) as svc:
        assert svc.key, svc.text()
        c = svc.client()
        assert c.get("/v1/entities/crm_customers:1").status_code == 200
        # The start-up FULL run is a run like any other: listed, and the one /metrics reports.
        (startup,) = c.get("/v1/runs").json()["items"]
        assert (startup["mode"], startup["requested_by"]) == ("FULL", "idr serve --demo")
        assert startup["status"] in ("SUCCESS", "SUCCESS_WITH_WARNINGS")  # the demo has a large junk group
        info = next(x for x in c.get("/metrics").text.splitlines() if x.startswith("idr_last_run_info{"))
        assert f'run_id="{startup["id"]}"' in info
        # Another process writes the source table while the service runs...
        loaded = subprocess.run([sys.executable, "-c", LOADER, str(db)], capture_output=True, text=True, timeout=60)
        assert loaded.returncode == 0 and "loaded" in loaded.stdout, loaded.stderr
        # ...and the CLI works on the same file.
        listed = idr("dry-runs", "list", env=env, cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert "Traceback" not in listed.stderr
        # An INCR run through the API sees the new rows.
        r = c.post("/v1/runs", json={"mode": "INCR"})
        assert r.status_code == 202, r.text
        run = _wait_run(c, r.json()["id"])
        assert run["status"] in ("SUCCESS", "SUCCESS_WITH_WARNINGS"), run
        assert run["counts"]["entities_processed"] >= 2
        a = c.get("/v1/entities/crm_customers:777001").json()
        b = c.get("/v1/entities/crm_customers:777002").json()
        assert a["resolved_id"] == b["resolved_id"] and a["cluster_size"] >= 2

        # A process that keeps the file: warehouse reads answer 503 + Retry-After at once,
        # state-DB reads keep working, and everything comes back when it lets go.
        hold = LOADER.split("con.execute(")[0] + "print('held', flush=True)\ntime.sleep(60)\n"
        holder = subprocess.Popen([sys.executable, "-c", hold, str(db)], stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "held"
            busy = c.get("/v1/entities/crm_customers:1")
            assert busy.status_code == 503, busy.text
            assert int(busy.headers["Retry-After"]) > 0 and "in use by process" in busy.json()["detail"]
            assert c.get("/v1/runs").status_code == 200
        finally:
            holder.kill()
            holder.wait()
        assert c.get("/v1/entities/crm_customers:1").status_code == 200
