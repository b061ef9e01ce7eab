"""The /metrics exposition: latest values, state set, cumulative counters, bounded labels,
promtool check metrics, caching and behaviour when the warehouse cannot be read."""

from __future__ import annotations

import subprocess

from prometheus_client.parser import text_string_to_metric_families

from app.metrics.collector import IdrCollector, file_state_key, make_registry, render
from app.metrics.recorder import record_metric, record_run_metrics
from app.platforms.duckdb import DuckDBAdapter
from tests.metrics.conftest import make_result, populate_outputs, require_binary


def samples(body: bytes) -> dict[tuple, float]:
    out = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def get(smp, name, **labels):
    key = (name, tuple(sorted({k: str(v) for k, v in labels.items()}.items())))
    assert key in smp, f"missing {key}; have {[k for k in smp if k[0] == name]}"
    return smp[key]


RUN = {"platform": "duckdb", "dry_run": "false"}


def seeded(adapter):
    populate_outputs(adapter)
    record_run_metrics(adapter, make_result("run_1", mode="FULL", edges=9000))
    record_run_metrics(adapter, make_result("run_2", mode="INCR", edges=40, entities=100, skipped=20))
    record_run_metrics(adapter, make_result("run_3", mode="INCR", status="FAILED", edges=5, entities=50))
    record_run_metrics(adapter, make_result("dry_1", mode="INCR", dry_run=True, status="DRY_RUN_COMPLETE"))


def test_scrape_shows_latest_values_state_set_and_counters(adapter):
    seeded(adapter)
    body, ctype = render(make_registry(lambda: adapter_for(adapter)))
    assert ctype.startswith("text/plain")
    smp = samples(body)
    assert get(smp, "idr_metrics_export_up") == 1
    # latest per label set: INCR shows run_3, FULL still run_1
    assert get(smp, "idr_edges_created", run_mode="INCR", **RUN) == 5
    assert get(smp, "idr_edges_created", run_mode="FULL", **RUN) == 9000
    assert get(smp, "idr_edges_created", run_mode="FULL", rule_id="email", **RUN) == 6000
    # the enum: the design's alert expression reads 1 exactly for the failed mode
    assert get(smp, "idr_run_status", run_mode="INCR", status="FAILED", **RUN) == 1
    assert get(smp, "idr_run_status", run_mode="INCR", status="SUCCESS", **RUN) == 0
    assert get(smp, "idr_run_status", run_mode="FULL", status="FAILED", **RUN) == 0
    assert get(smp, "idr_run_status", run_mode="INCR", status="DRY_RUN_COMPLETE",
               platform="duckdb", dry_run="true") == 1  # fmt: skip
    # true cumulative counters over history
    assert get(smp, "idr_edges_created_cumulative_total", run_mode="INCR", **RUN) == 45
    assert get(smp, "idr_entities_processed_cumulative_total", run_mode="INCR", **RUN) == 150
    assert get(smp, "idr_runs_total", run_mode="INCR", status="SUCCESS", **RUN) == 1
    assert get(smp, "idr_runs_total", run_mode="INCR", status="FAILED", **RUN) == 1
    assert get(smp, "idr_runs_total", run_mode="FULL", status="SUCCESS", **RUN) == 1
    # run id only in the info metric
    assert get(smp, "idr_last_run_info", run_mode="INCR", status="FAILED", run_id="run_3", **RUN) == 1
    assert get(smp, "idr_last_run_info", run_mode="FULL", status="SUCCESS", run_id="run_1", **RUN) == 1
    assert [k for k in smp if "run_id" in dict(k[1])] == [k for k in smp if k[0] == "idr_last_run_info"]
    # cluster metrics: one series per platform, not per mode (stale FULL series would linger)
    assert [k for k in smp if k[0] == "idr_largest_cluster_size"] == [
        ("idr_largest_cluster_size", (("platform", "duckdb"),))
    ]
    assert get(smp, "idr_singleton_entities", platform="duckdb") == 3
    assert get(smp, "idr_clusters_over_threshold", platform="duckdb") == 1
    # timestamps for the stale-run alert: the last success of INCR is run_2's, before run_3
    ok_at = get(smp, "idr_last_success_timestamp_seconds", run_mode="INCR", **RUN)
    last_at = get(smp, "idr_last_run_timestamp_seconds", run_mode="INCR", **RUN)
    assert 0 < ok_at < last_at


def adapter_for(adapter: DuckDBAdapter) -> DuckDBAdapter:
    """A second adapter on the same database instance (same process): a fresh cursor."""
    return DuckDBAdapter(lambda: adapter.conn.cursor())


def test_label_cardinality_is_bounded_by_runs(adapter):
    populate_outputs(adapter)
    for i in range(30):
        record_run_metrics(adapter, make_result(f"run_{i}", mode="INCR"))
    smp = samples(render(make_registry(lambda: adapter_for(adapter)))[0])
    record_run_metrics(adapter, make_result("run_30", mode="INCR"))
    smp2 = samples(render(make_registry(lambda: adapter_for(adapter)))[0])
    # one more run: same series (except the info metric's run_id), counters grow
    assert {k for k in smp if k[0] != "idr_last_run_info"} == {k for k in smp2 if k[0] != "idr_last_run_info"}
    assert get(smp2, "idr_runs_total", run_mode="INCR", status="SUCCESS", **RUN) == 31
    assert len(smp2) < 150


def test_promtool_check_metrics_passes(adapter):
    promtool = require_binary("promtool")
    seeded(adapter)
    record_metric(adapter, "run_x", "my_team_backlog_items", 2.0, dimensions={"team name": "a", "run_id": "x"})
    body, _ = render(make_registry(lambda: adapter_for(adapter)))
    assert b'my_team_backlog_items{team_name="a"} 2.0' in body  # sanitized label, run_id dropped
    proc = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()


def test_openmetrics_rendering_is_valid(adapter):
    # Prometheus negotiates OpenMetrics from prometheus_client: families must not clash there.
    from prometheus_client.openmetrics.exposition import generate_latest as om_latest
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse

    seeded(adapter)
    text = om_latest(make_registry(lambda: adapter_for(adapter))).decode()
    names = [f.name for f in om_parse(text)]
    assert len(names) == len(set(names)) and "idr_edges_created_cumulative" in names


def test_unreadable_warehouse_answers_up_zero_and_keeps_last_values(adapter):
    seeded(adapter)
    calls = {"n": 0}

    def flaky():
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError("database is locked by a run")
        return adapter_for(adapter)

    reg = make_registry(flaky)
    first = samples(render(reg)[0])
    second = samples(render(reg)[0])
    assert get(first, "idr_metrics_export_up") == 1 and get(second, "idr_metrics_export_up") == 0
    assert get(second, "idr_total_clusters", platform="duckdb") == 7  # series survive the lock

    empty = samples(render(make_registry(lambda: (_ for _ in ()).throw(OSError("down"))))[0])
    assert empty == {("idr_metrics_export_up", ()): 0.0}


def test_cache_key_reuses_result_until_file_changes(adapter, db_path):
    seeded(adapter)
    adapter.execute("CHECKPOINT")
    opened = {"n": 0}

    def factory():
        opened["n"] += 1
        return adapter_for(adapter)

    collector = IdrCollector(factory, cache_key=file_state_key(db_path, f"{db_path}.wal"))
    list(collector.collect())
    list(collector.collect())
    assert opened["n"] == 1
    record_run_metrics(adapter, make_result("run_9", mode="FULL", edges=1))
    adapter.execute("CHECKPOINT")
    fams = {f.name: f for f in collector.collect()}
    assert opened["n"] == 2
    full = [s for s in fams["idr_edges_created"].samples if s.labels.get("run_mode") == "FULL" and not
            s.labels.get("rule_id")]  # fmt: skip
    assert [s.value for s in full] == [1.0]
