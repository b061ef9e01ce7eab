"""End to end: `idr metrics serve` in its own process, scraped by a real Prometheus server,
whose query API must return the recorded values and fire the design's alerts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.metrics.recorder import record_run_metrics
from tests.metrics.conftest import PROM_DIR, REPO, free_port, make_result, populate_outputs, require_binary

DEADLINE_SECONDS = 90


def wait_http(url: str, proc: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not come up")


def query(base: str, expr: str) -> list[dict]:
    r = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert r["status"] == "success", (expr, r)
    return r["data"]["result"]


def poll(base: str, expr: str, deadline: float, want=lambda res: bool(res)) -> list[dict]:
    res: list[dict] = []
    while time.monotonic() < deadline:
        res = query(base, expr)
        if want(res):
            return res
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {expr!r}; last result {res}")


@pytest.fixture
def stack(tmp_path: Path, adapter, db_path):
    prometheus = require_binary("prometheus")
    populate_outputs(adapter)
    record_run_metrics(adapter, make_result("run_full", mode="FULL"))
    record_run_metrics(adapter, make_result("run_incr_ok", mode="INCR", edges=40, entities=100, skipped=20))
    record_run_metrics(
        adapter, make_result("run_incr_bad", mode="INCR", status="FAILED", edges=5, entities=50, skipped=10)
    )
    adapter.close()  # the exporter process opens the file read-only

    procs: list[subprocess.Popen] = []
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        exp_port = free_port()
        serve = subprocess.Popen(
            [sys.executable, "-c", "from app.metrics.cli import metrics_app; metrics_app()",
             "serve", "--db", db_path, "--port", str(exp_port)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        procs.append(serve)
        exporter = f"http://127.0.0.1:{exp_port}"
        wait_http(f"{exporter}/metrics", serve, deadline)

        prom_port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n  - {PROM_DIR / 'alerts.yml'}\n"
            "scrape_configs:\n  - job_name: idr_exporter\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{exp_port}']\n"
        )
        prom = subprocess.Popen(
            [prometheus, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{prom_port}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        procs.append(prom)
        base = f"http://127.0.0.1:{prom_port}"
        wait_http(f"{base}/-/ready", prom, deadline)
        yield base, exporter, deadline
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def value(res: list[dict]) -> float:
    assert len(res) == 1, res
    return float(res[0]["value"][1])


def test_real_prometheus_scrapes_and_alerts(stack):
    base, exporter, deadline = stack
    poll(base, 'up{job="idr_exporter"} == 1', deadline)
    assert value(poll(base, "idr_metrics_export_up", deadline)) == 1
    assert value(query(base, "idr_total_clusters")) == 7
    assert value(query(base, "idr_total_entities_resolved")) == 7508
    assert value(query(base, "idr_largest_cluster_size")) == 6000
    assert value(query(base, "idr_singleton_entities")) == 3
    assert value(query(base, 'idr_edges_created{run_mode="FULL",rule_id="email"}')) == 6000
    assert value(query(base, 'idr_edges_created{run_mode="INCR",rule_id=""}')) == 5
    assert value(query(base, 'idr_edges_created_cumulative_total{run_mode="INCR",rule_id=""}')) == 45
    assert value(query(base, 'sum(idr_runs_total{status="FAILED"})')) == 1
    assert value(query(base, 'idr_stage_duration_seconds{run_mode="FULL",stage="components"}')) == 6.0
    # the design's alert expressions, evaluated by Prometheus itself
    failed = query(base, 'idr_run_status{status="FAILED"} > 0')
    assert [r["metric"]["run_mode"] for r in failed] == ["INCR"]
    skip = query(base, "idr_groups_skipped / idr_entities_processed > 0.1")
    assert [(r["metric"]["run_mode"], float(r["value"][1])) for r in skip] == [("INCR", 0.2)]
    info = query(base, 'idr_last_run_info{run_mode="INCR"}')
    assert [r["metric"]["run_id"] for r in info] == ["run_incr_bad"]

    firing = poll(
        base, 'ALERTS{alertstate="firing"}', deadline,
        want=lambda res: len({r["metric"]["alertname"] for r in res}) >= 3,
    )  # fmt: skip
    names = sorted(r["metric"]["alertname"] for r in firing)
    assert names == ["IDRHighSkipRate", "IDRLargeClusterCreated", "IDRRunFailed"]
    alerts = httpx.get(f"{base}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    run_failed = [a for a in alerts if a["labels"]["alertname"] == "IDRRunFailed"]
    assert run_failed[0]["annotations"]["summary"] == "IDR run failed: run_incr_bad"

    # the Grafana dashboard's queries are valid PromQL over series that exist; rate() and
    # increase() need two samples of a series, which a loaded machine may not have yet.
    poll(base, "count_over_time(idr_runs_total[1h]) >= 3", deadline)
    dash = json.loads((PROM_DIR.parent / "grafana" / "idr-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert len(exprs) > 10
    for expr in exprs:
        res = query(base, expr.replace("$platform", ".*"))
        assert res, f"dashboard query returns nothing: {expr}"
    used = set(re.findall(r"\bidr_[a-z0-9_]+", " ".join(exprs)))
    exposed = {m for m in httpx.get(f"{base}/api/v1/label/__name__/values", timeout=5).json()["data"]}
    assert used <= exposed, used - exposed
