"""A new user's first hour, scripted: `make run` in the background (demo data and a first
FULL run), new rows loaded into a source table while it serves, an INCR dry run reviewed
with the CLI and through the API, applied, a signed webhook received and verified,
/metrics checked with promtool, the web console opened in Chromium (runs, the review, the new
cluster's graph), everything shut down and the warehouse left whole."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from standardwebhooks.webhooks import Webhook

from app.platforms.duckdb import DuckDBAdapter
from tests.browser import chromium, require_chromium, shot
from tests.metrics.conftest import require_binary
from tests.service.conftest import LOOPBACK, WEBHOOK_KEY
from tests.service.live import Live, clean_env, free_port, wait_ready

REPO = Path(__file__).resolve().parents[2]
NEW_CUSTOMERS = """customer_id,email,phone,first_name,last_name,city,updated_at
910001,ada.new@example.net,+1 (555) 777-0101,Ada,Newcomer,Lisbon,2030-01-01 10:00:00
910002, ADA.NEW@example.net ,,Ada,N.,Lisbon,2030-01-01 11:00:00
910003,,1.555.777.0101,A.,Newcomer,Porto,2030-01-01 12:00:00
"""


def _wait(client, run_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/v1/runs/{run_id}").json()
        if body["status"] not in ("QUEUED", "RUNNING"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.2)


def _idr(env, cwd, *args) -> subprocess.CompletedProcess:
    r = subprocess.run(
        [sys.executable, "-m", "app.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )
    assert r.returncode == 0 and "Traceback" not in r.stderr, (args, r.stdout, r.stderr)
    return r


def _console(base: str, key: str, dry_id: str, applied_id: str, cluster_id: str) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base + "/")  # the service's root leads to the console, which asks for a key
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/ui/runs")
        def row(run_id: str):
            return page.locator(f'table.runs tbody tr:has(td:first-child a[href="/ui/runs/{run_id}"])')

        assert row(dry_id).count() == 1 and row(applied_id).count() == 1
        assert dry_id in row(applied_id).inner_text()  # "apply of" the dry run
        shot(page, "first-hour-runs", docs=False)
        row(dry_id).get_by_role("link", name="review").click()
        new = page.locator(".card", has_text="New").locator(".n").inner_text()
        assert int(new.replace(",", "")) >= 3
        assert page.get_by_text(f"Applied by run {applied_id}").is_visible()
        shot(page, "first-hour-review", docs=False)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Clusters").click()
        page.get_by_label("Entity key, identifier value or resolved id").fill("ada.new@example.net")
        page.get_by_role("button", name="Search").click()
        page.locator("table a", has_text=cluster_id).first.click()
        assert page.locator("svg.graph .node").count() >= 3
        for n in (910001, 910002, 910003):
            assert page.locator(f'svg.graph .node[data-key="crm_customers:{n}"]').count() == 1
        shot(page, "first-hour-cluster", docs=False)


def test_first_hour(tmp_path, receiver):
    promtool = require_binary("promtool")
    require_chromium()
    port = free_port()
    env = clean_env(
        IDR_API_PORT=str(port),
        IDR_DUCKDB_PATH=str(tmp_path / "idr.duckdb"),
        IDR_STATE_DB_URL=f"sqlite:///{tmp_path}/idr_state.db",
        # The local receiver is on loopback; webhook secrets are encrypted (README: Webhooks).
        IDR_WEBHOOK_ALLOW_HOSTS=LOOPBACK,
        IDR_WEBHOOK_SECRET_KEYS=WEBHOOK_KEY,
    )
    # `make run`, as the README says, in the background (its own process group, like a terminal's).
    proc = subprocess.Popen(
        ["make", "-s", "run"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    out: list[str] = []
    threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True).start()  # type: ignore[arg-type]
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc, out, timeout=600)  # may install the venv first
        text = "".join(out)
        key = next(line.split("=", 1)[1].strip() for line in text.splitlines() if "export IDR_API_KEY=" in line)
        svc = Live(proc, f"http://127.0.0.1:{port}", out, key)
        c = svc.client()

        # The demo's first FULL run is there, and lookups answer.
        (startup,) = c.get("/v1/runs").json()["items"]
        assert startup["mode"] == "FULL" and startup["status"].startswith("SUCCESS")
        assert c.get("/v1/entities/crm_customers:1").status_code == 200

        # A webhook for every event.
        hook = c.post("/v1/webhooks", json={"url": receiver.url, "events": ["*"]})
        assert hook.status_code == 201, hook.text
        secret = hook.json()["secret"]

        # New source rows while the service runs (the CLI waits if the service holds the file).
        csv = tmp_path / "new_customers.csv"
        csv.write_text(NEW_CUSTOMERS)
        loaded = _idr(env, tmp_path, "load", "crm.customers", str(csv))
        assert "appended 3 row(s)" in loaded.stdout

        # An INCR dry run through the API...
        r = c.post("/v1/runs", json={"mode": "INCR", "dry_run": True})
        assert r.status_code == 202, r.text
        dry = _wait(c, r.json()["id"])
        assert dry["status"] == "DRY_RUN_COMPLETE", dry
        # ...reviewed with the CLI...
        listed = _idr(env, tmp_path, "dry-runs", "list", "--format", "json")
        assert json.loads(listed.stdout)[0]["run_id"] == dry["id"]
        changes = json.loads(_idr(env, tmp_path, "dry-runs", "changes", dry["id"], "--format", "json").stdout)
        new_keys = {f"crm_customers:{n}" for n in (910001, 910002, 910003)}
        assert new_keys <= {x["entity_key"] for x in changes if x["change_type"] == "NEW"}
        table = _idr(env, tmp_path, "dry-runs", "clusters", dry["id"]).stdout
        proposed = {x["entity_key"]: x["proposed_resolved_id"] for x in changes if x["entity_key"] in new_keys}
        assert len(set(proposed.values())) == 1 and next(iter(proposed.values())) in table
        # ...and through the API.
        summary = c.get(f"/v1/dry-runs/{dry['id']}/summary").json()
        assert summary["affected_entities"] >= 3 and summary["new_entities"] >= 3
        api_changes = c.get(f"/v1/dry-runs/{dry['id']}/changes", params={"change_type": "NEW"}).json()["items"]
        assert new_keys <= {x["entity_key"] for x in api_changes}
        flows = c.get(f"/v1/dry-runs/{dry['id']}/clusters", params={"limit": 1000}).json()["items"]
        assert any(f["proposed_resolved_id"] == next(iter(proposed.values())) for f in flows)

        # Applied: exactly the reviewed proposal is published.
        r = c.post(f"/v1/dry-runs/{dry['id']}/apply")
        assert r.status_code == 202, r.text
        applied = _wait(c, r.json()["id"])
        assert applied["status"].startswith("SUCCESS") and applied["apply_of"] == dry["id"], applied
        ent = c.get("/v1/entities/crm_customers:910001").json()
        assert ent["resolved_id"] == next(iter(proposed.values())) and ent["cluster_size"] >= 3

        # Signed webhooks arrived and verify.
        wh = Webhook(secret)
        for kind, run_id in (("dry_run.completed", dry["id"]), ("run.succeeded", applied["id"])):
            (req,) = receiver.wait_for(
                lambda q, k=kind, r=run_id: q["json"]["type"] == k and q["json"]["data"]["run_id"] == r
            )
            assert wh.verify(req["body"], req["headers"])["data"]["run_id"] == run_id

        # /metrics, checked by Prometheus' own tool.
        metrics = c.get("/metrics").text
        assert f'run_id="{applied["id"]}"' in metrics
        page = tmp_path / "metrics.txt"
        page.write_text(metrics)
        check = subprocess.run([promtool, "check", "metrics"], stdin=page.open(), capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        runs = {x["id"] for x in c.get("/v1/runs").json()["items"]}
        assert {startup["id"], dry["id"], applied["id"]} <= runs

        # The web console, with the key `make run` printed: the runs, the review, the new cluster.
        _console(svc.base, key, dry["id"], applied["id"], proposed["crm_customers:910001"])
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    # Everything shut down: the file is free and holds what was published.
    with DuckDBAdapter.from_path(str(tmp_path / "idr.duckdb")) as a:
        n = a.scalar(
            "SELECT count(DISTINCT resolved_id) FROM idr_out.identity_resolved_membership_current "
            "WHERE entity_key IN ('crm_customers:910001', 'crm_customers:910002', 'crm_customers:910003')"
        )
    assert n == 1
