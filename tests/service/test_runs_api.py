"""Run lifecycle rules: one writer per target (409 naming it), Idempotency-Key, cancel."""

from __future__ import annotations

from app.demo.generator import demo_config
from tests.service.conftest import RECORDS, make_settings, wait_run
from tests.service.flow import fingerprints


def test_conflict_idempotency_and_cancel(app_factory, warehouse_path, tmp_path):
    client = app_factory(make_settings(tmp_path, warehouse_path, run_stage_delay_seconds=0.3, embedded_workers=3))
    assert client.put("/v1/config", json=demo_config(records=RECORDS)).status_code == 200
    before = fingerprints(warehouse_path)

    first = client.post("/v1/runs", json={"mode": "FULL"})
    assert first.status_code == 202
    run_id = first.json()["id"]
    second = client.post("/v1/runs", json={"mode": "INCR"})
    assert second.status_code == 409, second.text
    problem = second.json()
    assert second.headers["content-type"].startswith("application/problem+json")
    assert problem["run_id"] == run_id and run_id in problem["detail"]

    # Dry runs may run alongside; the same Idempotency-Key returns the same run.
    h = {"Idempotency-Key": "dry-1"}
    d1 = client.post("/v1/runs", json={"mode": "FULL", "dry_run": True}, headers=h)
    d2 = client.post("/v1/runs", json={"mode": "FULL", "dry_run": True}, headers=h)
    assert d1.status_code == d2.status_code == 202, (d1.text, d2.text)
    assert d1.json()["id"] == d2.json()["id"]
    assert d2.headers["location"] == f"/v1/runs/{d1.json()['id']}"
    reused = client.post("/v1/runs", json={"mode": "INCR", "dry_run": True}, headers=h)
    assert reused.status_code == 409 and reused.json()["field"] == "Idempotency-Key"
    listed = client.get("/v1/runs", params={"dry_run": True}).json()["items"]
    assert [r["id"] for r in listed] == [d1.json()["id"]]

    # Cancel the real run mid-flight: it stops before publish; production is untouched.
    wait_run(client, run_id, until=lambda b: b["status"] == "RUNNING" and b["current_stage"])
    c = client.post(f"/v1/runs/{run_id}/cancel")
    assert c.status_code == 202 and c.json()["cancel_requested"] is True
    done = wait_run(client, run_id)
    assert done["status"] == "CANCELLED", done
    assert fingerprints(warehouse_path) == before
    assert client.post(f"/v1/runs/{run_id}/cancel").status_code == 409
    assert wait_run(client, d1.json()["id"])["status"] == "DRY_RUN_COMPLETE"

    # The target is free again; a queued run is cancelled at once.
    again = client.post("/v1/runs", json={"mode": "FULL"})
    assert again.status_code == 202
    wait_run(client, again.json()["id"], until=lambda b: b["status"] != "QUEUED")
    q = client.post("/v1/runs", json={"mode": "FULL", "dry_run": True, "target": "nope"})
    assert q.status_code == 422 and q.json()["field"] == "target"
    assert wait_run(client, again.json()["id"])["status"] in ("SUCCESS", "SUCCESS_WITH_WARNINGS")

    # Filters and cursor pagination over the list.
    ids = []
    cursor = None
    while True:
        page = client.get("/v1/runs", params={"limit": 1} | ({"cursor": cursor} if cursor else {})).json()
        ids += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(ids) == len(set(ids)) == 3
    assert [r["id"] for r in client.get("/v1/runs", params={"status": "CANCELLED"}).json()["items"]] == [run_id]
    assert client.get("/v1/runs", params={"cursor": "garbage!"}).json()["field"] == "cursor"


def test_webhook_retries_on_5xx_not_on_4xx(app_factory, warehouse_path, tmp_path, receiver):
    client = app_factory(make_settings(tmp_path, warehouse_path))
    assert client.put("/v1/config", json=demo_config(records=RECORDS)).status_code == 200
    hook = client.post("/v1/webhooks", json={"url": receiver.url, "events": ["dry_run.completed"]}).json()
    receiver.plan = [503, 429, 200, 400]
    r1 = client.post("/v1/runs", json={"mode": "FULL", "dry_run": True}).json()
    wait_run(client, r1["id"])
    receiver.wait_for(lambda q: len(receiver.requests) >= 3)
    d = wait_deliveries(client, hook["id"], 1)[0]
    assert [a["status_code"] for a in d["attempt_log"]] == [503, 429, 200]
    assert [a["outcome"] for a in d["attempt_log"]] == ["retry", "retry", "success"]
    assert len({q["headers"]["webhook-id"] for q in receiver.requests}) == 1  # stable across retries
    r2 = client.post("/v1/runs", json={"mode": "FULL", "dry_run": True}).json()
    wait_run(client, r2["id"])
    d = wait_deliveries(client, hook["id"], 2)[0]
    assert d["status"] == "FAILED" and [a["status_code"] for a in d["attempt_log"]] == [400]
    metrics = client.get("/metrics").text
    assert 'idr_webhook_delivery_attempts_total{outcome="retry"} 2.0' in metrics
    assert 'idr_service_runs{status="DRY_RUN_COMPLETE"} 2.0' in metrics
    assert "idr_http_requests_total" in metrics and "idr_metrics_export_up 1.0" in metrics


def wait_deliveries(client, hook_id: str, n: int) -> list[dict]:
    import time

    for _ in range(200):
        items = client.get(f"/v1/webhooks/{hook_id}/deliveries").json()["items"]
        if len(items) >= n and items[0]["status"] != "PENDING":
            return items
        time.sleep(0.05)
    raise AssertionError(f"deliveries not settled: {items}")
