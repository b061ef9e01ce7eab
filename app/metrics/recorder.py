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


CONFIDENCE_BOUNDS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def snapshot(adapter: Adapter) -> tuple[dict[str, float], list[tuple[str, dict[str, str], float]]]:
    """Cluster and confidence metrics of the production tables, computed in the warehouse
    in one read (a round trip on a warehouse): (cluster metrics, confidence metrics)."""
    multi = "cluster_size > 1"
    counts = ", ".join(
        f"count(CASE WHEN {multi} AND confidence_score <= {b} THEN 1 END) AS le{i}"
        for i, b in enumerate(CONFIDENCE_BOUNDS)
    )
    # The threshold as the configuration holds it (text); a value that is no integer
    # means the default, as large_cluster_threshold reads it.
    threshold = (
        "coalesce(TRY_CAST(trim((SELECT config_value FROM idr_meta.config WHERE config_key = $k)) AS BIGINT), "
        f"{DEFAULT_LARGE_CLUSTER_THRESHOLD})"
    )
    cols, rows = adapter.fetch_with_columns(
        "SELECT count(*) AS clusters, coalesce(max(c.cluster_size), 0) AS largest, "
        "count(CASE WHEN c.cluster_size > 1000 THEN 1 END) AS over_1000, "
        "count(CASE WHEN c.cluster_size = 1 THEN 1 END) AS singletons, "
        "coalesce(avg(c.cluster_size), 0) AS avg_size, "
        "count(CASE WHEN c.cluster_size > t.threshold THEN 1 END) AS over_threshold, "
        f"{threshold} AS threshold, "
        "(SELECT count(*) FROM idr_out.identity_resolved_membership_current) AS entities, "
        f"count(CASE WHEN {multi} THEN 1 END) AS multi, "
        f"avg(CASE WHEN {multi} THEN confidence_score END) AS conf_mean, "
        f"min(CASE WHEN {multi} THEN confidence_score END) AS conf_min, {counts} "
        f"FROM idr_out.identity_clusters_current AS c CROSS JOIN (SELECT {threshold} AS threshold) AS t",
        {"k": "large_cluster_threshold"},
    )
    row = dict(zip(cols, rows[0], strict=True))
    clusters = {
        "idr_total_clusters": float(row["clusters"]),
        "idr_total_entities_resolved": float(row["entities"] or 0),
        "idr_largest_cluster_size": float(row["largest"]),
        "idr_clusters_over_1000": float(row["over_1000"]),
        "idr_singleton_count": float(row["singletons"]),
        "idr_avg_cluster_size": float(row["avg_size"]),
        "idr_clusters_over_threshold": float(row["over_threshold"]),
        "idr_large_cluster_threshold": float(row["threshold"]),
    }
    # Clusters of several records only (a record alone always scores 1: it would drown
    # the figures).
    if not row["multi"]:
        return clusters, []
    confidence = [
        ("idr_cluster_confidence", {"stat": "mean"}, float(row["conf_mean"])),
        ("idr_cluster_confidence", {"stat": "min"}, float(row["conf_min"])),
    ]
    confidence += [
        ("idr_clusters_by_confidence", {"upper": str(b)}, float(row[f"le{i}"]))
        for i, b in enumerate(CONFIDENCE_BOUNDS)
    ]
    return clusters, confidence


def cluster_snapshot(adapter: Adapter) -> dict[str, float]:
    """Cluster metrics of the production tables, computed in the warehouse."""
    return snapshot(adapter)[0]


def confidence_snapshot(adapter: Adapter) -> list[tuple[str, dict[str, str], float]]:
    """(metric, extra dimensions, value) of the clusters of several records."""
    return snapshot(adapter)[1]


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
    clusters, confidence = (None, []) if result.dry_run else snapshot(adapter)
    return insert_metric_rows(adapter, result.run_id, run_metric_records(result, clusters, confidence))
