"""Records the design's metric taxonomy into ``idr_out.metrics_export``.

Every value is a bound parameter (the design's f-string ``record_metric`` was an
injection hole). All rows of one run are written in one transaction, so a scrape
never sees half a run (e.g. two ``idr_run_status`` states at 1).

Dry runs record run, status, stage and per-rule metrics with ``dry_run=true``, but no
cluster metrics: those describe the production ``*_current`` tables, which a dry run by
definition does not change (its cluster impact lives in ``idr_out.dry_run_summary``).
Failed real runs do record cluster metrics: production is exactly as it was, so the
snapshot is still true and keeps the gauges fresh.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.core.run_record import RunResult
from app.core.vocabulary import LARGE_CLUSTER_THRESHOLD, REMOVAL_REASONS
from app.metrics.taxonomy import RUN_STATUSES, MetricType
from app.platforms.base import Adapter

DEFAULT_LARGE_CLUSTER_THRESHOLD = LARGE_CLUSTER_THRESHOLD
_INSERT_CHUNK = 100  # rows per multi-row INSERT: few round trips, modest statement size


@dataclass(frozen=True)
class MetricRecord:
    name: str
    value: float
    metric_type: MetricType = "gauge"
    dimensions: Mapping[str, Any] | None = None


def utcnow() -> datetime:
    """recorded_at / exported_at are naive UTC (epoch() on them is then correct)."""
    return datetime.now(UTC).replace(tzinfo=None)


def dimensions_json(dimensions: Mapping[str, Any] | None) -> str | None:
    # sort_keys: identical label sets must serialize identically, the collector groups on the text.
    return json.dumps(dict(dimensions), sort_keys=True, separators=(",", ":")) if dimensions else None


def insert_metric_rows(
    adapter: Adapter, run_id: str | None, records: Sequence[MetricRecord], recorded_at: datetime | None = None
) -> int:
    """Batch insert with named bound parameters only (multi-row VALUES, chunked)."""
    if not records:
        return 0
    ts = recorded_at or utcnow()
    with adapter.transaction():
        for start in range(0, len(records), _INSERT_CHUNK):
            chunk = records[start : start + _INSERT_CHUNK]
            params: dict[str, Any] = {"run_id": run_id, "ts": ts}
            tuples = []
            for i, rec in enumerate(chunk):
                # The id comes from here, not the column DEFAULT: Spark tables have no uuid() default.
                params[f"id{i}"] = str(uuid.uuid4())
                params[f"n{i}"] = rec.name
                params[f"v{i}"] = float(rec.value)
                params[f"t{i}"] = rec.metric_type
                params[f"d{i}"] = dimensions_json(rec.dimensions)
                tuples.append(f"($id{i}, $run_id, $n{i}, $v{i}, $t{i}, $d{i}, $ts)")
            sql = (
                "INSERT INTO idr_out.metrics_export "
                "(metric_id, run_id, metric_name, metric_value, metric_type, dimensions, recorded_at) VALUES "
                + ", ".join(tuples)
            )
            for stmt in adapter.translate(sql):
                adapter.execute(stmt, params)
    return len(records)


def record_metric(
    adapter: Adapter,
    run_id: str | None,
    name: str,
    value: float,
    *,
    metric_type: MetricType = "gauge",
    dimensions: Mapping[str, Any] | None = None,
) -> None:
    """Insert one metric row (the design's ``record_metric``, with bound parameters)."""
    insert_metric_rows(adapter, run_id, [MetricRecord(name, value, metric_type, dimensions)])


def large_cluster_threshold(adapter: Adapter) -> int:
    raw = adapter.scalar(
        "SELECT config_value FROM idr_meta.config WHERE config_key = $k", {"k": "large_cluster_threshold"}
    )
    try:
        return int(str(raw).strip())
    except (TypeError, ValueError):
        return DEFAULT_LARGE_CLUSTER_THRESHOLD


def cluster_snapshot(adapter: Adapter) -> dict[str, float]:
    """Cluster metrics of the production tables, computed in the warehouse."""
    threshold = large_cluster_threshold(adapter)
    row = adapter.fetchone(
        "SELECT count(*), coalesce(max(cluster_size), 0), "
        "count(*) FILTER (WHERE cluster_size > 1000), "
        "count(*) FILTER (WHERE cluster_size = 1), "
        "coalesce(avg(cluster_size), 0), "
        "count(*) FILTER (WHERE cluster_size > $threshold) "
        "FROM idr_out.identity_clusters_current",
        {"threshold": threshold},
    )
    assert row is not None
    entities = adapter.scalar("SELECT count(*) FROM idr_out.identity_resolved_membership_current")
    return {
        "idr_total_clusters": float(row[0]),
        "idr_total_entities_resolved": float(entities or 0),
        "idr_largest_cluster_size": float(row[1]),
        "idr_clusters_over_1000": float(row[2]),
        "idr_singleton_count": float(row[3]),
        "idr_avg_cluster_size": float(row[4]),
        "idr_clusters_over_threshold": float(row[5]),
        "idr_large_cluster_threshold": float(threshold),
    }


CONFIDENCE_BOUNDS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def confidence_snapshot(adapter: Adapter) -> list[tuple[str, dict[str, str], float]]:
    """(metric, extra dimensions, value) of the clusters of several records (a record alone
    always scores 1: it would drown the figures)."""
    counts = ", ".join(f"count(*) FILTER (WHERE confidence_score <= {b})" for b in CONFIDENCE_BOUNDS)
    row = adapter.fetchone(
        f"SELECT count(*), avg(confidence_score), min(confidence_score), {counts} "
        "FROM idr_out.identity_clusters_current WHERE cluster_size > 1"
    )
    if row is None or not row[0]:
        return []
    out = [
        ("idr_cluster_confidence", {"stat": "mean"}, float(row[1])),
        ("idr_cluster_confidence", {"stat": "min"}, float(row[2])),
    ]
    out += [
        ("idr_clusters_by_confidence", {"upper": str(b)}, float(n))
        for b, n in zip(CONFIDENCE_BOUNDS, row[3:], strict=True)
    ]
    return out


def run_metric_records(
    result: RunResult,
    clusters: Mapping[str, float] | None,
    confidence: Iterable[tuple[str, dict[str, str], float]] = (),
) -> list[MetricRecord]:
    """The whole taxonomy for one run, as rows (pure: no I/O, easy to test)."""
    base: dict[str, Any] = {
        "platform": result.platform,
        "run_mode": result.mode,
        "dry_run": bool(result.dry_run),
    }
    out: list[MetricRecord] = [
        MetricRecord("idr_run_duration_seconds", result.duration_seconds, "gauge", base),
        MetricRecord("idr_run_statements", result.statements, "gauge", base),
        MetricRecord("idr_entities_processed", result.entities_processed, "counter", base),
        MetricRecord("idr_edges_created", result.edges_created, "counter", base),
        MetricRecord("idr_edges_updated", result.edges_updated, "counter", base),
        MetricRecord("idr_lp_iterations", result.lp_iterations, "gauge", base),
        MetricRecord("idr_groups_skipped", result.groups_skipped, "counter", base),
        MetricRecord("idr_values_excluded", result.values_excluded, "counter", base),
    ]
    out += [
        MetricRecord(
            "idr_entities_removed", result.entities_removed.get(reason, 0), "counter", {**base, "reason": reason}
        )
        for reason in REMOVAL_REASONS
    ]
    states = RUN_STATUSES if result.status in RUN_STATUSES else (*RUN_STATUSES, result.status)
    out += [
        MetricRecord("idr_run_status", 1.0 if s == result.status else 0.0, "gauge", {**base, "status": s})
        for s in states
    ]
    for stage in result.stages:
        dims = {**base, "stage": stage.name}
        out.append(MetricRecord("idr_stage_duration_seconds", stage.seconds, "gauge", dims))
        out.append(MetricRecord("idr_stage_rows_processed", stage.rows_in, "counter", {**dims, "direction": "in"}))
        out.append(MetricRecord("idr_stage_rows_processed", stage.rows_out, "counter", {**dims, "direction": "out"}))
    out += _rule_records(result.rule_stats, base)
    if clusters is not None:
        out += [MetricRecord(name, value, "gauge", base) for name, value in clusters.items()]
    out += [MetricRecord(name, value, "gauge", {**base, **dims}) for name, dims, value in confidence]
    return out


def _rule_records(rule_stats: Mapping[str, Mapping[str, int]], base: Mapping[str, Any]) -> Iterable[MetricRecord]:
    # The run-level idr_edges_created / idr_groups_skipped (from the engine's totals) are the
    # aggregates of the first two; the rule-only metrics get an explicit sum row.
    per_rule: tuple[tuple[str, str, MetricType], ...] = (
        ("idr_edges_created", "edges_created", "counter"),
        ("idr_groups_skipped", "groups_skipped", "counter"),
        ("idr_rule_entities_matched", "entities_matched", "gauge"),
        ("idr_rule_groups_matched", "groups_matched", "gauge"),
    )
    for rule_id in sorted(rule_stats):
        stats = rule_stats[rule_id]
        for name, key, mtype in per_rule:
            yield MetricRecord(name, stats.get(key, 0), mtype, {**base, "rule_id": rule_id})
    if rule_stats:
        for name, key in (
            ("idr_rule_entities_matched", "entities_matched"),
            ("idr_rule_groups_matched", "groups_matched"),
        ):
            yield MetricRecord(name, sum(s.get(key, 0) for s in rule_stats.values()), "gauge", base)


def record_run_metrics(adapter: Adapter, result: RunResult) -> int:
    """Record every metric of one run (real or dry, any status); returns the row count."""
    clusters = None if result.dry_run else cluster_snapshot(adapter)
    confidence = [] if result.dry_run else confidence_snapshot(adapter)
    return insert_metric_rows(adapter, result.run_id, run_metric_records(result, clusters, confidence))
