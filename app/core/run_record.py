"""What a run reports back: the typed record that feeds run_history, metrics, the CLI and
the API. Defined outside the pipeline so readers of a run (metrics, services) need not
import the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from app.core.vocabulary import SUCCESS_STATUSES, RunMode, RunStatus


@dataclass
class StageResult:
    name: str
    order: int
    started_at: datetime
    ended_at: datetime | None = None
    seconds: float = 0.0
    rows_in: int = 0
    rows_out: int = 0
    notes: str | None = None


@dataclass
class RunResult:
    run_id: str
    mode: RunMode
    dry_run: bool
    platform: str
    started_at: datetime
    status: RunStatus = "RUNNING"
    ended_at: datetime | None = None
    duration_seconds: float = 0.0
    entities_processed: int = 0
    edges_created: int = 0
    edges_updated: int = 0
    edges_removed: int = 0
    clusters_impacted: int = 0
    lp_iterations: int = 0
    source_tables_processed: int = 0
    groups_skipped: int = 0
    values_excluded: int = 0
    large_clusters: int = 0
    # Requests the run sent to the warehouse (app.platforms.base.Adapter.round_trips),
    # up to and including its last run_history write.
    statements: int = 0
    # Entities removed from the membership, by reason (app.core.vocabulary.REMOVAL_REASONS).
    entities_removed: dict[str, int] = field(default_factory=dict)
    # Erasure requests this run applied (published): erasure_id -> members it removed.
    erasures_applied: dict[str, int] = field(default_factory=dict)
    # Erasure requests this run lifted (published): their sources deleted every row they held.
    erasures_lifted: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    watermarks: dict[str, str | None] = field(default_factory=dict)
    stages: list[StageResult] = field(default_factory=list)
    error_message: str | None = None
    error_stage: str | None = None
    # per rule_id: {"edges": n (edges of the new state / of the re-derived values),
    # "edges_created": n (new in this run), "entities_matched", "groups_matched", "groups_skipped"}
    rule_stats: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in SUCCESS_STATUSES
