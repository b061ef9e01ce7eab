"""The metric taxonomy of the design (section 2), shared by the recorder, the collector and exporters.

One table of specs keeps the names, the Prometheus help text and the labels each metric
exposes in one place, so ``metrics_export`` rows and the ``/metrics`` page never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.core.vocabulary import OUTCOME_STATUSES

MetricType = Literal["gauge", "counter"]

# Dimensions every run-scoped row carries (in metrics_export.dimensions JSON).
RUN_LABELS: tuple[str, ...] = ("platform", "run_mode", "dry_run")
# Point-in-time state of production tables does not depend on which run mode last
# wrote it: exposing run_mode there would leave a stale FULL series next to a fresh
# INCR one (and fire IDRLargeClusterCreated on an old value).
STATE_LABELS: tuple[str, ...] = ("platform",)

# idr_run_status is an Enum. Prometheus has no enum type: the convention (OpenMetrics
# StateSet) is one series per state with value 1 for the current state and 0 for the
# others, which makes ``idr_run_status{status="FAILED"} > 0`` true exactly when the
# latest run of that label set failed.
RUN_STATUSES: tuple[str, ...] = OUTCOME_STATUSES


@dataclass(frozen=True)
class MetricSpec:
    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...]
    # Exposed next to the last-run gauge as a true cumulative counter summed over history.
    cumulative: bool = False
    # Name on the Prometheus page when the design's name breaks Prometheus conventions.
    prom_name: str | None = None

    @property
    def exposed_name(self) -> str:
        return self.prom_name or self.name


def _spec(
    name: str,
    type_: MetricType,
    help_: str,
    labels: tuple[str, ...],
    cumulative: bool = False,
    prom_name: str | None = None,
) -> MetricSpec:
    return MetricSpec(name, type_, help_, labels, cumulative, prom_name)


SPECS: dict[str, MetricSpec] = {
    s.name: s
    for s in (
        # ---- run metrics (per execution)
        _spec("idr_run_duration_seconds", "gauge", "Total run time of the last run.", RUN_LABELS),
        _spec(
            "idr_run_statements",
            "gauge",
            "Round trips (requests to the warehouse) the last run made.",
            RUN_LABELS,
        ),
        _spec(
            "idr_run_status",
            "gauge",
            "Status of the last run as a state set: 1 for its status, 0 for the others.",
            (*RUN_LABELS, "status"),
        ),
        _spec("idr_entities_processed", "counter", "Entities in the last run's delta.", RUN_LABELS, True),
        _spec(
            "idr_edges_created",
            "counter",
            "New edges in the last run (rule_id series per rule, no rule_id = aggregate).",
            (*RUN_LABELS, "rule_id"),
            True,
        ),
        _spec("idr_edges_updated", "counter", "Updated edges in the last run.", RUN_LABELS, True),
        _spec("idr_lp_iterations", "gauge", "Label propagation iterations of the last run.", RUN_LABELS),
        _spec(
            "idr_groups_skipped",
            "counter",
            "Identifier groups over max_group_size in the last run (rule_id series per rule).",
            (*RUN_LABELS, "rule_id"),
            True,
        ),
        _spec(
            "idr_values_excluded",
            "counter",
            "Values matching the exclusion list in the last run.",
            RUN_LABELS,
            True,
        ),
        _spec(
            "idr_entities_removed",
            "counter",
            "Entities the last run removed from the membership, by reason=soft_delete|erasure|reconciliation.",
            (*RUN_LABELS, "reason"),
            True,
        ),
        # ---- per-rule metrics (rule_id series next to an aggregate without rule_id)
        _spec(
            "idr_rule_entities_matched",
            "gauge",
            "Entities matched by a rule in the last run (no rule_id = sum over rules).",
            (*RUN_LABELS, "rule_id"),
        ),
        _spec(
            "idr_rule_groups_matched",
            "gauge",
            "Identifier groups matched by a rule in the last run (no rule_id = sum over rules).",
            (*RUN_LABELS, "rule_id"),
        ),
        # ---- stage metrics (per stage of the last run)
        _spec("idr_stage_duration_seconds", "gauge", "Time per stage of the last run.", (*RUN_LABELS, "stage")),
        _spec(
            "idr_stage_rows_processed",
            "counter",
            "Rows in/out per stage of the last run (direction=in|out).",
            (*RUN_LABELS, "stage", "direction"),
        ),
        # ---- cluster metrics (point-in-time state of the production tables)
        _spec("idr_total_clusters", "gauge", "Total unique clusters.", STATE_LABELS),
        _spec("idr_total_entities_resolved", "gauge", "Total entities in membership.", STATE_LABELS),
        _spec("idr_largest_cluster_size", "gauge", "Size of the biggest cluster.", STATE_LABELS),
        _spec("idr_clusters_over_1000", "gauge", "Clusters with more than 1000 members.", STATE_LABELS),
        # promtool rejects a "_count" suffix outside histograms/summaries, so Prometheus sees
        # idr_singleton_entities; metrics_export and push exporters keep the design's name.
        _spec(
            "idr_singleton_count",
            "gauge",
            "Entities in size-1 clusters (idr_singleton_count in metrics_export).",
            STATE_LABELS,
            prom_name="idr_singleton_entities",
        ),
        _spec("idr_avg_cluster_size", "gauge", "Mean cluster size.", STATE_LABELS),
        _spec(
            "idr_clusters_over_threshold",
            "gauge",
            "Clusters larger than idr_meta.config large_cluster_threshold.",
            STATE_LABELS,
        ),
        _spec(
            "idr_large_cluster_threshold",
            "gauge",
            "The large_cluster_threshold configured when cluster metrics were recorded.",
            STATE_LABELS,
        ),
        _spec(
            "idr_cluster_confidence",
            "gauge",
            "Confidence score (0-1) of the clusters of several records: stat=mean|min.",
            (*STATE_LABELS, "stat"),
        ),
        _spec(
            "idr_clusters_by_confidence",
            "gauge",
            "Clusters of several records whose confidence score is at most upper (cumulative, like a histogram).",
            (*STATE_LABELS, "upper"),
        ),
    )
}

RUN_METRIC_NAMES: tuple[str, ...] = (
    "idr_run_duration_seconds",
    "idr_run_statements",
    "idr_run_status",
    "idr_entities_processed",
    "idr_edges_created",
    "idr_edges_updated",
    "idr_lp_iterations",
    "idr_groups_skipped",
    "idr_values_excluded",
    "idr_entities_removed",
)
CLUSTER_METRIC_NAMES: tuple[str, ...] = (
    "idr_total_clusters",
    "idr_total_entities_resolved",
    "idr_largest_cluster_size",
    "idr_clusters_over_1000",
    "idr_singleton_count",
    "idr_avg_cluster_size",
    "idr_clusters_over_threshold",
    "idr_large_cluster_threshold",
    "idr_cluster_confidence",
    "idr_clusters_by_confidence",
)
STAGE_METRIC_NAMES: tuple[str, ...] = ("idr_stage_duration_seconds", "idr_stage_rows_processed")
RULE_METRIC_NAMES: tuple[str, ...] = (
    "idr_edges_created",
    "idr_groups_skipped",
    "idr_rule_entities_matched",
    "idr_rule_groups_matched",
)


def cumulative_name(name: str) -> str:
    """Name of the history-summed counter family (rendered with a ``_total`` suffix).

    Not ``<name>_total``: in OpenMetrics a counter family ``idr_edges_created`` would clash
    with the last-run gauge of the same name that the design's alert rules query.
    """
    return f"{name}_cumulative"
