"""What a run learns as it goes and hands to later steps: one typed object, not a bag."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class StageCounts:
    rows_in: int = 0
    rows_out: int = 0


@dataclass
class Suppression:
    """The erasure suppression list as a run sees it (app.pipeline.erasure)."""

    salt: str | None = None
    keys: bool = False  # it holds entity keys
    types: set[str] = field(default_factory=set)  # identifier types it holds values of
    pending: list[str] = field(default_factory=list)  # erasures that have not taken effect
    in_force: list[str] = field(default_factory=list)  # applied, not lifted
    tracked: bool = False  # the schema keeps holds (idr_meta.erasure_holds): erasures can lift
    holding: bool = False  # some erasure holds a row

    @property
    def active(self) -> bool:
        return self.salt is not None and (self.keys or bool(self.types))


@dataclass
class RunState:
    # Read before the first step -------------------------------------------------------
    # Each source's watermark as the last real run left it.
    watermarks_before: dict[str, datetime] = field(default_factory=dict)
    # The last published run when this one started (publish re-checks it: optimistic lock).
    last_published: str | None = None
    # What a dry run / apply was computed from (app.pipeline.fingerprint.input_fingerprint).
    input_fingerprint: dict[str, Any] | None = None
    # An apply run: the dry run it publishes, and what that dry run was computed from.
    apply_of: str | None = None
    expected_fingerprint: dict[str, Any] | None = None
    # Each source's last key reconciliation (idr_meta.run_state.last_reconciled_ts).
    reconciled_before: dict[str, datetime] = field(default_factory=dict)
    suppression: Suppression = field(default_factory=Suppression)
    next_eid: int = 0
    next_vid: int = 0
    next_rid: int = 1
    # Extraction -----------------------------------------------------------------------
    # (table_id, smallest key, largest key) of each source read (the key-rank sort).
    key_ranges: list[tuple[str, str, str]] = field(default_factory=list)
    # Two mappings of one source yield the same type: an (entity, type, value) may repeat.
    identifiers_may_repeat: bool = False
    # Per-source scratch tables: the rows read (src<i>) and with their eids (src<i>e);
    # dropped with "entities", which is a view over the latter.
    source_tables: list[str] = field(default_factory=list)
    entity_tables: list[str] = field(default_factory=list)
    # First run: each source's first eid (sources in key order).
    fresh_offsets: list[int] = field(default_factory=list)
    # Identifier type -> its number in the state (extract.type_numbers).
    type_numbers: dict[str, int] | None = None
    new_entities: int = 0
    # Sources whose keys this run compared with the stored ones (reconcile_deletes; FULL: all).
    reconciled: list[str] = field(default_factory=list)
    # Per erasure: (entities this run removes, source rows it kept out).
    erasure_counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Erasures this run lifts: every row they held was deleted by its source.
    erasures_lifted: list[str] = field(default_factory=list)
    # Groups, edges -------------------------------------------------------------------
    member_rows: int = 0
    new_values: int = 0
    rule_edges_old: dict[str, int] = field(default_factory=dict)
    rule_stats_old: dict[str, dict[str, int]] = field(default_factory=dict)
    # Components, ids ------------------------------------------------------------------
    broken_clusters: int = 0
    linked: tuple[int, int] | None = None  # (nodes with an edge, their components), union-find
    new_ids: int = 0
    # Publish --------------------------------------------------------------------------
    audit_rows: list[dict[str, Any]] = field(default_factory=list)
    membership_changed: int = 0
    values_next_vid: int = 0  # past the largest vid in values_new
    # attribute -> golden column number, as the run's sync ensured it (numbers never change)
    golden_columns: dict[str, int] = field(default_factory=dict)
    stage_counts: dict[str, StageCounts] = field(default_factory=dict)
    current_stage: str | None = None

    def count(self, stage: str, rows_in: int | None = None, rows_out: int | None = None) -> None:
        c = self.stage_counts.setdefault(stage, StageCounts())
        if rows_in is not None:
            c.rows_in = int(rows_in)
        if rows_out is not None:
            c.rows_out = int(rows_out)
