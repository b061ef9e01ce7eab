"""Atomic publish: the state tables, run_state, the id sequence and the run's own history
row change in one transaction (on platforms without one, in the strongest form the
adapter offers; see README "Platforms")."""

from __future__ import annotations

from collections.abc import Callable

from app.core.errors import ConflictError
from app.pipeline import erasure, history
from app.pipeline.context import RunContext
from app.pipeline.extract import attribute_names
from app.schema import entity_lookup
from app.schema.golden import golden_columns


def prepare(ctx: RunContext) -> None:
    """Step publish_prepare: everything publish reads but does not write, computed
    outside the transaction: the rule audit rows and the membership rows that change."""
    ctx.state.audit_rows = _rule_audit_rows(ctx)
    ctx.state.membership_changed = ctx.scalar(
        f"SELECT count(*) FROM {ctx.w('membership')} WHERE old_rid IS DISTINCT FROM rid"
    )


def _rule_audit_rows(ctx: RunContext) -> list[dict]:
    a = ctx.adapter
    st = ctx.state
    current = {
        r[0]: r
        for r in a.fetchall(
            "SELECT rule_id, identifier_type, edges, entities_matched, groups_matched, groups_skipped "
            "FROM idr_out.rule_match_audit_current"
        )
    }
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


def _golden_insert(ctx: RunContext) -> str | None:
    names = attribute_names(ctx)
    if not names:
        return None
    cols = golden_columns(ctx.adapter)
    target = ", ".join(f"v{cols[n]}, e{cols[n]}" for n in names)
    source = ", ".join(f"v{j}, e{j}" for j in range(len(names)))
    return (
        f"INSERT INTO idr_state.golden (rid, updated_ts, {target}) "
        f"SELECT rid, $now, {source} FROM {ctx.w('golden_new')}"
    )


def _erasures(ctx: RunContext) -> None:
    """Erasures this run applied: the pending ones take effect now (even when nothing
    matched), and every erasure that removed a member or kept a row out is listed."""
    st = ctx.state
    ids = sorted(set(st.suppression.pending) | set(st.erasure_counts))
    rows = [
        {"e": i, "r": ctx.run_id, "n": st.erasure_counts.get(i, (0, 0))[0], "k": st.erasure_counts.get(i, (0, 0))[1]}
        for i in ids
    ]
    ctx.adapter.executemany(
        "INSERT INTO idr_out.erasure_runs (erasure_id, run_id, entities_removed, rows_suppressed, applied_at) "
        "VALUES ($e, $r, $n, $k, $now)",
        [{**r, "now": ctx.now} for r in rows],
    )
    for i in st.suppression.pending:
        ctx.adapter.execute(
            "UPDATE idr_meta.erasure_request SET applied_run_id = $r, applied_at = $now "
            "WHERE erasure_id = $e AND applied_run_id IS NULL",
            {"r": ctx.run_id, "now": ctx.now, "e": i},
        )
    ctx.result.erasures_applied = {r["e"]: r["n"] for r in rows}
    erasure.publish_holds(ctx)


def _delete_keys(ctx: RunContext, table: str, column: str, keys: list) -> None:
    """One DELETE for every key (bound values)."""
    if keys:
        names = {f"k{i}": k for i, k in enumerate(keys)}
        ctx.exec(f"DELETE FROM {table} WHERE {column} IN ({', '.join('$' + n for n in names)})", names)


def _replace_rows(ctx: RunContext, table: str, column: str, rows: list[dict], insert: str) -> None:
    _delete_keys(ctx, table, column, [r[column] for r in rows])
    ctx.adapter.executemany(insert, rows)


def publish(ctx: RunContext, finalize: Callable[[], None]) -> None:
    """Step publish: one transaction."""
    a = ctx.adapter
    st = ctx.state
    p = {"now": ctx.now}
    scope = "full" if ctx.full else "incr"
    golden_sql = _golden_insert(ctx)
    next_vid = max(st.next_vid, ctx.scalar(f"SELECT coalesce(max(vid), -1) + 1 FROM {ctx.w('values_new')}"))
    # The fence's exit follows the commit (or rollback): the lease stays checked until then.
    with ctx.fence, a.transaction():
        if history.last_published(a) != st.last_published:
            raise ConflictError("another run was published while this one ran; nothing was written, run it again")
        if history.status(a, ctx.run_id) != "RUNNING":
            # The reaper marked this run FAILED in the warehouse too: its lease was taken.
            raise ConflictError("this run was given up as lost (its lease was taken); nothing was written")
        if ctx.kind.fresh:
            ctx.run("publish.fresh_entities_insert", p)
            entity_lookup.write(a, f"SELECT eid, entity_key FROM {ctx.w('entities')}")
        else:
            ctx.run("publish.entities_delete")
            ctx.run("publish.entities_insert", p)
            entity_lookup.write(a, f"SELECT eid, entity_key FROM {ctx.w('entity_changes')} WHERE is_new")
        ctx.run(f"publish.values_delete_{scope}")
        ctx.run("publish.values_insert", p)
        ctx.run("publish.types_delete")
        ctx.run("publish.types_insert")
        ctx.run(f"publish.holders_delete_{scope}")
        ctx.run("publish.fresh_holders_insert" if ctx.kind.fresh else "publish.holders_insert", p)
        ctx.run(f"publish.clusters_delete_{scope}")
        ctx.run("publish.clusters_insert", p)
        ctx.run(f"publish.golden_delete_{scope}")
        if golden_sql:
            a.execute(golden_sql, p)
        ctx.run("publish.skipped_insert", {"run_id": ctx.run_id, "now": ctx.now})
        ctx.run("publish.sequence_update", {"next": st.next_rid + st.new_ids})
        ctx.run("publish.counters_delete")
        ctx.run("publish.counters_insert", {"eid": st.next_eid + st.new_entities, "vid": next_vid})
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
            ctx,
            "idr_meta.run_state",
            "table_id",
            rows,
            "INSERT INTO idr_meta.run_state (table_id, last_watermark_value, last_run_id, last_run_ts, "
            "last_reconciled_ts) VALUES ($table_id, CAST($wm AS TIMESTAMP), $run_id, $now, "
            "CAST($reconciled AS TIMESTAMP))",
        )
        _erasures(ctx)
        if ctx.full:
            a.execute("DELETE FROM idr_out.rule_match_audit_current")
        else:
            _delete_keys(ctx, "idr_out.rule_match_audit_current", "rule_id", [r["rule_id"] for r in st.audit_rows])
        a.executemany(
            "INSERT INTO idr_out.rule_match_audit_current (rule_id, identifier_type, edges, entities_matched, "
            "groups_matched, groups_skipped, last_run_id, updated_ts) VALUES "
            "($rule_id, $t, $edges, $entities_matched, $groups_matched, $groups_skipped, $run_id, $now)",
            st.audit_rows,
        )
        # Last before commit: does this run still hold its lease? (held until the commit ended)
        ctx.fence.check()
        # The run's own history row flips to its final status in the same commit.
        finalize()
    ctx.state.count("publish", rows_out=st.membership_changed)
