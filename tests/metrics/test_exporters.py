"""Push exporters against a local HTTP receiver: payload, signature, retries, no duplicates,
per-provider bookkeeping, plugin discovery and the CLI."""

from __future__ import annotations

import io
import json

import pytest
from typer.testing import CliRunner

from app.core.errors import ConfigError
from app.metrics.cli import metrics_app
from app.metrics.exporters import available_exporters, export_pending, load_exporter
from app.metrics.exporters.datadog import DataDogExporter
from app.metrics.exporters.pushgateway import PushgatewayExporter
from app.metrics.exporters.stdout import StdoutExporter
from app.metrics.exporters.webhook import WebhookExporter, sign
from app.metrics.recorder import record_run_metrics
from tests.metrics.conftest import make_result, populate_outputs

SECRET = "s3cret"


def webhook(receiver, **kw) -> WebhookExporter:
    kw.setdefault("backoff_seconds", 0.01)
    kw.setdefault("backoff_max_seconds", 0.05)
    return WebhookExporter(receiver.url + "/hook", SECRET, **kw)


def seeded(adapter):
    populate_outputs(adapter)
    record_run_metrics(adapter, make_result("run_1"))
    record_run_metrics(adapter, make_result("run_2", mode="INCR", status="FAILED"))


def row_ids(adapter, run_id=None) -> set[str]:
    sql = "SELECT metric_id FROM idr_out.metrics_export" + (" WHERE run_id = $r" if run_id else "")
    return {r[0] for r in adapter.fetchall(sql, {"r": run_id} if run_id else None)}


def unexported(adapter) -> int:
    return adapter.scalar("SELECT count(*) FROM idr_out.metrics_export WHERE exported_at IS NULL")


def logged(adapter, provider) -> list[str]:
    return [r[0] for r in adapter.fetchall(
        "SELECT metric_id FROM idr_out.metrics_export_log WHERE provider = $p", {"p": provider})]  # fmt: skip


def test_webhook_payload_signature_and_marking(adapter, receiver):
    seeded(adapter)
    report = export_pending(adapter, webhook(receiver))
    assert report.ok and report.run_ids == ["run_1", "run_2"] and report.batches == 2
    assert len(receiver.requests) == 2
    for req, run_id, status in zip(receiver.requests, ["run_1", "run_2"], ["SUCCESS", "FAILED"], strict=True):
        assert req.method == "POST" and req.path == "/hook"
        assert req.headers["x-idr-signature"] == sign(SECRET, req.body)
        p = req.json()
        assert set(p) >= {"run_id", "timestamp", "status", "metrics"}
        assert p["run_id"] == run_id and p["status"] == status
        assert {m["metric_id"] for m in p["metrics"]} == row_ids(adapter, run_id)
        dur = [m for m in p["metrics"] if m["name"] == "idr_run_duration_seconds"]
        assert dur == [dur[0]] and dur[0]["value"] == 12.5
        mode = p["metrics"][0]["dimensions"]["run_mode"]
        assert dur[0]["dimensions"] == {"platform": "duckdb", "run_mode": mode, "dry_run": False}
    assert unexported(adapter) == 0
    assert sorted(logged(adapter, "webhook")) == sorted(row_ids(adapter))
    # nothing left: a second export sends nothing
    again = export_pending(adapter, webhook(receiver))
    assert again.ok and again.exported == 0 and len(receiver.requests) == 2


def test_webhook_retries_503_without_duplicates(adapter, receiver):
    seeded(adapter)
    receiver.script = [503, 503]
    report = export_pending(adapter, webhook(receiver), run_id="run_1")
    assert report.ok and report.exported == len(row_ids(adapter, "run_1"))
    assert [r.status for r in receiver.requests] == [503, 503, 200]
    # the retried request is byte-identical (same signature and idempotency key)
    assert len({r.body for r in receiver.requests}) == 1
    assert len({r.headers["idempotency-key"] for r in receiver.requests}) == 1
    accepted_ids = [m["metric_id"] for r in receiver.accepted for m in r.json()["metrics"]]
    assert sorted(accepted_ids) == sorted(row_ids(adapter, "run_1"))  # each row delivered once
    assert sorted(logged(adapter, "webhook")) == sorted(row_ids(adapter, "run_1"))
    # run_2 was not asked for and stays pending
    assert unexported(adapter) == len(row_ids(adapter, "run_2"))
    export_pending(adapter, webhook(receiver))
    all_ids = [m["metric_id"] for r in receiver.accepted for m in r.json()["metrics"]]
    assert sorted(all_ids) == sorted(row_ids(adapter)) and unexported(adapter) == 0


def test_webhook_retries_timeouts(adapter, receiver):
    record_run_metrics(adapter, make_result("run_1", dry_run=True, status="DRY_RUN_COMPLETE"))
    receiver.script = [("sleep", 1.0)]
    report = export_pending(adapter, webhook(receiver, timeout=0.3))
    assert report.ok and len(receiver.requests) == 2
    assert receiver.requests[0].headers["idempotency-key"] == receiver.requests[1].headers["idempotency-key"]
    assert unexported(adapter) == 0


def test_failing_provider_leaves_rows_pending(adapter, receiver):
    seeded(adapter)
    receiver.default = 500
    report = export_pending(adapter, webhook(receiver, max_attempts=3))
    assert not report.ok and "500" in (report.error or "") and report.exported == 0
    assert len(receiver.requests) == 3  # retried, then gave up; stopped before run_2
    assert unexported(adapter) == len(row_ids(adapter)) and logged(adapter, "webhook") == []
    receiver.default = 200
    assert export_pending(adapter, webhook(receiver)).ok
    assert unexported(adapter) == 0


def test_webhook_does_not_retry_client_errors(adapter, receiver):
    seeded(adapter)
    receiver.default = 400
    report = export_pending(adapter, webhook(receiver))
    assert not report.ok and len(receiver.requests) == 1 and unexported(adapter) == len(row_ids(adapter))


def test_webhook_requires_secret(receiver):
    with pytest.raises(ConfigError):
        WebhookExporter(receiver.url, "")


def test_bookkeeping_is_per_provider(adapter, receiver):
    seeded(adapter)
    assert export_pending(adapter, webhook(receiver)).ok
    assert unexported(adapter) == 0  # exported_at: first success anywhere
    out = io.StringIO()
    report = export_pending(adapter, StdoutExporter(out), batch_size=7)
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert report.ok and report.exported == len(row_ids(adapter)) and report.batches > 2
    assert sorted(x["metric_id"] for x in lines) == sorted(row_ids(adapter))  # once each, across batches
    assert export_pending(adapter, StdoutExporter(out)).exported == 0


def test_datadog_official_client_against_local_receiver(adapter, receiver):
    seeded(adapter)
    receiver.response_body = b'{"errors": []}'
    receiver.script = [202]
    exporter = DataDogExporter("dd-key", base_url=receiver.url, tags=["env:test"])
    report = export_pending(adapter, exporter)
    assert report.ok, report.error
    assert len(receiver.requests) == 1
    req = receiver.requests[0]
    assert req.path == "/api/v2/series" and req.headers["dd-api-key"] == "dd-key"
    series = req.json()["series"]
    assert len(series) == len(row_ids(adapter))
    by = {(s["metric"], tuple(s["tags"])): s for s in series}
    dur = by[("idr_run_duration_seconds", ("dry_run:false", "platform:duckdb", "run_mode:INCR", "env:test"))]
    assert dur["points"][0]["value"] == 12.5 and dur["type"] == 3  # GAUGE
    edges = by[("idr_edges_created", ("dry_run:false", "platform:duckdb", "rule_id:email", "run_mode:FULL",
                                      "env:test"))]  # fmt: skip
    assert edges["points"][0]["value"] == 6000 and edges["type"] == 1  # COUNT
    assert not any(t.startswith("run_id:") for s in series for t in s["tags"])
    assert unexported(adapter) == 0


def test_datadog_failure_leaves_rows_pending(adapter, receiver):
    seeded(adapter)
    receiver.default = 403
    report = export_pending(adapter, DataDogExporter("bad", base_url=receiver.url))
    assert not report.ok and unexported(adapter) == len(row_ids(adapter))


def test_pushgateway_pushes_scrape_state(adapter, receiver):
    seeded(adapter)
    report = export_pending(adapter, PushgatewayExporter(receiver.url, job="idr", instance="wh1"))
    assert report.ok and len(receiver.requests) == 1
    req = receiver.requests[0]
    assert req.method == "PUT" and req.path == "/metrics/job/idr/instance/wh1"
    text = req.body.decode()
    assert 'idr_run_status{dry_run="false",platform="duckdb",run_mode="INCR",status="FAILED"} 1.0' in text
    assert 'idr_largest_cluster_size{platform="duckdb"} 6000.0' in text
    assert unexported(adapter) == 0
    receiver.default = 500
    record_run_metrics(adapter, make_result("run_3"))
    assert not export_pending(adapter, PushgatewayExporter(receiver.url)).ok
    assert unexported(adapter) == len(row_ids(adapter, "run_3"))


def test_entry_points_and_loading():
    eps = available_exporters()
    assert {"webhook", "datadog", "pushgateway", "stdout"} <= set(eps)
    assert isinstance(load_exporter("stdout"), StdoutExporter)
    wh = load_exporter("webhook", {"url": "http://127.0.0.1:9/x", "secret": "k", "max_attempts": "2"})
    assert isinstance(wh, WebhookExporter) and wh.max_attempts == 2
    with pytest.raises(ConfigError):
        load_exporter("nope")


def test_cli_export_and_providers(adapter, db_path, receiver):
    seeded(adapter)
    adapter.close()  # the CLI opens the file itself
    runner = CliRunner()
    res = runner.invoke(metrics_app, ["providers"])
    assert res.exit_code == 0 and "webhook" in res.stdout
    res = runner.invoke(metrics_app, ["export", "--provider", "stdout", "--db", db_path])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert lines and {x["run_id"] for x in lines} == {"run_1", "run_2"}
    receiver.default = 500
    opts = ["-o", f"url={receiver.url}", "-o", "secret=k", "-o", "max_attempts=1"]
    res = runner.invoke(metrics_app, ["export", "--provider", "webhook", "--db", db_path, *opts])
    assert res.exit_code == 1 and "500" in res.output
    res = runner.invoke(metrics_app, ["export", "--provider", "webhook", "--db", db_path])
    assert res.exit_code == 2  # no url/secret configured
