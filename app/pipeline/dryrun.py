"""Dry runs: the whole pipeline into work tables, then a diff instead of publish.

Change types per entity (first that applies):
NEW (no current membership) · REMOVED (current, but gone from the sources; FULL only) ·
SPLIT (its current cluster's members land in several proposed clusters) · MERGED (its
proposed cluster combines members of several current clusters) · MOVED (its id changes
for any other reason) · UNCHANGED.

Also here: review helpers (summary, changes, cluster changes), retention cleanup, delete
and apply-what-you-reviewed, guarded by an input fingerprint.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.config.store import read_config
from app.core.errors import ConflictError, IdrError, NotFoundError
from app.core.run_record import RunResult
from app.core.vocabulary import CHANGE_TYPES
from app.pipeline.context import RunContext, utcnow
from app.pipeline.fingerprint import config_fingerprint, fingerprint_differences, input_fingerprint
from app.platforms.base import Adapter

DRY_RUN_TABLES = ("dry_run_results", "dry_run_summary", "dry_run_cluster_changes", "skipped_identifier_groups")


# ----------------------------------------------------------------------------- diff phase
def write_diff(ctx: RunContext) -> None:
    """Step write_diff, a dry run's last: dry_run_results, dry_run_cluster_changes, summary."""
    a = ctx.adapter
    p = {"run_id": ctx.run_id, "now": ctx.now}
    with a.transaction():  # a reviewer sees all of a dry run's rows or none
        ctx.run("dryrun.results", p)
        ctx.run("dryrun.cluster_changes", p)
        ctx.run("dryrun.skipped_insert", p)
        total, new, moved, merged_e, split_e, removed, unchanged = a.fetchone(ctx.stmt("dryrun.counts")) or (0,) * 7
        merged_clusters = int(a.scalar(ctx.stmt("dryrun.merged_clusters")) or 0)
        split_clusters = ctx.count(ctx.w("split_old"))
        largest = int(a.scalar(ctx.stmt("dryrun.largest")) or 0)
        r = ctx.result
        a.execute(
            """INSERT INTO idr_out.dry_run_summary (run_id, total_entities, new_entities, moved_entities,
               merged_clusters, split_clusters, largest_proposed_cluster, edges_would_create, groups_would_skip,
               values_would_exclude, execution_time_seconds, created_at, unchanged_entities, merged_entities,
               split_entities, removed_entities, run_mode, affected_entities)
               VALUES ($run_id, $total, $new, $moved, $mc, $sc, $largest, $edges, $skip, $excl, $secs, $now,
                       $unchanged, $me, $se, $removed, $mode, $affected)""",
            {
                **p,
                "total": total,
                "new": new,
                "moved": moved,
                "mc": merged_clusters,
                "sc": split_clusters,
                "largest": largest,
                "edges": r.edges_created,
                "skip": r.groups_skipped,
                "excl": r.values_excluded,
                "secs": int(round((utcnow() - r.started_at).total_seconds())),
                "unchanged": unchanged,
                "me": merged_e,
                "se": split_e,
                "removed": removed,
                "mode": r.mode,
                "affected": int(total) - int(unchanged),
            },
        )
    ctx.state.count("dry_run_diff", rows_in=ctx.count(ctx.w("membership")), rows_out=int(total or 0))


# ----------------------------------------------------------------------------- review
@dataclass
class DryRunInfo:
    run_id: str
    mode: str
    status: str
    started_at: datetime
    summary: dict[str, Any] | None
    fingerprint: dict[str, Any] | None


def get_dry_run(adapter: Adapter, run_id: str) -> DryRunInfo:
    row = adapter.fetchone(
        "SELECT run_id, run_mode, status, started_at, input_fingerprint FROM idr_out.run_history "
        "WHERE run_id = $r AND dry_run",
        {"r": run_id},
    )
    if row is None:
        raise NotFoundError(f"dry run {run_id!r} not found")
    summaries = adapter.fetch_dicts("SELECT * FROM idr_out.dry_run_summary WHERE run_id = $r", {"r": run_id})
    return DryRunInfo(
        run_id=row[0],
        mode=row[1],
        status=row[2],
        started_at=row[3],
        summary=summaries[0] if summaries else None,
        fingerprint=json.loads(row[4]) if row[4] else None,
    )


def affected_entities(summary: dict[str, Any]) -> int | None:
    """Entities whose resolved id changes (every change type but UNCHANGED); summaries
    written before the column existed give it as total - unchanged."""
    if summary.get("affected_entities") is not None:
        return int(summary["affected_entities"])
    total = summary.get("total_entities")
    return None if total is None else int(total) - int(summary.get("unchanged_entities") or 0)


def get_summary(adapter: Adapter, run_id: str) -> dict[str, Any]:
    info = get_dry_run(adapter, run_id)
    if info.summary is None:
        raise NotFoundError(f"dry run {run_id!r} has no results (status {info.status}; deleted or failed)")
    return info.summary


def _type_filter(change_types: str | Sequence[str] | None) -> tuple[str, dict[str, Any]]:
    """'AND change_type IN ($t0, ...)' over validated types (placeholders, never the values)."""
    if change_types is None:
        return "", {}
    types = [change_types] if isinstance(change_types, str) else list(change_types)
    bad = [t for t in types if t not in CHANGE_TYPES]
    if bad or not types:
        raise IdrError(f"change_type must be one of {', '.join(CHANGE_TYPES)}", field="change_type")
    params = {f"t{i}": t for i, t in enumerate(types)}
    return "AND change_type IN (" + ", ".join(f"${k}" for k in params) + ") ", params


def list_changes(
    adapter: Adapter,
    run_id: str,
    change_type: str | Sequence[str] | None = None,
    cursor: str | None = None,
    limit: int | None = 100,
) -> tuple[list[dict[str, Any]], str | None]:
    """Keyset pagination by entity_key; returns (rows, next_cursor). ``limit=None``: all rows."""
    get_summary(adapter, run_id)
    where, params = _type_filter(change_type)
    rows = adapter.fetch_dicts(
        "SELECT entity_key, current_resolved_id, proposed_resolved_id, change_type, current_cluster_size, "
        "proposed_cluster_size FROM idr_out.dry_run_results WHERE run_id = $r "
        + where
        + "AND ($c IS NULL OR entity_key > $c) ORDER BY entity_key"
        + ("" if limit is None else " LIMIT $n"),
        {"r": run_id, "c": cursor, "n": (limit or 0) + 1, **params},
    )
    if limit is None:
        return rows, None
    nxt = rows[limit - 1]["entity_key"] if len(rows) > limit else None
    return rows[:limit], nxt


def _cluster_cursor(row: dict[str, Any]) -> str:
    key = [row["proposed_resolved_id"] is None, row["proposed_resolved_id"] or "", row["current_resolved_id"] or ""]
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def _decode_cluster_cursor(cursor: str) -> tuple[int, str, str]:
    try:
        gone, p, c = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return int(bool(gone)), str(p), str(c)
    except Exception:
        raise IdrError("cursor is not valid; pass the next_cursor of a previous page", field="cursor") from None


def page_cluster_changes(
    adapter: Adapter,
    run_id: str,
    change_types: str | Sequence[str] | None = None,
    cursor: str | None = None,
    limit: int | None = 100,
) -> tuple[list[dict[str, Any]], str | None]:
    """Cluster-level changes ordered by proposed id (removals last), then current id (new
    records first); keyset pagination with an opaque cursor. ``limit=None``: all rows."""
    get_summary(adapter, run_id)
    where, params = _type_filter(change_types)
    k1 = "CASE WHEN proposed_resolved_id IS NULL THEN 1 ELSE 0 END"
    k2, k3 = "COALESCE(proposed_resolved_id, '')", "COALESCE(current_resolved_id, '')"
    after = ""
    if cursor is not None:
        params["k1"], params["k2"], params["k3"] = _decode_cluster_cursor(cursor)
        after = f"AND ({k1} > $k1 OR ({k1} = $k1 AND {k2} > $k2) OR ({k1} = $k1 AND {k2} = $k2 AND {k3} > $k3)) "
    rows = adapter.fetch_dicts(
        "SELECT current_resolved_id, proposed_resolved_id, members, members_moved, current_cluster_size, "
        "proposed_cluster_size, change_type FROM idr_out.dry_run_cluster_changes WHERE run_id = $r "
        + where
        + after
        + f"ORDER BY {k1}, {k2}, {k3}"
        + ("" if limit is None else " LIMIT $n"),
        {"r": run_id, "n": (limit or 0) + 1, **params},
    )
    for row in rows:
        if row["members"] is None:  # written before members existed: members_moved held the flow
            row["members"] = row["members_moved"]
            if row["current_resolved_id"] == row["proposed_resolved_id"]:
                row["members_moved"] = 0
    if limit is None or len(rows) <= limit:
        return rows, None
    return rows[:limit], _cluster_cursor(rows[limit - 1])


def list_cluster_changes(adapter: Adapter, run_id: str) -> list[dict[str, Any]]:
    return page_cluster_changes(adapter, run_id, limit=None)[0]


# ----------------------------------------------------------------------------- retention
def _delete_rows(adapter: Adapter, run_ids: list[str]) -> None:
    with adapter.transaction():
        for rid in run_ids:
            for table in DRY_RUN_TABLES:
                adapter.execute(f"DELETE FROM {adapter.table('idr_out', table)} WHERE run_id = $r", {"r": rid})


def delete_dry_run(adapter: Adapter, run_id: str) -> bool:
    """Remove one dry run's results (its run_history row stays as the audit trail).
    Refuses real runs; idempotent: False when there was nothing left to delete."""
    info = get_dry_run(adapter, run_id)  # raises NotFound for real runs too
    had = info.summary is not None or bool(
        adapter.scalar("SELECT count(*) FROM idr_out.dry_run_results WHERE run_id = $r", {"r": run_id})
    )
    _delete_rows(adapter, [info.run_id])
    return had


def cleanup(adapter: Adapter, now: datetime | None = None) -> list[str]:
    """Delete dry-run rows older than dry_run_retention_days, keeping the newest
    dry_run_keep_last dry runs regardless of age. Returns the run ids cleaned."""
    cfg = dict(adapter.fetchall("SELECT config_key, config_value FROM idr_meta.config"))
    days = int(cfg.get("dry_run_retention_days") or 7)
    keep_last = int(cfg.get("dry_run_keep_last") or 0)
    cutoff = (now or utcnow()) - timedelta(days=days)
    runs = adapter.fetchall(
        "SELECT h.run_id, h.started_at FROM idr_out.run_history AS h WHERE h.dry_run "
        "AND EXISTS (SELECT 1 FROM idr_out.dry_run_summary AS s WHERE s.run_id = h.run_id) "
        "ORDER BY h.started_at DESC, h.run_id DESC"
    )
    kept = {r[0] for r in runs[:keep_last]}
    expired = [rid for rid, started in runs if rid not in kept and started < cutoff]
    # Results whose summary is missing (a failed dry run's partial rows cannot exist,
    # the diff is one transaction) are covered by the summary check above.
    _delete_rows(adapter, expired)
    return expired


# ----------------------------------------------------------------------------- apply
def check_applicable(adapter: Adapter, run_id: str) -> DryRunInfo:
    """Refuse up front, writing nothing (409 with the reason), when a dry run cannot be
    applied or its inputs changed; the apply run re-checks right before publishing."""
    info = get_dry_run(adapter, run_id)
    if info.status != "DRY_RUN_COMPLETE" or info.summary is None:
        raise ConflictError(
            f"dry run {run_id} cannot be applied: status {info.status}, results present: {info.summary is not None}"
        )
    if info.fingerprint is None:
        raise ConflictError(f"dry run {run_id} has no input fingerprint; run a new dry run")
    diffs = fingerprint_differences(
        info.fingerprint, input_fingerprint(adapter, config_fingerprint(read_config(adapter)))
    )
    if diffs:
        raise ConflictError(f"dry run {run_id} is stale: " + "; ".join(diffs))
    return info


def verify_proposal(ctx: RunContext, dry_run_id: str, expected_fp: dict[str, Any] | None) -> None:
    """Inside an apply run, before publish: inputs unchanged and the proposal identical."""
    diffs = fingerprint_differences(expected_fp or {}, ctx.state.input_fingerprint or {})
    if diffs:
        raise ConflictError(f"dry run {dry_run_id} is stale: " + "; ".join(diffs))
    a = ctx.adapter
    rid = "CASE WHEN {c} IS NOT NULL THEN 'R' || lpad(CAST({c} AS VARCHAR), 11, '0') END"
    mismatches = ctx.scalar(
        f"""SELECT count(*) FROM (
            SELECT k.entity_key, {rid.format(c="m.rid")} AS resolved_id
            FROM {ctx.w("membership")} AS m JOIN {ctx.w("diff_keys")} AS k ON k.eid = m.eid
            UNION ALL
            SELECT k.entity_key, CAST(NULL AS VARCHAR)
            FROM {ctx.w("removed")} AS r JOIN {ctx.w("diff_keys")} AS k ON k.eid = r.eid
            EXCEPT
            SELECT entity_key, proposed_resolved_id FROM idr_out.dry_run_results WHERE run_id = $r) AS t""",
        {"r": dry_run_id},
    )
    stored = int(a.scalar("SELECT count(*) FROM idr_out.dry_run_results WHERE run_id = $r", {"r": dry_run_id}) or 0)
    if mismatches or stored != ctx.count(ctx.w("membership")) + ctx.count(ctx.w("removed")):
        raise ConflictError(f"dry run {dry_run_id} no longer matches what a run would publish; run a new dry run")


# ----------------------------------------------------------------------------- console
def render_summary(adapter: Adapter, result: RunResult) -> str:
    s = get_summary(adapter, result.run_id)
    affected = affected_entities(s) or 0
    line = "=" * 60
    n = "{:>10,}".format
    return "\n".join(
        [
            line,
            "DRY RUN SUMMARY",
            line,
            f"Run ID:           {result.run_id}",
            f"Mode:             {result.mode} (Dry Run)",
            f"Status:           {result.status}",
            "",
            "IMPACT PREVIEW:",
            f"  Entities Affected:  {n(affected)}",
            f"  └─ New Entities:    {n(s['new_entities'])}",
            f"  └─ Moved Entities:  {n(s['moved_entities'])}",
            f"  └─ Merged:          {n(s['merged_entities'])}",
            f"  └─ Split:           {n(s['split_entities'])}",
            f"  └─ Removed:         {n(s['removed_entities'])}",
            f"  └─ Unchanged:       {n(s['unchanged_entities'])}",
            "",
            "CLUSTER CHANGES:",
            f"  Merges:             {n(s['merged_clusters'])}  (clusters combining)",
            f"  Splits:             {n(s['split_clusters'])}  (clusters breaking apart)",
            f"  Largest Proposed:   {n(s['largest_proposed_cluster'])}  entities",
            "",
            "EDGES:",
            f"  Would Create:       {n(s['edges_would_create'])}",
            f"  Would Skip:         {n(s['groups_would_skip'])}  (max_group_size)",
            f"  Would Exclude:      {n(s['values_would_exclude'])}  (exclusion list)",
            "",
            "⚠️  THIS WAS A DRY RUN - NO CHANGES COMMITTED",
            f"    Review: idr dry-runs changes {result.run_id}   (--type MERGED,SPLIT ...)",
            f"            idr dry-runs clusters {result.run_id}",
            "    SQL:    SELECT * FROM idr_out.dry_run_results",
            f"            WHERE run_id = '{result.run_id}'",
            "            AND change_type <> 'UNCHANGED'",
            f"    Apply:  idr dry-runs apply {result.run_id}",
            line,
        ]
    )
