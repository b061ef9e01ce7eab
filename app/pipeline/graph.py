"""Builders of the identifier graph's steps (identifiers, group_guard, edges, components):
what the named statements in sql/stages/graph.sql cannot say alone."""

from __future__ import annotations

from app.config.model import Canonicalize
from app.pipeline import components
from app.pipeline.context import RunContext
from app.pipeline.extract import active_rules, canonical_sql, lit, type_numbers


def exclusions(ctx: RunContext) -> None:
    """Step exclusions: the exclusion list (EXACT / LIKE on the normalized value) deletes
    from {w.ident_raw} in place; {w.excl_exact} keeps the EXACT values (the golden profile
    reads them too) and {w.identifiers} is what is left, made distinct only when two
    mappings of one source can yield the same (entity, type, value)."""
    raw = ctx.w("ident_raw")
    rules = active_rules(ctx)
    numbers = type_numbers(ctx)
    # Exclusions of types no active rule links cannot match anything.
    exclusions = [x for x in ctx.config.exclusions if x.identifier_type in rules]
    # EXACT patterns are canonicalized like the values they are compared with; one
    # statement over the bound patterns (a statement is a round trip on a warehouse).
    cases = " ".join(
        f"WHEN {numbers[t]} THEN {canonical_sql('pattern', r.canonicalize)}"
        for t, r in rules.items()
        if r.canonicalize != Canonicalize.NONE
    )
    v = f"CASE type_no {cases} ELSE pattern END" if cases else "pattern"
    exact = sorted(
        {(numbers[x.identifier_type], x.identifier_value_pattern) for x in exclusions if x.match_type == "EXACT"}
    )
    params = {f"p{i}": pat for i, (_, pat) in enumerate(exact)}
    rows = " UNION ALL ".join(
        f"SELECT CAST({t} AS INTEGER) AS type_no, CAST($p{i} AS VARCHAR) AS pattern" for i, (t, _) in enumerate(exact)
    )
    if not rows:
        rows = "SELECT CAST(NULL AS INTEGER) AS type_no, CAST(NULL AS VARCHAR) AS pattern WHERE FALSE"
    ctx.exec(f"CREATE TABLE {ctx.w('excl_exact')} AS SELECT DISTINCT type_no, {v} AS v FROM ({rows}) AS x", params)
    if exclusions:
        # LIKE patterns become literal predicates: vectorized, where a correlated EXISTS
        # with LIKE is a nested loop.
        likes = sorted(
            {(numbers[x.identifier_type], x.identifier_value_pattern) for x in exclusions if x.match_type == "LIKE"}
        )
        like_sql = "".join(f" OR (r.type_no = {t} AND r.value_norm LIKE {lit(pat)})" for t, pat in likes)
        excluded = (
            f"EXISTS (SELECT 1 FROM {ctx.w('excl_exact')} AS x WHERE x.type_no = r.type_no AND x.v = r.value_norm)"
            + like_sql
        )
        # Rows before and rows excluded in one read, before the DELETE (a read after it
        # would be a second round trip on a warehouse).
        n = ctx.scalars(
            {"raw": f"SELECT count(*) FROM {raw}", "gone": f"SELECT count(*) FROM {raw} AS r WHERE {excluded}"}
        )
        n_raw, n_kept = n["raw"], n["raw"] - n["gone"]
        ctx.exec(f"DELETE FROM {raw} AS r WHERE {excluded}")
    else:
        n_raw = n_kept = ctx.count(raw)
    ctx.result.values_excluded = n_raw - n_kept
    if ctx.state.identifiers_may_repeat:
        ctx.run("graph.identifiers_distinct")
        n_kept = ctx.count(ctx.w("identifiers"))
    else:
        ctx.run("graph.identifiers_view")
    ctx.state.count("identifiers", rows_in=n_raw, rows_out=n_kept)


def rules_table(ctx: RunContext) -> None:
    """Step rules: {w.rules}(type_no, identifier_type, rule_id, max_group_size) of the
    active rules."""
    numbers = type_numbers(ctx)
    ctx.exec(
        f"CREATE TABLE {ctx.w('rules')} (type_no INTEGER, identifier_type VARCHAR, rule_id VARCHAR, "
        "max_group_size BIGINT)"
    )
    ctx.adapter.executemany(
        f"INSERT INTO {ctx.w('rules')} VALUES ($n, $t, $r, $m)",
        [{"n": numbers[t], "t": t, "r": r.rule_id, "m": r.max_group_size} for t, r in active_rules(ctx).items()],
    )


def key_rank(ctx: RunContext) -> None:
    """Step key_rank (FULL): {w.key_rank}(eid, kr), each entity's 1-based position in
    entity_key order: later steps compare these integers where the rules speak of the
    smallest key (anchors, new id numbering, tie-breaks). How the keys are sorted is the
    adapter's key-rank strategy (DuckDB sorts key suffixes, see app/platforms)."""
    ctx.adapter.strategies.key_rank.rank(ctx, ctx.state.key_ranges)


def group_rows(ctx: RunContext) -> None:
    """Step group_rows (FULL): {w.grp_rows}, one row per (entity, value) with its group's
    size, anchor (smallest key) and ``tvid``, a number unique per value (the smallest row
    number among its rows)."""
    # A row number per identifier row: the staging strategy's (a stored one on DuckDB).
    src, rn = ctx.adapter.strategies.staging.identifier_rows(
        ctx.w("identifiers"), ctx.w("ident_raw"), ctx.state.identifiers_may_repeat
    )
    # A first run numbers entities in key order: the eid is the rank, no join needed.
    kr, join = ("x.eid", "") if ctx.kind.fresh else ("k.kr", f"JOIN {ctx.w('key_rank')} AS k ON k.eid = x.eid")
    # One window per identifier type, partitioned by the value alone: cheaper than one
    # partitioned by (type, value). tvid: when an entity holds one value per type, (its
    # anchor's rank, type) names the value without another aggregate.
    types = sorted(type_numbers(ctx)[t] for t in active_rules(ctx))
    repeat = ctx.state.identifiers_may_repeat
    parts = []
    for j, t in enumerate(types):
        rn_col = f", {rn} AS rn" if repeat else ""
        window = (
            "SELECT i.eid, i.type_no, i.value_norm, i.kr, count(*) OVER w AS n, min(i.kr) OVER w AS anchor_kr"
            f"{', min(i.rn) OVER w AS tvid' if repeat else ''} "
            f"FROM (SELECT x.eid, x.type_no, x.value_norm, {kr} AS kr{rn_col} FROM {src} AS x {join}) AS i "
            f"WHERE i.type_no = {t} WINDOW w AS (PARTITION BY i.value_norm)"
        )
        # tvid from the anchor outside the window: one window aggregate fewer to compute.
        parts.append(window if repeat else f"SELECT *, anchor_kr * {len(types)} + {j} AS tvid FROM ({window}) AS g")
    ctx.exec(f"CREATE TABLE {ctx.w('grp_rows')} AS " + " UNION ALL ".join(parts))


def group_counts(ctx: RunContext) -> None:
    """Step group_counts: skipped groups (warning), the stage's counts."""
    r = ctx.result
    n = ctx.scalars(
        {
            "skipped": f"SELECT count(*) FROM {ctx.w('skipped')}",
            "holders": f"SELECT coalesce(sum(holders), 0) FROM {ctx.w('values_new')}",
            "values": f"SELECT count(*) FROM {ctx.w('values_new')}",
        }
    )
    r.groups_skipped = n["skipped"]
    if r.groups_skipped:
        r.warnings.append(
            f"{r.groups_skipped} identifier group(s) exceeded max_group_size and were skipped "
            "(see idr_out.skipped_identifier_groups)"
        )
    ctx.state.member_rows = n["holders"]
    ctx.state.count("group_guard", rows_in=n["holders"], rows_out=n["values"])


def _empty_stats() -> dict[str, int]:
    return {"groups_matched": 0, "entities_matched": 0, "groups_skipped": 0, "edges": 0, "edges_created": 0}


_RULE_STATS = (
    "SELECT rule_id, count(*) FILTER (WHERE linked) AS c1, coalesce(sum(holders) FILTER (WHERE linked), 0) AS c2, "
    "count(*) FILTER (WHERE holders > max_group_size) AS c3 FROM {t} GROUP BY rule_id"
)


def edge_counts(ctx: RunContext) -> None:
    """Step edge_counts: created / updated / removed edges, and per-rule counts of this
    run's new state (FULL) or of its change (INCR) for the rule audit."""
    a = ctx.adapter
    st = ctx.state
    # Every figure in one read (a round trip on a warehouse): (part, rule_id, c1, c2, c3).
    none = "CAST(NULL AS BIGINT)"
    parts = {
        "per_rule": f"SELECT rule_id, count(*) AS c1, count(*) FILTER (WHERE existed) AS c2, {none} AS c3 "
        f"FROM {ctx.w('edges_new')} GROUP BY rule_id",
        "stats": _RULE_STATS.format(t=ctx.w("values_new")),
    }
    if ctx.full and not ctx.kind.fresh:
        parts["old_total"] = (
            f"SELECT CAST(NULL AS VARCHAR) AS rule_id, count(*) AS c1, {none} AS c2, {none} AS c3 "
            "FROM idr_state.value_holders AS h "
            "JOIN idr_state.identifier_values AS v ON v.vid = h.vid AND v.linked AND h.eid <> v.anchor_eid"
        )
    if not ctx.full:
        old = ctx.stmt("graph.incr_edges_old")
        parts["edges_old"] = f"SELECT rule_id, n AS c1, {none} AS c2, {none} AS c3 FROM ({old}\n) AS o"
        parts["stats_old"] = (
            "SELECT r.rule_id, count(*) FILTER (WHERE o.linked) AS c1, "
            "coalesce(sum(o.holders) FILTER (WHERE o.linked), 0) AS c2, "
            f"count(*) FILTER (WHERE o.holders > r.max_group_size) AS c3 FROM {ctx.w('values_old')} AS o "
            f"JOIN {ctx.w('rules')} AS r ON r.type_no = o.type_no GROUP BY r.rule_id"
        )
    names = list(parts)
    arms = [
        f"SELECT {i} AS part, CAST(x.rule_id AS VARCHAR) AS rule_id, CAST(x.c1 AS BIGINT) AS c1, "
        f"CAST(x.c2 AS BIGINT) AS c2, CAST(x.c3 AS BIGINT) AS c3 FROM ({parts[n]}\n) AS x"
        for i, n in enumerate(names)
    ]
    got: dict[str, list[tuple]] = {n: [] for n in names}
    for part, *row in a.fetchall(" UNION ALL ".join(arms)):
        got[names[int(part)]].append(tuple(row))
    per_rule = {rule_id: (int(total), int(kept or 0)) for rule_id, total, kept, _ in got["per_rule"]}
    if ctx.full:
        old_total = int(got["old_total"][0][1] or 0) if got.get("old_total") else 0
    else:
        st.rule_edges_old = {rule_id: int(n) for rule_id, n, _, _ in got["edges_old"]}
        old_total = sum(st.rule_edges_old.values())
    n_new = sum(total for total, _ in per_rule.values())
    existing = sum(kept for _, kept in per_rule.values())
    r = ctx.result
    r.edges_created = n_new - existing
    r.edges_updated = existing
    r.edges_removed = old_total - existing
    stats: dict[str, dict[str, int]] = {}
    for rule_id, matched, ents, skipped in got["stats"]:
        if rule_id is None:
            continue
        stats[rule_id] = {
            "groups_matched": int(matched),
            "entities_matched": int(ents),
            "groups_skipped": int(skipped),
            "edges": 0,
            "edges_created": 0,
        }
    for rule_id, (total, kept) in per_rule.items():
        stats.setdefault(rule_id, _empty_stats())
        stats[rule_id]["edges"] = total
        stats[rule_id]["edges_created"] = total - kept
    if not ctx.full:
        st.rule_stats_old = {
            rule_id: {"groups_matched": int(m), "entities_matched": int(e), "groups_skipped": int(s)}
            for rule_id, m, e, s in got["stats_old"]
        }
    for rule in active_rules(ctx).values():
        stats.setdefault(rule.rule_id, _empty_stats())
    r.rule_stats = stats
    st.count("edges", rows_in=st.member_rows, rows_out=n_new)


def connected_components(ctx: RunContext) -> None:
    """Step components: {w.cc_labels}(node, label) over {w.cc_edges}, exact."""
    max_rounds = int(ctx.config.settings.get("max_cc_rounds", ctx.settings.max_cc_rounds))
    solver = components.solver_for(ctx.adapter, ctx.settings.cc_engine)
    ctx.result.lp_iterations = solver.solve(ctx, max_rounds)
    # Components = those among nodes with an edge + every node without one; the stage's
    # counts in one read (a round trip on a warehouse).
    queries = {"edges": f"SELECT count(*) FROM {ctx.w('cc_edges')}"}
    if ctx.state.linked is None:
        queries["linked_nodes"] = f"SELECT count(*) FROM {ctx.w('cc_labels')}"
        queries["linked_comps"] = f"SELECT count(DISTINCT label) FROM {ctx.w('cc_labels')}"
    if not ctx.full:
        queries["nodes"] = f"SELECT count(DISTINCT node) FROM {ctx.w('nodes')}"
    n = ctx.scalars(queries)
    linked_nodes, linked_comps = ctx.state.linked or (n["linked_nodes"], n["linked_comps"])
    nodes = ctx.result.entities_processed if ctx.full else n["nodes"]
    ctx.state.count("components", rows_in=n["edges"], rows_out=int(linked_comps) + nodes - int(linked_nodes))
