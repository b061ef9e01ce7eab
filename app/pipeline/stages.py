"""The pipeline's stages between extraction and publish. Each returns (rows_in, rows_out)."""

from __future__ import annotations

import os
from itertools import pairwise

from app.config.model import Canonicalize
from app.pipeline import components
from app.pipeline.context import RunContext
from app.pipeline.extract import active_rules, canonical_sql, lit

G = "graph"
R = "resolve"


def identifiers(ctx: RunContext) -> tuple[int, int]:
    """Exclusion list (EXACT / LIKE on the normalized value) over the delta's identifiers.

    Excluded rows are deleted from {w.ident_raw} in place (one pass, no copy);
    {w.identifiers} is a view of what is left, made distinct only when two mappings of
    one source can yield the same (entity, type, value)."""
    a = ctx.adapter
    raw = ctx.w("ident_raw")
    n_raw = ctx.count(raw)
    n_kept = n_raw
    if ctx.config.exclusions:
        rules = active_rules(ctx)
        ctx.exec(f"CREATE TABLE {ctx.w('excl_raw')} (identifier_type VARCHAR, pattern VARCHAR, match_type VARCHAR)")
        a.executemany(
            f"INSERT INTO {ctx.w('excl_raw')} VALUES ($t, $p, $m)",
            [
                {"t": x.identifier_type, "p": x.identifier_value_pattern, "m": str(x.match_type)}
                for x in ctx.config.exclusions
            ],
        )
        # EXACT patterns are canonicalized like the values they are compared with.
        cases = " ".join(
            f"WHEN {lit(t)} THEN {canonical_sql('pattern', r.canonicalize)}"
            for t, r in rules.items()
            if r.canonicalize != Canonicalize.NONE
        )
        v = f"CASE identifier_type {cases} ELSE pattern END" if cases else "pattern"
        ctx.exec(
            f"CREATE TABLE {ctx.w('excl_norm')} AS SELECT identifier_type, pattern, match_type, {v} AS v "
            f"FROM {ctx.w('excl_raw')}"
        )
        ctx.run(G, "exclusions_exact")
        # LIKE patterns become literal predicates: vectorized, where a correlated
        # EXISTS with LIKE is a nested loop.
        likes = sorted(
            {(x.identifier_type, x.identifier_value_pattern) for x in ctx.config.exclusions if x.match_type == "LIKE"}
        )
        like_sql = "".join(
            f" OR (r.identifier_type = {lit(t)} AND r.identifier_value_norm LIKE {lit(pat)})" for t, pat in likes
        )
        ctx.exec(
            f"DELETE FROM {raw} AS r WHERE EXISTS (SELECT 1 FROM {ctx.w('excl_exact')} AS x "
            "WHERE x.identifier_type = r.identifier_type AND x.v = r.identifier_value_norm)" + like_sql
        )
        n_kept = ctx.count(raw)
    ctx.result.values_excluded = n_raw - n_kept
    if ctx.facts.get("identifiers_may_repeat"):
        ctx.exec(f"CREATE TABLE {ctx.w('identifiers')} AS SELECT DISTINCT * FROM {raw}")
        return n_raw, ctx.count(ctx.w("identifiers"))
    ctx.exec(f"CREATE VIEW {ctx.w('identifiers')} AS SELECT * FROM {raw}")
    return n_raw, n_kept


def identifier_tables(ctx: RunContext) -> list[str]:
    """The scratch copies of identifier rows that are tables in this run (the others are
    views over {w.ident_raw}): ``members`` in INCR runs, ``identifiers`` when distinct."""
    names = [] if ctx.full else ["members"]
    if ctx.facts.get("identifiers_may_repeat"):
        names.append("identifiers")
    return names


def rules_table(ctx: RunContext) -> None:
    ctx.exec(f"CREATE TABLE {ctx.w('rules')} (identifier_type VARCHAR, rule_id VARCHAR, max_group_size BIGINT)")
    ctx.adapter.executemany(
        f"INSERT INTO {ctx.w('rules')} VALUES ($t, $r, $m)",
        [{"t": t, "r": r.rule_id, "m": r.max_group_size} for t, r in active_rules(ctx).items()],
    )


def groups(ctx: RunContext) -> tuple[int, int]:
    """Group members per identifier value; oversized groups are skipped and audited."""
    rules_table(ctx)
    if ctx.full:
        ctx.exec(f"CREATE VIEW {ctx.w('members')} AS SELECT * FROM {ctx.w('identifiers')}")
    else:
        for name in (
            "incr_edges_touched",
            "incr_old_ident",
            "incr_lost",
            "incr_gained",
            "incr_values",
            "incr_old_edges",  # the linked values' stored holders, for members_old
            "incr_members_old",
            "incr_members",
        ):
            ctx.run(G, name)
        ctx.run(G, "groups_old")
    ctx.run(G, "full_groups" if ctx.full else "groups")
    ctx.run(G, "skipped_members")
    ctx.run(G, "skipped")
    ctx.result.groups_skipped = ctx.count(ctx.w("skipped"))
    if ctx.result.groups_skipped:
        ctx.result.warnings.append(
            f"{ctx.result.groups_skipped} identifier group(s) exceeded max_group_size and were skipped "
            "(see idr_out.skipped_identifier_groups)"
        )
    ctx.facts["member_rows"] = ctx.count(ctx.w("members"))  # the edges stage's input too
    return ctx.facts["member_rows"], ctx.count(ctx.w("groups"))


def edges(ctx: RunContext) -> tuple[int, int]:
    a = ctx.adapter
    if ctx.full:
        old_total = ctx.count("idr_out.identity_edges_current")
        ctx.run(G, "full_edges_new")
    else:
        ctx.facts["rule_edges_old"] = {
            rule_id: int(n)
            for rule_id, n in a.fetchall(f"SELECT rule_id, count(*) FROM {ctx.w('edges_old')} GROUP BY rule_id")
        }
        old_total = sum(ctx.facts["rule_edges_old"].values())
        ctx.run(G, "edges_new")
    # Per rule: the new edges, and how many of them already existed (same link, same
    # value: "updated"; the rest are new).
    per_rule = {
        rule_id: (int(total), int(kept))
        for rule_id, total, kept in a.fetchall(
            f"SELECT rule_id, count(*), count(*) FILTER (WHERE existed) FROM {ctx.w('edges_new')} GROUP BY rule_id"
        )
    }
    n_new = sum(total for total, _ in per_rule.values())
    existing = sum(kept for _, kept in per_rule.values())
    ctx.result.edges_created = n_new - existing
    ctx.result.edges_updated = existing
    ctx.result.edges_removed = old_total - existing
    _rule_stats(ctx, per_rule)
    return ctx.facts["member_rows"], n_new


def _empty_stats() -> dict[str, int]:
    return {"groups_matched": 0, "entities_matched": 0, "groups_skipped": 0, "edges": 0, "edges_created": 0}


def _rule_stats(ctx: RunContext, edges_per_rule: dict[str, tuple[int, int]]) -> None:
    """Per-rule counts of this run's new state (FULL) or of its change (INCR);
    ``edges_per_rule``: rule -> (new edges, of which already stored)."""
    a = ctx.adapter
    stats: dict[str, dict[str, int]] = {}
    q = (
        "SELECT rule_id, count(*) FILTER (WHERE n >= 2 AND n <= max_group_size), "
        "coalesce(sum(n) FILTER (WHERE n >= 2 AND n <= max_group_size), 0), "
        "count(*) FILTER (WHERE n > max_group_size) FROM {t} GROUP BY rule_id"
    )
    for rule_id, matched, ents, skipped in a.fetchall(q.format(t=ctx.w("groups"))):
        stats[rule_id] = {
            "groups_matched": int(matched),
            "entities_matched": int(ents),
            "groups_skipped": int(skipped),
            "edges": 0,
            "edges_created": 0,
        }
    for rule_id, (total, kept) in edges_per_rule.items():
        stats.setdefault(rule_id, _empty_stats())
        stats[rule_id]["edges"] = total
        stats[rule_id]["edges_created"] = total - kept
    if not ctx.full:
        ctx.facts["rule_stats_old"] = {
            rule_id: {"groups_matched": int(m), "entities_matched": int(e), "groups_skipped": int(s)}
            for rule_id, m, e, s in a.fetchall(q.format(t=ctx.w("groups_old")))
        }
    for r in active_rules(ctx).values():
        stats.setdefault(r.rule_id, _empty_stats())
    ctx.result.rule_stats = stats


def connected_components(ctx: RunContext) -> tuple[int, int]:
    if ctx.full:  # the stage is the components alone; FULL's scope is resolve_ids' input
        ctx.run(G, "full_cc_edges")
    else:
        ctx.run(G, "incr_touched")
        ctx.run(G, "incr_broken")
        ctx.run(G, "incr_impacted")
        ctx.run(G, "incr_scope")
        ctx.run(G, "incr_nodes")
        ctx.run(G, "cc_edges")
        # Only clusters that may split keep their stored links as edges; a delta that only
        # adds records breaks none, and the scan of every stored edge is skipped.
        if ctx.count(ctx.w("broken")):
            ctx.run(G, "incr_cc_edges_kept")
    n_edges = ctx.count(ctx.w("cc_edges"))
    max_rounds = int(ctx.config.settings.get("max_cc_rounds", ctx.settings.max_cc_rounds))
    engine = ctx.settings.cc_engine
    if engine == "auto":
        engine = "unionfind" if ctx.adapter.supports_arrow else "sql"
    if engine == "unionfind":
        ctx.result.lp_iterations = components.unionfind_components(ctx)
    else:
        ctx.result.lp_iterations = components.sql_components(ctx, max_rounds)
    if ctx.full:
        ctx.run(G, "full_proposed")
    else:
        ctx.run(G, "proposed")
    if ctx.full and "cc_linked" in ctx.facts:  # every unlinked entity is a cluster of its own
        linked_nodes, linked_comps = ctx.facts["cc_linked"]
        n_comps = linked_comps + ctx.result.entities_processed - linked_nodes
    else:
        n_comps = int(ctx.adapter.scalar(f"SELECT count(DISTINCT comp) FROM {ctx.w('proposed')}") or 0)
    return n_edges, n_comps


def resolve_ids(ctx: RunContext) -> tuple[int, int]:
    """Stable ids (see README: Stable resolved ids), proposed membership and clusters."""
    a = ctx.adapter
    # FULL: integer joins on eid, and kr (entity_key order) stands in for the key.
    full = "full_" if ctx.full else ""
    if ctx.full:
        ctx.run(R, "full_scope")
        key_rank(ctx)
    for name in (f"{full}overlap", f"{full}comps", "keep"):
        ctx.run(R, name)
    next_no = int(
        a.scalar("SELECT next_value FROM idr_meta.resolved_id_sequence WHERE sequence_name = 'resolved_id'") or 1
    )
    ctx.run(R, "comp_ids", {"next": next_no})
    new_ids = int(a.scalar(f"SELECT count(*) FROM {ctx.w('comp_ids')} WHERE new_no IS NOT NULL") or 0)
    ctx.facts["next_id"] = next_no + new_ids
    ctx.facts["new_ids"] = new_ids
    ctx.run(R, f"{full}new_membership")
    ctx.run(R, "full_removed" if ctx.full else "removed_empty")
    ctx.run(R, "changed_ids")
    ctx.result.clusters_impacted = ctx.count(ctx.w("changed_ids"))
    threshold = int(ctx.config.settings.get("large_cluster_threshold", "5000"))
    # Large clusters after this run: proposed ones in scope + untouched current ones
    # (FULL: none is untouched, every current id is inherited or retired).
    untouched = (
        "0"
        if ctx.full
        else "(SELECT count(*) FROM idr_out.identity_clusters_current AS c WHERE c.cluster_size > $t "
        f"AND c.resolved_id NOT IN (SELECT resolved_id FROM {ctx.w('comp_ids')}) "
        f"AND c.resolved_id NOT IN (SELECT resolved_id FROM {ctx.w('changed_ids')}))"
    )
    ctx.result.large_clusters = int(
        a.scalar(f"SELECT (SELECT count(*) FROM {ctx.w('comp_ids')} WHERE size > $t) + {untouched}", {"t": threshold})
        or 0
    )
    if ctx.result.large_clusters:
        ctx.result.warnings.append(
            f"{ctx.result.large_clusters} cluster(s) larger than large_cluster_threshold={threshold}"
        )
    return ctx.count(ctx.w("proposed")), ctx.count(ctx.w("comp_ids"))


def key_rank(ctx: RunContext) -> None:
    """FULL: {w.key_rank} (eid, comp, kr), each entity's 1-based position in entity_key
    order, read from {w.proposed} so that it carries the entity's component.

    Entity keys share long prefixes ('shop_orders:ORD-000...'), and DuckDB's sort only
    tells strings apart by their first bytes, so sorting whole keys compares most pairs
    byte by byte (10M keys: 11 s here). Where each table's keys occupy their own range
    of the key order, the order is (table, key without the prefix all of that table's
    keys share), and sorting on that is 3-4x faster. Exact: any string between a table's
    smallest and largest key starts with their common prefix."""
    a = ctx.adapter
    plan = _table_prefixes(ctx.facts["key_ranges"]) if a.binary_string_order else None
    if plan is None:
        ctx.run(R, "full_key_rank")
        return
    order = " ".join(f"WHEN {lit(t)} THEN {i}" for i, (t, _) in enumerate(plan))
    start = " ".join(f"WHEN {lit(t)} THEN {n + 1}" for t, n in plan)
    # Materialized first: sorting on the substr expression itself is as slow as the keys.
    ctx.exec(
        f"CREATE TABLE {ctx.w('key_sfx')} AS SELECT eid, comp, CASE table_id {order} END AS t, "
        f"substr(entity_key, CASE table_id {start} END) AS sfx FROM {ctx.w('proposed')}"
    )
    ctx.exec(
        f"CREATE TABLE {ctx.w('key_rank')} AS SELECT eid, comp, row_number() OVER (ORDER BY t, sfx) AS kr "
        f"FROM {ctx.w('key_sfx')}"
    )
    ctx.drop("key_sfx")


def _table_prefixes(key_ranges: list[tuple[str, str, str]]) -> list[tuple[str, int]] | None:
    """From each table's (table_id, smallest key, largest key), as extraction read them:
    [(table_id, length of the prefix all its keys share)] in key order, or None when two
    tables' key ranges overlap (a table id that is a prefix of another's keys)."""
    rows = sorted(key_ranges, key=lambda r: r[1])
    # Python compares str by code point: the same order as DuckDB's bytewise UTF-8.
    if any(prev[2] >= nxt[1] for prev, nxt in pairwise(rows)):
        return None
    return [(t, len(os.path.commonprefix([lo, hi]))) for t, lo, hi in rows]
