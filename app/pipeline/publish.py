"""Atomic publish: production tables, run_state and the id sequence change together."""

from __future__ import annotations

from collections.abc import Callable

from app.core.errors import ConflictError
from app.pipeline.context import RunContext

P = "publish"


def prepare(ctx: RunContext) -> None:
    """Everything publish reads but does not write, computed outside the transaction:
    the rule audit rows and the number of membership rows that change."""
    ctx.facts["audit_rows"] = _rule_audit_rows(ctx)
    ctx.facts["membership_changed"] = int(
        ctx.adapter.scalar(
            f"SELECT count(*) FROM {ctx.w('membership')} WHERE old_id IS DISTINCT FROM resolved_id"
        )
        or 0
    )


def _rule_audit_rows(ctx: RunContext) -> list[dict]:
    a = ctx.adapter
    current = {
        r[0]: r
        for r in a.fetchall(
            "SELECT rule_id, identifier_type, edges, entities_matched, groups_matched, groups_skipped "
            "FROM idr_out.rule_match_audit_current"
        )
    }
    types = {r.rule_id: r.identifier_type for r in ctx.config.rules}
    rows = []
    for rule_id, s in ctx.result.rule_stats.items():
        if ctx.full or rule_id not in current:
            base = {"edges": 0, "entities_matched": 0, "groups_matched": 0, "groups_skipped": 0}
            old = {"edges": 0, "entities_matched": 0, "groups_matched": 0, "groups_skipped": 0}
            if not ctx.full:
                old = {**ctx.facts.get("rule_stats_old", {}).get(rule_id, {}), "edges": 0}
                old["edges"] = int(ctx.facts.get("rule_edges_old", {}).get(rule_id, 0))
                old = {k: old.get(k, 0) for k in base}
        else:
            cur = current[rule_id]
            base = {"edges": cur[2], "entities_matched": cur[3], "groups_matched": cur[4], "groups_skipped": cur[5]}
            o = ctx.facts.get("rule_stats_old", {}).get(rule_id, {})
            old = {
                "edges": int(ctx.facts.get("rule_edges_old", {}).get(rule_id, 0)),
                "entities_matched": o.get("entities_matched", 0),
                "groups_matched": o.get("groups_matched", 0),
                "groups_skipped": o.get("groups_skipped", 0),
            }
        vals = {k: max(0, int(base[k] or 0) - int(old[k]) + int(s[k])) for k in base}
        rows.append({"rule_id": rule_id, "t": types.get(rule_id), **vals, "run_id": ctx.run_id, "now": ctx.now})
    return rows


def publish(ctx: RunContext, finalize: Callable[[], None]) -> int:
    """One transaction; returns the number of membership rows written."""
    a = ctx.adapter
    p = {"now": ctx.now}
    audit = ctx.facts["audit_rows"]
    with a.transaction():
        from app.pipeline.runner import LAST_PUBLISHED_SQL

        if a.scalar(LAST_PUBLISHED_SQL) != ctx.facts.get("last_published"):
            raise ConflictError(
                "another run was published while this one ran; nothing was written, run it again"
            )
        ctx.run(P, "membership_delete")
        ctx.run(P, "membership_insert", p)
        ctx.run(P, "clusters_delete")
        ctx.run(P, "clusters_insert", p)
        ctx.run(P, "golden_delete_full" if ctx.full else "golden_delete_incr")
        ctx.run(P, "golden_insert", p)
        ctx.run(P, "edges_delete_full" if ctx.full else "edges_delete_incr")
        ctx.run(P, "edges_insert", p)
        ctx.run(P, "identifiers_delete_full" if ctx.full else "identifiers_delete_incr")
        ctx.run(P, "identifiers_insert", p)
        ctx.run(P, "skipped_insert", {"run_id": ctx.run_id, "now": ctx.now})
        ctx.run(P, "sequence_update", {"next": ctx.facts["next_id"]})
        for table_id, wm in ctx.result.watermarks.items():
            ctx.run(P, "run_state_delete", {"table_id": table_id})
            ctx.run(P, "run_state_insert", {"table_id": table_id, "wm": wm, "run_id": ctx.run_id, "now": ctx.now})
        if ctx.full:
            a.execute("DELETE FROM idr_out.rule_match_audit_current")
        for row in audit:
            a.execute(
                "DELETE FROM idr_out.rule_match_audit_current WHERE rule_id = $rule_id", {"rule_id": row["rule_id"]}
            )
        a.executemany(
            "INSERT INTO idr_out.rule_match_audit_current (rule_id, identifier_type, edges, entities_matched, "
            "groups_matched, groups_skipped, last_run_id, updated_ts) VALUES "
            "($rule_id, $t, $edges, $entities_matched, $groups_matched, $groups_skipped, $run_id, $now)",
            audit,
        )
        # The run's own history row flips to its final status in the same commit.
        finalize()
    return ctx.facts["membership_changed"]
