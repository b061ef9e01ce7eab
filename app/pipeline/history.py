"""idr_out.run_history and stage_metrics: a run's rows, and the one definition of "the
last published run" (a real run that published; newest by end time, then run id)."""

from __future__ import annotations

import json
import re
from datetime import datetime

from app.core.run_record import RunResult, StageResult
from app.core.vocabulary import PUBLISHED_STATUSES, REMOVAL_COLUMNS
from app.platforms.base import Adapter
from app.platforms.changes import Statement

_PUBLISHED = "(" + ", ".join(f"'{s}'" for s in PUBLISHED_STATUSES) + ")"
LAST_PUBLISHED_SQL = (
    f"SELECT run_id FROM idr_out.run_history WHERE NOT dry_run AND status IN {_PUBLISHED} "
    "ORDER BY ended_at DESC, run_id DESC LIMIT 1"
)


def last_published(adapter: Adapter) -> str | None:
    return adapter.scalar(LAST_PUBLISHED_SQL)


def last_published_fingerprint(adapter: Adapter) -> str | None:
    """The configuration fingerprint the last published run ran with."""
    return adapter.scalar(
        "SELECT config_fingerprint FROM idr_out.run_history WHERE run_id = $r", {"r": last_published(adapter)}
    )


def status(adapter: Adapter, run_id: str) -> str | None:
    return adapter.scalar("SELECT status FROM idr_out.run_history WHERE run_id = $r", {"r": run_id})


def last_published_and_status(adapter: Adapter, run_id: str) -> tuple[str | None, str | None]:
    """``last_published`` and ``status(run_id)`` in one read (a round trip each on a warehouse)."""
    row = adapter.fetchone(
        f"SELECT ({LAST_PUBLISHED_SQL}) AS last_published, "
        "(SELECT status FROM idr_out.run_history WHERE run_id = $r) AS status",
        {"r": run_id},
    )
    return (row[0], row[1]) if row else (None, None)


def insert(adapter: Adapter, r: RunResult, fingerprint: str, tag: str) -> None:
    adapter.execute(
        "INSERT INTO idr_out.run_history (run_id, run_mode, status, started_at, dry_run, platform, "
        "config_fingerprint, created_at, work_tag) "
        "VALUES ($id, $mode, 'RUNNING', $ts, $dry, $platform, $fp, $ts, $tag)",
        {
            "id": r.run_id,
            "mode": r.mode,
            "ts": r.started_at,
            "dry": r.dry_run,
            "platform": r.platform,
            "fp": fingerprint,
            "tag": tag,
        },
    )


def finish(adapter: Adapter, r: RunResult, columns: frozenset[str] | None = None) -> None:
    """The run's outcome. ``columns``: run_history's columns, on a database whose table
    predates the newest (``statements``, the removals) until ``idr init`` adds them (None:
    all are there). A row that is no longer RUNNING (the reaper gave the run up) stays as
    it is."""
    w = finish_statement(r, columns)
    adapter.execute(w.sql, w.params)


def finish_statement(r: RunResult, columns: frozenset[str] | None = None) -> Statement:
    """The statement ``finish`` sends (a publish's change set carries it)."""
    has = (lambda c: True) if columns is None else columns.__contains__
    extra = ", statements = $stmts" if has("statements") else ""
    removed: dict[str, int] = {}
    for reason, col in REMOVAL_COLUMNS.items():
        if has(col):
            extra += f", {col} = $rm_{reason}"
            removed[f"rm_{reason}"] = int(r.entities_removed.get(reason, 0))
    return Statement(
        f"""UPDATE idr_out.run_history SET status = $status, ended_at = $ended, duration_seconds = $dur,
           entities_processed = $entities, edges_created = $ec, edges_updated = $eu,
           clusters_impacted = $ci, lp_iterations = $lp, source_tables_processed = $st,
           groups_skipped = $gs, values_excluded = $ve, large_clusters = $lc, warnings = $warn,
           watermarks_json = $wm, error_message = $err, error_stage = $estage{extra}
           WHERE run_id = $id AND status = 'RUNNING'""",
        {
            "status": r.status,
            "ended": r.ended_at,
            "dur": r.duration_seconds,
            "entities": r.entities_processed,
            "ec": r.edges_created,
            "eu": r.edges_updated,
            "ci": r.clusters_impacted,
            "lp": r.lp_iterations,
            "st": r.source_tables_processed,
            "gs": r.groups_skipped,
            "ve": r.values_excluded,
            "lc": r.large_clusters,
            "warn": json.dumps(r.warnings) if r.warnings else None,
            "wm": json.dumps(r.watermarks),
            "err": r.error_message,
            "estage": r.error_stage,
            "stmts": r.statements,
            "id": r.run_id,
            **removed,
        },
    )


def removals(adapter: Adapter, run_id: str) -> dict[str, int | None]:
    """The records a run removed, by reason, as run_history holds them (None: not
    recorded -- a run of a version before these columns that `idr init` could not fill)."""
    have = set(adapter.columns("idr_out", "run_history"))
    cols = [c for c in REMOVAL_COLUMNS.values() if c in have]
    row = (
        adapter.fetchone(f"SELECT {', '.join(cols)} FROM idr_out.run_history WHERE run_id = $r", {"r": run_id})
        if cols
        else None
    )
    got = dict(zip(cols, row or (None,) * len(cols), strict=True))
    return {reason: (None if got.get(col) is None else int(got[col])) for reason, col in REMOVAL_COLUMNS.items()}


def record_stage(adapter: Adapter, run_id: str, s: StageResult) -> None:
    adapter.execute(
        "INSERT INTO idr_out.stage_metrics (run_id, stage_name, stage_order, started_at, ended_at, "
        "duration_seconds, rows_in, rows_out, notes) VALUES ($r, $n, $o, $s, $e, $d, $i, $out, $notes)",
        {
            "r": run_id,
            "n": s.name,
            "o": s.order,
            "s": s.started_at,
            "e": s.ended_at,
            "d": s.seconds,
            "i": s.rows_in,
            "out": s.rows_out,
            "notes": s.notes,
        },
    )


def watermarks(adapter: Adapter) -> dict[str, datetime]:
    return {
        t: wm
        for t, wm in adapter.fetchall("SELECT table_id, last_watermark_value FROM idr_meta.run_state")
        if wm is not None
    }


def reconciled(adapter: Adapter) -> dict[str, datetime]:
    """Each source's last key reconciliation (reconcile_deletes, or a FULL run)."""
    return {
        t: ts
        for t, ts in adapter.fetchall("SELECT table_id, last_reconciled_ts FROM idr_meta.run_state")
        if ts is not None
    }


def run_state(adapter: Adapter) -> tuple[dict[str, datetime], dict[str, datetime]]:
    """``watermarks`` and ``reconciled`` in one read."""
    rows = adapter.fetchall("SELECT table_id, last_watermark_value, last_reconciled_ts FROM idr_meta.run_state")
    return {t: wm for t, wm, _ in rows if wm is not None}, {t: ts for t, _, ts in rows if ts is not None}


_TAG = re.compile(r"^(w[0-9a-f]{10})_")


def sweep_orphan_work_tables(adapter: Adapter) -> list[str]:
    """Drop scratch tables left by runs that died (killed worker, lost machine): any
    tag whose run is not RUNNING. Returns the tags swept."""
    found = adapter.list_relations("idr_work")
    views = [n for n, is_view in found if is_view]
    tables = [n for n, is_view in found if not is_view]
    tags = {m.group(1) for n in views + tables if (m := _TAG.match(n))}
    if not tags:
        return []
    live = {r[0] for r in adapter.fetchall("SELECT work_tag FROM idr_out.run_history WHERE status = 'RUNNING'")}
    dead = tags - live
    for kind, names in (("VIEW", views), ("TABLE", tables)):
        for n in names:
            m = _TAG.match(n)
            if m and m.group(1) in dead:
                adapter.execute(f"DROP {kind} IF EXISTS {adapter.table('idr_work', n)}")
    return sorted(dead)
