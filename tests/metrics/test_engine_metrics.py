"""After real FULL and INCR runs on the demo data, every metric of the taxonomy is in
metrics_export with the value that independent SQL over the output tables gives."""

from __future__ import annotations

import json

import pytest

from app.config.apply import apply_config
from app.demo.generator import demo_config, generate, make_delta
from app.metrics.taxonomy import CLUSTER_METRIC_NAMES, RUN_METRIC_NAMES, STAGE_METRIC_NAMES
from app.pipeline.runner import run_pipeline
from app.platforms.duckdb import DuckDBAdapter
from app.schema import init_schema


def metrics(a: DuckDBAdapter, run_id: str) -> list[tuple[str, float, dict]]:
    return [
        (n, v, json.loads(d) if d else {})
        for n, v, d in a.fetchall(
            "SELECT metric_name, metric_value, dimensions FROM idr_out.metrics_export WHERE run_id = $r",
            {"r": run_id},
        )
    ]


def one(rows, name: str, **dims) -> float:
    found = [
        v for n, v, d in rows
        if n == name and all(str(d.get(k)) == str(x) for k, x in dims.items())
        and ("rule_id" in dims or "rule_id" not in d)
        and ("stage" in dims or "stage" not in d)
        and ("status" in dims or "status" not in d)
    ]  # fmt: skip
    assert len(found) == 1, (name, dims, found)
    return found[0]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    a = DuckDBAdapter.from_path(str(tmp_path_factory.mktemp("m") / "demo.duckdb"))
    generate(a, 3000, seed=7)
    init_schema(a)
    apply_config(a, demo_config(records=3000))
    full = run_pipeline(a, "FULL")
    assert full.ok, full.error_message
    yield a, full
    a.close()


def check_run(a: DuckDBAdapter, result) -> None:
    rows = metrics(a, result.run_id)
    names = {n for n, _, _ in rows}
    assert set(RUN_METRIC_NAMES) | set(CLUSTER_METRIC_NAMES) | set(STAGE_METRIC_NAMES) <= names
    assert {"idr_rule_entities_matched", "idr_rule_groups_matched"} <= names
    for _, _, d in rows:
        assert d["platform"] == "duckdb" and d["dry_run"] is False and d["run_mode"] == result.mode
    h = a.fetch_dicts("SELECT * FROM idr_out.run_history WHERE run_id = $r", {"r": result.run_id})[0]
    assert one(rows, "idr_entities_processed") == h["entities_processed"]
    assert one(rows, "idr_edges_created") == h["edges_created"]
    assert one(rows, "idr_edges_updated") == h["edges_updated"]
    assert one(rows, "idr_lp_iterations") == h["lp_iterations"] >= 1
    assert one(rows, "idr_values_excluded") == h["values_excluded"]
    assert one(rows, "idr_run_status", status=h["status"]) == 1
    assert one(rows, "idr_run_status", status="FAILED") == 0
    assert one(rows, "idr_run_duration_seconds") > 0
    assert one(rows, "idr_run_statements") == h["statements"] == result.statements > 10
    skipped = a.scalar("SELECT count(*) FROM idr_out.skipped_identifier_groups WHERE run_id = $r", {"r": result.run_id})
    assert one(rows, "idr_groups_skipped") == skipped
    # Cluster metrics, recomputed from membership (independent of the clusters table).
    sizes = [
        r[0]
        for r in a.fetchall("SELECT count(*) FROM idr_out.identity_resolved_membership_current GROUP BY resolved_id")
    ]
    threshold = int(a.scalar("SELECT config_value FROM idr_meta.config WHERE config_key = 'large_cluster_threshold'"))
    assert one(rows, "idr_total_clusters") == len(sizes)
    assert one(rows, "idr_total_entities_resolved") == sum(sizes)
    assert one(rows, "idr_largest_cluster_size") == max(sizes)
    assert one(rows, "idr_clusters_over_1000") == sum(1 for s in sizes if s > 1000)
    assert one(rows, "idr_singleton_count") == sum(1 for s in sizes if s == 1)
    assert one(rows, "idr_avg_cluster_size") == pytest.approx(sum(sizes) / len(sizes))
    assert one(rows, "idr_clusters_over_threshold") == sum(1 for s in sizes if s > threshold)
    # Cluster confidence over the clusters of several records, recomputed from the clusters.
    scores = [
        r[0]
        for r in a.fetchall("SELECT confidence_score FROM idr_out.identity_clusters_current WHERE cluster_size > 1")
    ]
    assert scores and one(rows, "idr_cluster_confidence", stat="mean") == pytest.approx(sum(scores) / len(scores))
    assert one(rows, "idr_cluster_confidence", stat="min") == pytest.approx(min(scores))
    assert one(rows, "idr_clusters_by_confidence", upper="1.0") == len(scores)
    assert one(rows, "idr_clusters_by_confidence", upper="0.7") == sum(1 for x in scores if x <= 0.7)
    # Stage metrics == stage_metrics rows.
    for s in a.fetch_dicts("SELECT * FROM idr_out.stage_metrics WHERE run_id = $r", {"r": result.run_id}):
        assert one(rows, "idr_stage_duration_seconds", stage=s["stage_name"]) == s["duration_seconds"]
        assert one(rows, "idr_stage_rows_processed", stage=s["stage_name"], direction="in") == s["rows_in"]
        assert one(rows, "idr_stage_rows_processed", stage=s["stage_name"], direction="out") == s["rows_out"]
    # Per-rule edges created add up to the aggregate.
    rules = [r[0] for r in a.fetchall("SELECT rule_id FROM idr_meta.rule WHERE is_active")]
    assert sum(one(rows, "idr_edges_created", rule_id=r) for r in rules) == h["edges_created"]
    assert sum(one(rows, "idr_groups_skipped", rule_id=r) for r in rules) == skipped


def test_full_run_metrics(warehouse):
    a, full = warehouse
    check_run(a, full)
    ids = [r[0] for r in a.fetchall("SELECT metric_id FROM idr_out.metrics_export")]
    assert ids and None not in ids and len(set(ids)) == len(ids)
    rows = metrics(a, full.run_id)
    # First FULL: every edge is new; per rule it equals the edges table.
    for rule_id, n in a.fetchall("SELECT rule_id, count(*) FROM idr_out.identity_edges_current GROUP BY 1"):
        assert one(rows, "idr_edges_created", rule_id=rule_id) == n
    assert one(rows, "idr_entities_processed") == a.scalar(
        "SELECT (SELECT count(DISTINCT customer_id) FROM crm.customers) + "
        "(SELECT count(DISTINCT order_id) FROM shop.orders) + (SELECT count(DISTINCT member_id) FROM loyalty.members)"
    )


def test_incr_run_metrics(warehouse):
    a, _ = warehouse
    delta = make_delta(a, 0.05, seed=8)
    incr = run_pipeline(a, "INCR")
    assert incr.ok, incr.error_message
    check_run(a, incr)
    assert one(metrics(a, incr.run_id), "idr_entities_processed") == delta["changed"]


def test_dry_run_records_run_metrics_without_cluster_state(warehouse):
    a, _ = warehouse
    dry = run_pipeline(a, "FULL", dry_run=True)
    assert dry.status == "DRY_RUN_COMPLETE"
    rows = metrics(a, dry.run_id)
    assert one(rows, "idr_run_status", status="DRY_RUN_COMPLETE") == 1
    assert all(d["dry_run"] is True for _, _, d in rows)
    assert not {n for n, _, _ in rows} & set(CLUSTER_METRIC_NAMES)
