"""Publish: the state tables, run_state, the id sequence and the run's own history row,
as one change set (app/platforms/changes.py) the adapter applies in the strongest form
its platform has: one transaction, one script, or per-table swaps (README "Platforms")."""

from __future__ import annotations

from collections.abc import Callable

from app.core.errors import ConflictError
from app.pipeline import erasure, history
from app.pipeline.context import RunContext
from app.pipeline.extract import attribute_names
from app.platforms.changes import Applied, ChangeSet, Write
from app.schema import entity_lookup
from app.schema.golden import golden_columns


def prepare(ctx: RunContext) -> None:
    """Step publish_prepare: everything publish reads but does not write, computed
    outside the transaction: the rule audit rows, the membership rows that change and the
    next value id (the two counts in one read: a round trip each on a warehouse)."""
    ctx.state.audit_rows = _rule_audit_rows(ctx)
    n = ctx.scalars(
        {
            "changed": f"SELECT count(*) FROM {ctx.w('membership')} WHERE old_rid IS DISTINCT FROM rid",
            "vid": f"SELECT coalesce(max(vid), -1) + 1 FROM {ctx.w('values_new')}",
        }
    )
    ctx.state.membership_changed, ctx.state.values_next_vid = n["changed"], n["vid"]


def _rule_audit_rows(ctx: RunContext) -> list[dict]:
    a = ctx.adapter
    st = ctx.state
    # A FULL run's audit starts from zero: the stored rows are not read.
    current = (
        {}
        if ctx.full
        else {
            r[0]: r
            for r in a.fetchall(
                "SELECT rule_id, identifier_type, edges, entities_matched, groups_matched, groups_skipped "
                "FROM idr_out.rule_match_audit_current"
            )
        }
    )
    types = {r.rule_id: r.identifier_type for r in ctx.config.rules}
    zero = {"edges": 0, "entities_matched": 0, "groups_matched": 0, "groups_skipped": 0}
    rows = []
    for rule_id, s in ctx.result.rule_stats.items():
        if ctx.full:
            base, old = zero, zero
        else:
            o = st.rule_stats_old.get(rule_id, {})
            old = {
                "edges": int(st.rule_edges_old.get(rule_id, 0)),
                "entities_matched": o.get("entities_matched", 0),
                "groups_matched": o.get("groups_matched", 0),
                "groups_skipped": o.get("groups_skipped", 0),
            }
            cur = current.get(rule_id)
            base = (
                {"edges": cur[2], "entities_matched": cur[3], "groups_matched": cur[4], "groups_skipped": cur[5]}
                if cur
                else zero
            )
        vals = {k: max(0, int(base[k] or 0) - int(old[k]) + int(s[k])) for k in zero}
        rows.append({"rule_id": rule_id, "t": types.get(rule_id), **vals, "run_id": ctx.run_id, "now": ctx.now})
    return rows


def _golden_inserts(ctx: RunContext) -> list[str]:
    """The profiles the strategy built, and on a FULL run the one-record clusters'."""
    names = attribute_names(ctx)
    if not names:
        return []
    cols = ctx.state.golden_columns or golden_columns(ctx.adapter)
    target = ", ".join(f"v{cols[n]}, e{cols[n]}" for n in names)
    source = ", ".join(f"v{j}, e{j}" for j in range(len(names)))
    return [
        f"INSERT INTO idr_state.golden (rid, updated_ts, {target}) SELECT rid, $now, {source} FROM {ctx.w(t)}"
        for t in (("golden_new", "golden_single") if ctx.full else ("golden_new",))
    ]


def _erasures(ctx: RunContext, cs: ChangeSet) -> None:
    """Erasures this run applied: the pending ones take effect now (even when nothing
    matched), and every erasure that removed a member or kept a row out is listed."""
    st = ctx.state
    ids = sorted(set(st.suppression.pending) | set(st.erasure_counts))
    rows = [
        {"e": i, "r": ctx.run_id, "n": st.erasure_counts.get(i, (0, 0))[0], "k": st.erasure_counts.get(i, (0, 0))[1]}
        for i in ids
    ]
    cs.executemany(
        "INSERT INTO idr_out.erasure_runs (erasure_id, run_id, entities_removed, rows_suppressed, applied_at) "
        "VALUES ($e, $r, $n, $k, $now)",
        [{**r, "now": ctx.now} for r in rows],
    )
    for i in st.suppression.pending:
        cs.execute(
            "UPDATE idr_meta.erasure_request SET applied_run_id = $r, applied_at = $now "
            "WHERE erasure_id = $e AND applied_run_id IS NULL",
            {"r": ctx.run_id, "now": ctx.now, "e": i},
        )
    ctx.result.erasures_applied = {r["e"]: r["n"] for r in rows}
    erasure.publish_holds(ctx, cs)


def _delete_keys(cs: ChangeSet, table: str, column: str, keys: list) -> None:
    """One DELETE for every key (bound values)."""
    if keys:
        names = {f"k{i}": k for i, k in enumerate(keys)}
        cs.execute(f"DELETE FROM {table} WHERE {column} IN ({', '.join('$' + n for n in names)})", names)


def _replace_rows(cs: ChangeSet, table: str, column: str, rows: list[dict], insert: str) -> None:
    _delete_keys(cs, table, column, [r[column] for r in rows])
    cs.executemany(insert, rows)


def _still_current(ctx: RunContext) -> None:
    """Inside the publish: nothing else was published since this run read the state, and
    its history row is still its own."""
    last, status = history.last_published_and_status(ctx.adapter, ctx.run_id)
    if last != ctx.state.last_published:
        raise ConflictError("another run was published while this one ran; nothing was written, run it again")
    if status != "RUNNING":
        # The reaper marked this run FAILED in the warehouse too: its lease was taken.
        raise ConflictError("this run was given up as lost (its lease was taken); nothing was written")


NOT_ATOMIC = "not atomically"


def not_atomic_warning(platform: str, applied: Applied) -> str:
    """The run's warning when its change set was applied as ``applied`` (atomic=False)."""
    return (
        f"published on {platform} by {applied.how}, {NOT_ATOMIC}: a failure during them leaves some "
        "state tables new and others old until the next run (see README, Platforms)"
    )


def changes(ctx: RunContext, outcome: Callable[[], Write]) -> ChangeSet:
    """The publish's change set: the state tables, run_state, the id sequence, the rule
    audit, erasures, then (``outcome``) the run's own history row."""
    st = ctx.state
    p = {"now": ctx.now}
    scope = "full" if ctx.full else "incr"

    def closing(applied: Applied) -> list[Write]:
        if not applied.atomic:
            ctx.result.warnings.append(not_atomic_warning(ctx.adapter.platform, applied))
            if ctx.result.status == "SUCCESS":
                ctx.result.status = "SUCCESS_WITH_WARNINGS"
        return [outcome()]

    # Last before commit: does this run still hold its lease? (held until the commit ended)
    cs = ChangeSet(checks=[lambda: _still_current(ctx)], fence=ctx.fence.check, closing=closing)

    def run(ref: str, params: dict | None = None) -> None:
        cs.execute(ctx.stmt(ref), params)

    next_vid = max(st.next_vid, st.values_next_vid)
    if ctx.kind.fresh:
        run("publish.fresh_entities_insert", p)
        entity_lookup.write(ctx.adapter, f"SELECT eid, entity_key FROM {ctx.w('entities')}", cs)
    else:
        run("publish.entities_delete")
        run("publish.entities_insert", p)
        entity_lookup.write(ctx.adapter, f"SELECT eid, entity_key FROM {ctx.w('entity_changes')} WHERE is_new", cs)
    run(f"publish.values_delete_{scope}")
    run("publish.values_insert", p)
    run("publish.types_delete")
    run("publish.types_insert")
    run(f"publish.holders_delete_{scope}")
    run("publish.fresh_holders_insert" if ctx.kind.fresh else "publish.holders_insert", p)
    run(f"publish.clusters_delete_{scope}")
    run("publish.clusters_insert", p)
    run(f"publish.golden_delete_{scope}")
    for sql in _golden_inserts(ctx):
        cs.execute(sql, p)
    run("publish.skipped_insert", {"run_id": ctx.run_id, "now": ctx.now})
    run("publish.sequence_update", {"next": st.next_rid + st.new_ids})
    run("publish.counters_delete")
    run("publish.counters_insert", {"eid": st.next_eid + st.new_entities, "vid": next_vid})
    # One statement per table, whatever the number of sources and rules (round trips).
    rows = []
    for table_id, wm in ctx.result.watermarks.items():
        rec = ctx.now if table_id in st.reconciled else st.reconciled_before.get(table_id)
        rows.append(
            {
                "table_id": table_id,
                "wm": wm,
                "run_id": ctx.run_id,
                "now": ctx.now,
                "reconciled": rec.isoformat(sep=" ") if rec else None,
            }
        )
    _replace_rows(
        cs,
        "idr_meta.run_state",
        "table_id",
        rows,
        "INSERT INTO idr_meta.run_state (table_id, last_watermark_value, last_run_id, last_run_ts, "
        "last_reconciled_ts) VALUES ($table_id, CAST($wm AS TIMESTAMP), $run_id, $now, "
        "CAST($reconciled AS TIMESTAMP))",
    )
    _erasures(ctx, cs)
    if ctx.full:
        cs.execute("DELETE FROM idr_out.rule_match_audit_current")
    else:
        _delete_keys(cs, "idr_out.rule_match_audit_current", "rule_id", [r["rule_id"] for r in st.audit_rows])
    cs.executemany(
        "INSERT INTO idr_out.rule_match_audit_current (rule_id, identifier_type, edges, entities_matched, "
        "groups_matched, groups_skipped, last_run_id, updated_ts) VALUES "
        "($rule_id, $t, $edges, $entities_matched, $groups_matched, $groups_skipped, $run_id, $now)",
        st.audit_rows,
    )
    return cs


def publish(ctx: RunContext, outcome: Callable[[], Write]) -> Applied:
    """Step publish: the change set, applied by the adapter in the strongest form its
    platform has (README, Platforms: what is atomic)."""
    cs = changes(ctx, outcome)
    # The fence's exit follows the commit (or rollback): the lease stays checked until then.
    with ctx.fence:
        applied = ctx.adapter.apply_changes(cs)
    ctx.state.count("publish", rows_out=ctx.state.membership_changed)
    return applied
