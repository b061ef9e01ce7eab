"""HTTP details a new user meets in the first hour: media types and readable JSON errors,
YAML config, webhook bodies, paged cluster changes with honest counts, RFC 3339 timestamps,
progress, exporter settings checked at start-up, metrics served while the file is busy."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
import yaml
from standardwebhooks.webhooks import Webhook

from app.core.settings import get_settings
from app.demo.generator import demo_config
from app.platforms.duckdb import DuckDBAdapter
from tests.service.conftest import RECORDS, make_settings, require_service, wait_run

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
TS_KEYS = re.compile(r"(_at|_ts|timestamp|^at)$")


@pytest.fixture
def client(app_factory, warehouse_path, tmp_path):
    c = app_factory(make_settings(tmp_path, warehouse_path))
    assert c.put("/v1/config", json=demo_config(records=RECORDS)).status_code == 200
    return c


def _dry_run_with_changes(client, warehouse_path) -> str:
    """A FULL run, then a bridge record and a removed record, then a FULL dry run."""
    assert wait_run(client, client.post("/v1/runs", json={"mode": "FULL"}).json()["id"])["status"].startswith("SUCC")
    with DuckDBAdapter.from_path(str(warehouse_path)) as a:
        linked = a.fetchall(
            "SELECT e.identifier_type, e.identifier_value_norm, m.resolved_id "
            "FROM idr_out.identity_edges_current AS e JOIN idr_out.identity_resolved_membership_current AS m "
            "ON m.entity_key = e.left_entity_key WHERE e.identifier_type IN ('EMAIL', 'PHONE') ORDER BY 3, 1, 2"
        )
        email, cluster = next((v, r) for t, v, r in linked if t == "EMAIL")
        phone = next(v for t, v, r in linked if t == "PHONE" and r != cluster)
        a.execute(
            "INSERT INTO crm.customers VALUES (999999, $e, $p, 'Bridge', 'Person', 'Paris', TIMESTAMP '2030-01-01')",
            {"e": email, "p": phone},
        )
        a.execute("DELETE FROM loyalty.members WHERE member_id = (SELECT min(member_id) FROM loyalty.members)")
    r = client.post("/v1/runs", json={"mode": "FULL", "dry_run": True})
    dry = wait_run(client, r.json()["id"])
    assert dry["status"] == "DRY_RUN_COMPLETE", dry
    return dry["id"]


# ------------------------------------------------------------------ item 12: media types, JSON errors, YAML
def test_unsupported_content_type_is_415(client):
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        r = client.post("/v1/runs", content=b'{"mode": "FULL", "dry_run": true}', headers={"content-type": ctype})
        assert r.status_code == 415, (ctype, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "application/json" in r.json()["detail"]
    r = client.put("/v1/config", content=b"sources: []", headers={"content-type": "text/csv"})
    assert r.status_code == 415 and "application/yaml" in r.json()["detail"]
    # A bodiless POST is not refused for the type its client happens to name.
    run = client.post("/v1/runs", json={"mode": "FULL", "dry_run": True}).json()
    r = client.post(f"/v1/runs/{run['id']}/cancel", content=b"", headers={"content-type": "text/plain"})
    assert r.status_code in (202, 409), r.text
    # No content type at all: read as JSON (what `curl -d` users send by mistake).
    r = client.post("/v1/runs", content=b'{"mode": "FULL", "dry_run": true}', headers={"content-type": ""})
    assert r.status_code == 202, r.text


def test_invalid_json_is_a_readable_400(client):
    r = client.post(
        "/v1/runs", content=b'{"mode": "FULL",\n "dry_run": tru}', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert detail.startswith("the request body is not valid JSON") and "line 2, column" in detail, detail
    assert "[" not in detail.split(":")[0]


def test_get_config_honours_accept_yaml(client):
    as_json = client.get("/v1/config").json()
    r = client.get("/v1/config", headers={"Accept": "application/yaml"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/yaml")
    doc = yaml.safe_load(r.text)
    assert [s["table_id"] for s in doc["sources"]] == [s["table_id"] for s in as_json["sources"]]
    # What GET gives, PUT takes back.
    r = client.put("/v1/config", content=r.text.encode(), headers={"content-type": "application/yaml"})
    assert r.status_code == 200, r.text
    assert client.get("/v1/config", headers={"Accept": "application/json;q=1, application/yaml;q=0.5"}).json()


def test_webhooks_document_their_body_and_subscribe_to_everything(client, warehouse_path, receiver):
    schema = client.get("/openapi.json").json()["components"]["schemas"]["WebhookCreate"]
    for field in ("url", "events", "description"):
        assert schema["properties"][field].get("description"), field
    assert "*" in json.dumps(schema["properties"]["events"])
    r = client.post("/v1/webhooks", json={"url": receiver.url, "events": ["*"]})
    assert r.status_code == 201, r.text
    assert client.post("/v1/webhooks", json={"url": receiver.url, "events": ["run.exploded"]}).status_code == 422
    run = wait_run(client, client.post("/v1/runs", json={"mode": "FULL", "dry_run": True}).json()["id"])
    got = receiver.wait_for(lambda q: q["json"]["type"] == "dry_run.completed")
    assert got[0]["json"]["data"]["run_id"] == run["id"]
    Webhook(r.json()["secret"]).verify(got[0]["body"], got[0]["headers"])


# ------------------------------------------------------------------ items 15, 16: cluster changes, affected
def test_cluster_changes_are_paged_and_count_moved_members(client, warehouse_path):
    dry = _dry_run_with_changes(client, warehouse_path)
    everything, cursor = [], None
    for _ in range(100):
        page = client.get(f"/v1/dry-runs/{dry}/clusters", params={"limit": 2} | ({"cursor": cursor} if cursor else {}))
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= 2
        everything += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            break
    with DuckDBAdapter.from_path(str(warehouse_path)) as a:
        stored = a.scalar("SELECT count(*) FROM idr_out.dry_run_cluster_changes WHERE run_id = $r", {"r": dry})
    assert len(everything) == stored > 2
    assert len({(x["current_resolved_id"], x["proposed_resolved_id"]) for x in everything}) == stored
    for x in everything:
        assert x["members_moved"] == (0 if x["current_resolved_id"] == x["proposed_resolved_id"] else x["members"])
    merged = client.get(f"/v1/dry-runs/{dry}/clusters", params={"change_type": "MERGED", "limit": 1000}).json()
    assert merged["items"] and {x["change_type"] for x in merged["items"]} == {"MERGED"}
    assert client.get(f"/v1/dry-runs/{dry}/clusters", params={"cursor": "garbage"}).status_code == 422


def test_affected_counts_only_changed_entities(client, warehouse_path):
    dry = _dry_run_with_changes(client, warehouse_path)
    s = client.get(f"/v1/dry-runs/{dry}/summary").json()
    assert s["affected_entities"] == s["total_entities"] - s["unchanged_entities"] > 0
    assert s["unchanged_entities"] > 0 and s["removed_entities"] == 1
    with DuckDBAdapter.from_path(str(warehouse_path)) as a:
        stored = a.scalar("SELECT affected_entities FROM idr_out.dry_run_summary WHERE run_id = $r", {"r": dry})
    assert stored == s["affected_entities"]


# ------------------------------------------------------------------ item 18: timestamps, precision, progress
def _timestamps(value, path=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _timestamps(v, f"{path}.{k}")
            if isinstance(v, str) and TS_KEYS.search(k):
                yield f"{path}.{k}", v
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _timestamps(v, f"{path}[{i}]")


def test_timestamps_are_rfc3339_with_z_everywhere(client, warehouse_path, receiver):
    hook = client.post("/v1/webhooks", json={"url": receiver.url, "events": ["*"]}).json()
    dry = _dry_run_with_changes(client, warehouse_path)
    run_id = client.get("/v1/runs").json()["items"][-1]["id"]
    bodies = {
        "runs": client.get("/v1/runs").json(),
        "run": client.get(f"/v1/runs/{run_id}").json(),
        "summary": client.get(f"/v1/dry-runs/{dry}/summary").json(),
        "config": client.get("/v1/config").json(),
        "webhooks": client.get("/v1/webhooks").json(),
    }
    with DuckDBAdapter.from_path(str(warehouse_path)) as a:
        key = a.scalar(
            "SELECT entity_key FROM idr_out.identity_resolved_membership_current WHERE resolved_id = "
            "(SELECT resolved_id FROM idr_out.identity_clusters_current ORDER BY cluster_size DESC LIMIT 1) LIMIT 1"
        )
    first = bodies["entity"] = client.get(f"/v1/entities/{key}").json()
    bodies["cluster"] = client.get(f"/v1/clusters/{first['resolved_id']}").json()
    receiver.wait_for(lambda q: q["json"]["type"] == "run.succeeded")
    receiver.wait_for(lambda q: q["json"]["type"] == "dry_run.completed")
    bodies["deliveries"] = client.get(f"/v1/webhooks/{hook['id']}/deliveries").json()
    for i, req in enumerate(receiver.requests):
        bodies[f"webhook{i}"] = req["json"]
    seen = 0
    for name, body in bodies.items():
        for where, ts in _timestamps(body):
            seen += 1
            assert RFC3339_Z.match(ts), (name, where, ts)
    assert seen > 20
    secs = bodies["summary"]["execution_time_seconds"]
    assert isinstance(secs, float) and secs != int(secs) and 0 < secs < 600


def test_progress_stays_below_100_until_the_run_ends():
    from app.api.schemas import RunOut
    from app.db.models import Run

    now = datetime.now(UTC)
    run = Run(
        id="r",
        target="default",
        mode="FULL",
        dry_run=False,
        status="RUNNING",
        stages_done=9,
        stages_total=9,
        stages=[{"name": "publish", "started_at": "2026-12-03T10:00:00", "ended_at": None}],
        warnings=[],
        counts={},
        created_at=now,
        cancel_requested=False,
    )
    out = RunOut.of(run)
    assert out.progress.percent < 100
    assert out.stages[0].started_at.tzinfo is not None  # a stored naive time is read as UTC
    run.status = "SUCCESS"
    assert RunOut.of(run).progress.percent == 100


# ------------------------------------------------------------------ item 11: exporter settings, failures
def test_bad_exporter_settings_refuse_to_start(monkeypatch, tmp_path, warehouse_path, caplog):
    from app.main import create_app

    monkeypatch.setenv("IDR_METRICS_PUSH_EXPORTERS", "webhook")
    monkeypatch.delenv("IDR_METRICS_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("IDR_METRICS_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    get_settings.cache_clear()
    try:
        with caplog.at_level(logging.CRITICAL), pytest.raises(SystemExit) as e:
            create_app(make_settings(tmp_path, warehouse_path, metrics_push_exporters="webhook"))
        assert e.value.code == 2
        assert "IDR_METRICS_PUSH_EXPORTERS" in caplog.text and "secret" in caplog.text
        env = {k: v for k, v in __import__("os").environ.items()}
        env.update(IDR_DUCKDB_PATH=str(warehouse_path), IDR_STATE_DB_URL=f"sqlite:///{tmp_path}/s.db")
        r = subprocess.run(
            [sys.executable, "-m", "app.cli", "serve", "--port", "0"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert len([x for x in r.stderr.splitlines() if x.strip()]) == 1 and "secret" in r.stderr
        require_service("127.0.0.1", 6379, "Redis")
        env.update(IDR_BROKER_URL="redis://127.0.0.1:6379/15")
        w = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "--pool", "solo"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert w.returncode != 0 and "refusing to start" in (w.stdout + w.stderr) and "secret" in (w.stdout + w.stderr)
    finally:
        get_settings.cache_clear()


def test_export_failures_are_warnings_and_metrics(monkeypatch, app_factory, tmp_path, warehouse_path):
    monkeypatch.setenv("IDR_METRICS_WEBHOOK_URL", "http://127.0.0.1:9/hook")  # nothing listens there
    monkeypatch.setenv("IDR_METRICS_WEBHOOK_SECRET", "s3cret")
    monkeypatch.setenv("IDR_METRICS_WEBHOOK_MAX_ATTEMPTS", "1")
    get_settings.cache_clear()
    try:
        c = app_factory(make_settings(tmp_path, warehouse_path, metrics_push_exporters="webhook"))
        assert c.put("/v1/config", json=demo_config(records=RECORDS)).status_code == 200
        run = wait_run(c, c.post("/v1/runs", json={"mode": "FULL"}).json()["id"])
        assert run["status"].startswith("SUCCESS")
        deadline = time.monotonic() + 30
        while not any("metrics export to webhook failed" in w for w in run["warnings"]):
            assert time.monotonic() < deadline, run
            time.sleep(0.2)
            run = c.get(f"/v1/runs/{run['id']}").json()
        metrics = c.get("/metrics").text
        assert 'idr_metrics_export_failures_total{provider="webhook"} 1.0' in metrics
    finally:
        get_settings.cache_clear()


# ------------------------------------------------------------------ item 19: metrics while the file is busy
HOLD = """
import duckdb, sys, time
while True:
    try:
        c = duckdb.connect(sys.argv[1])
        break
    except duckdb.IOException:
        time.sleep(0.1)
c.execute("CREATE TABLE main.held_by_a_worker AS SELECT 1 AS x")  # the file changes, as in a run
print("held", flush=True)
time.sleep(60)
"""


def _hold(path) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "held"
    return p


def _series(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_metrics_keep_their_series_while_another_process_holds_the_file(app_factory, tmp_path, warehouse_path):
    require_service("127.0.0.1", 6379, "Redis")
    settings = make_settings(
        tmp_path, warehouse_path, broker_url="redis://127.0.0.1:6379/15", duckdb_keep_open_seconds=0
    )
    with DuckDBAdapter.from_path(str(warehouse_path)) as a:
        from app.config.apply import apply_config
        from app.pipeline.runner import run_pipeline

        apply_config(a, demo_config(records=RECORDS))
        assert run_pipeline(a, "FULL").ok
    c = app_factory(settings)
    fresh = _series(c.get("/metrics").text)
    assert fresh["idr_metrics_export_up"] == 1 and fresh["idr_metrics_export_age_seconds"] == 0
    warehouse_series = {k for k in fresh if k.startswith(("idr_entities", "idr_run", "idr_last_run"))}
    assert warehouse_series
    holder = _hold(warehouse_path)  # a Celery worker's run, as far as the API can tell
    try:
        time.sleep(0.3)
        busy = _series(c.get("/metrics").text)
        assert busy["idr_metrics_export_up"] == 0 and busy["idr_metrics_export_age_seconds"] > 0
        assert warehouse_series <= set(busy)
        # An API (re)started while the file is held serves the values the last one read.
        c2 = app_factory(settings)
        restarted = _series(c2.get("/metrics").text)
        assert restarted["idr_metrics_export_up"] == 0 and restarted["idr_metrics_export_age_seconds"] > 0
        assert warehouse_series <= set(restarted)
        assert {k: restarted[k] for k in warehouse_series} == {k: fresh[k] for k in warehouse_series}
    finally:
        holder.kill()
        holder.wait()
    again = _series(c.get("/metrics").text)
    assert again["idr_metrics_export_up"] == 1
