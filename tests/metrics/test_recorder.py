"""record_metric / record_run_metrics against hand-made output tables, cross-checked by
independent SQL on run_history, stage_metrics, rule_match_audit_current and membership."""

from __future__ import annotations

import json

import pytest

from app.metrics.recorder import record_metric, record_run_metrics
from app.metrics.taxonomy import CLUSTER_METRIC_NAMES, RUN_METRIC_NAMES, RUN_STATUSES, STAGE_METRIC_NAMES
from tests.metrics.conftest import THRESHOLD, make_result, populate_outputs, write_history


def rows(adapter, run_id):
    out = adapter.fetch_dicts(
        "SELECT metric_name, metric_value, metric_type, dimensions, recorded_at, exported_at, metric_id "
        "FROM idr_out.metrics_export WHERE run_id = $r",
        {"r": run_id},
    )
    for r in out:
        r["dims"] = json.loads(r["dimensions"]) if r["dimensions"] else {}
    return out


def one(rs, name, **dims):
    hits = [
        r
        for r in rs
        if r["metric_name"] == name
        and all(r["dims"].get(k) == v for k, v in dims.items())
        and set(r["dims"]) - set(dims) <= {"platform", "run_mode", "dry_run"}
    ]
    assert len(hits) == 1, (name, dims, hits)
    return hits[0]["metric_value"]


def test_record_metric_binds_values_and_defaults(adapter):
    evil = "x'); DROP TABLE idr_out.run_history; --"
    record_metric(adapter, evil, evil, 1.5, dimensions={"stage": evil})
    record_metric(adapter, "r2", "idr_custom", 3, metric_type="counter")
    r = adapter.fetch_dicts("SELECT * FROM idr_out.metrics_export ORDER BY metric_value")
    assert [x["metric_name"] for x in r] == [evil, "idr_custom"]
    assert r[0]["run_id"] == evil and json.loads(r[0]["dimensions"]) == {"stage": evil}
    assert r[1]["metric_type"] == "counter" and r[1]["dimensions"] is None
    assert all(x["metric_id"] and x["recorded_at"] and x["exported_at"] is None for x in r)
    assert adapter.table_exists("idr_out", "run_history")


def test_full_taxonomy_matches_output_tables(adapter):
    populate_outputs(adapter)
    result = make_result("run_full")
    write_history(adapter, result)
    n = record_run_metrics(adapter, result)
    rs = rows(adapter, "run_full")
    assert n == len(rs)

    # every run row carries platform, run_mode and dry_run
    assert all({"platform": "duckdb", "run_mode": "FULL", "dry_run": False}.items() <= r["dims"].items() for r in rs)
    names = {r["metric_name"] for r in rs}
    assert set(RUN_METRIC_NAMES) | set(CLUSTER_METRIC_NAMES) | set(STAGE_METRIC_NAMES) <= names

    # run metrics == run_history, by independent SQL
    h = adapter.fetch_dicts("SELECT * FROM idr_out.run_history WHERE run_id = 'run_full'")[0]
    assert one(rs, "idr_run_duration_seconds") == h["duration_seconds"]
    assert one(rs, "idr_entities_processed") == h["entities_processed"]
    assert one(rs, "idr_edges_created") == h["edges_created"]
    assert one(rs, "idr_edges_updated") == h["edges_updated"]
    assert one(rs, "idr_lp_iterations") == h["lp_iterations"]
    assert one(rs, "idr_groups_skipped") == h["groups_skipped"]
    assert one(rs, "idr_values_excluded") == h["values_excluded"]
    # enum as a state set: exactly the run's status is 1
    assert {s: one(rs, "idr_run_status", status=s) for s in RUN_STATUSES} == {
        s: (1.0 if s == h["status"] else 0.0) for s in RUN_STATUSES
    }
    types = {r["metric_name"]: r["metric_type"] for r in rs}
    assert types["idr_edges_created"] == "counter" and types["idr_run_duration_seconds"] == "gauge"

    # stage metrics == stage_metrics
    for s in adapter.fetch_dicts("SELECT * FROM idr_out.stage_metrics WHERE run_id = 'run_full'"):
        assert one(rs, "idr_stage_duration_seconds", stage=s["stage_name"]) == s["duration_seconds"]
        assert one(rs, "idr_stage_rows_processed", stage=s["stage_name"], direction="in") == s["rows_in"]
        assert one(rs, "idr_stage_rows_processed", stage=s["stage_name"], direction="out") == s["rows_out"]

    # per-rule metrics == rule_match_audit_current, aggregates next to them
    audit = adapter.fetch_dicts("SELECT * FROM idr_out.rule_match_audit_current")
    for a in audit:
        assert one(rs, "idr_edges_created", rule_id=a["rule_id"]) == a["edges"]
        assert one(rs, "idr_groups_skipped", rule_id=a["rule_id"]) == a["groups_skipped"]
        assert one(rs, "idr_rule_entities_matched", rule_id=a["rule_id"]) == a["entities_matched"]
        assert one(rs, "idr_rule_groups_matched", rule_id=a["rule_id"]) == a["groups_matched"]
    assert one(rs, "idr_rule_entities_matched") == sum(a["entities_matched"] for a in audit)
    assert one(rs, "idr_rule_groups_matched") == sum(a["groups_matched"] for a in audit)

    # cluster metrics: recomputed from membership (not the clusters table the recorder reads)
    m = adapter.fetch_dicts(
        "WITH sizes AS (SELECT resolved_id, count(*) AS n FROM idr_out.identity_resolved_membership_current "
        "GROUP BY 1) SELECT count(*) AS clusters, sum(n) AS entities, max(n) AS largest, "
        "sum(CASE WHEN n > 1000 THEN 1 ELSE 0 END) AS over_1000, "
        "sum(CASE WHEN n = 1 THEN n ELSE 0 END) AS singles, "
        "sum(n) / count(*) AS mean, "
        "sum(CASE WHEN n > (SELECT CAST(config_value AS INT) FROM idr_meta.config "
        "  WHERE config_key = 'large_cluster_threshold') THEN 1 ELSE 0 END) AS over_threshold FROM sizes"
    )[0]
    assert one(rs, "idr_total_clusters") == m["clusters"] == 7
    assert one(rs, "idr_total_entities_resolved") == m["entities"] == 7508
    assert one(rs, "idr_largest_cluster_size") == m["largest"] == 6000
    assert one(rs, "idr_clusters_over_1000") == m["over_1000"] == 2
    assert one(rs, "idr_singleton_count") == m["singles"] == 3
    assert one(rs, "idr_avg_cluster_size") == pytest.approx(m["mean"])
    assert one(rs, "idr_clusters_over_threshold") == m["over_threshold"] == 1
    assert one(rs, "idr_large_cluster_threshold") == THRESHOLD

    # one transaction, one timestamp: a scrape never sees half a run
    assert len({r["recorded_at"] for r in rs}) == 1


def test_dry_run_records_run_metrics_without_cluster_metrics(adapter):
    populate_outputs(adapter)
    record_run_metrics(adapter, make_result("dry_1", mode="INCR", dry_run=True, status="DRY_RUN_COMPLETE"))
    rs = rows(adapter, "dry_1")
    assert all(r["dims"]["dry_run"] is True and r["dims"]["run_mode"] == "INCR" for r in rs)
    assert one(rs, "idr_run_status", status="DRY_RUN_COMPLETE") == 1.0
    assert one(rs, "idr_stage_duration_seconds", stage="edges") == 3.5
    assert not {r["metric_name"] for r in rs} & set(CLUSTER_METRIC_NAMES)


def test_failed_run_is_recorded_with_status_failed(adapter):
    populate_outputs(adapter)
    record_run_metrics(adapter, make_result("bad_1", mode="INCR", status="FAILED"))
    rs = rows(adapter, "bad_1")
    assert one(rs, "idr_run_status", status="FAILED") == 1.0
    assert sum(one(rs, "idr_run_status", status=s) for s in RUN_STATUSES) == 1.0
    # production is untouched by a failed run, so the cluster snapshot is still true
    assert one(rs, "idr_total_clusters") == 7


def test_missing_threshold_config_falls_back_to_default(adapter):
    adapter.execute("DELETE FROM idr_meta.config WHERE config_key = 'large_cluster_threshold'")
    adapter.execute(
        "INSERT INTO idr_state.clusters (rid, cluster_size, updated_ts) VALUES (1, 5001, now()), (2, 4999, now())"
    )
    record_run_metrics(adapter, make_result("r"))
    rs = rows(adapter, "r")
    assert one(rs, "idr_large_cluster_threshold") == 5000
    assert one(rs, "idr_clusters_over_threshold") == 1
