"""Builders of the resolve_ids steps: stable ids from the sequence, the run's counts."""

from __future__ import annotations

from app.core.vocabulary import LARGE_CLUSTER_THRESHOLD, REMOVAL_REASONS
from app.pipeline.context import RunContext
from app.pipeline.extract import REASON_NO, active_rules

STAGE = "resolve_ids"


def comp_ids(ctx: RunContext) -> None:
    """Step comp_ids: {w.comp_ids}(comp, size, min_kr, rid, is_new); new ids are numbered
    from idr_meta.resolved_id_sequence."""
    ctx.run("resolve.comp_ids", {"next": ctx.state.next_rid})
    ctx.state.new_ids = ctx.scalar(f"SELECT count(*) FROM {ctx.w('comp_ids')} WHERE is_new")


def clusters_new(ctx: RunContext) -> None:
    """Step clusters_new: sizes and confidence of the proposed clusters."""
    ctx.run("resolve.clusters_new", {"rules": float(max(1, len(active_rules(ctx))))})


def large_cluster_threshold(ctx: RunContext) -> int:
    return int(ctx.config.settings.get("large_cluster_threshold", LARGE_CLUSTER_THRESHOLD))


def resolve_counts(ctx: RunContext) -> None:
    """Step resolve_counts: impacted and large clusters (warning), the stage's counts."""
    r = ctx.result
    threshold = large_cluster_threshold(ctx)
    # Large clusters after this run: proposed ones in scope + untouched current ones
    # (FULL: none is untouched, every current id is inherited or retired).
    untouched = (
        "0"
        if ctx.full
        else "(SELECT count(*) FROM idr_state.clusters AS c WHERE c.cluster_size > $t "
        f"AND c.rid NOT IN (SELECT rid FROM {ctx.w('comp_ids')}) "
        f"AND c.rid NOT IN (SELECT rid FROM {ctx.w('changed_rids')}))"
    )
    n = ctx.scalars(
        {
            "impacted": f"SELECT count(*) FROM {ctx.w('changed_rids')}",
            "large": f"SELECT (SELECT count(*) FROM {ctx.w('comp_ids')} WHERE size > $t) + {untouched}",
            "proposed": f"SELECT count(*) FROM {ctx.w('proposed')}",
            "comps": f"SELECT count(*) FROM {ctx.w('comp_ids')}",
        },
        {"t": threshold},
    )
    r.clusters_impacted = n["impacted"]
    r.large_clusters = n["large"]
    if r.large_clusters:
        r.warnings.append(f"{r.large_clusters} cluster(s) larger than large_cluster_threshold={threshold}")
    ctx.state.count(STAGE, rows_in=n["proposed"], rows_out=n["comps"])


def removal_counts(ctx: RunContext) -> None:
    """Step removal_counts: the entities this run removes from the membership, by reason."""
    names = {no: name for name, no in REASON_NO.items()}
    counts = dict.fromkeys(REMOVAL_REASONS, 0)
    # Both figures in one read (a round trip on a warehouse): (part, key, n, rows).
    rows = ctx.adapter.fetchall(
        f"SELECT 0 AS part, CAST(reason_no AS VARCHAR) AS k, count(*) AS n, CAST(NULL AS BIGINT) AS rows_ "
        f"FROM {ctx.w('removed')} GROUP BY reason_no "
        "UNION ALL "
        "SELECT 1 AS part, CAST(g.erasure_id AS VARCHAR) AS k, count(DISTINCT r.eid) AS n, count(*) AS rows_ "
        f"FROM {ctx.w('gone_erasure')} AS g "
        "LEFT JOIN idr_state.entities AS e ON e.entity_key = g.entity_key "
        f"LEFT JOIN {ctx.w('removed')} AS r ON r.eid = e.eid GROUP BY g.erasure_id"
    )
    for _, no, n, _ in (r for r in rows if int(r[0]) == 0):
        counts[names[int(no)]] += int(n)
    ctx.result.entities_removed = counts
    # Per erasure: the members it removes now, and the source rows it keeps out.
    ctx.state.erasure_counts = {
        str(eid): (int(removed or 0), int(n_rows or 0))
        for part, eid, removed, n_rows in rows
        if int(part) == 1
    }
