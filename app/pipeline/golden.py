"""Golden profile: one row per cluster, one value (and the record it came from) per
configured attribute, chosen by survivorship rules.

Strategies (a NULL value never wins; ties always fall through to a deterministic order):
- RECENCY: newest record (``recency_field`` attribute if set, else the source watermark),
  then most trusted source, then smallest entity key.
- SOURCE_PRIORITY: position in ``source_priority_list`` (else ``source.trust_rank``,
  lower = more trusted), then newest, then smallest entity key.
- MOST_FREQUENT: the value held by most members, then as RECENCY.

A value the exclusion list blocks for an identifier type is never chosen for an
attribute that maps the same column as that type's identifier (``test@test.com`` is no
one's email), unless the config key ``golden_allow_excluded_values`` is true.

Entity rows are wide (attribute j in column ``a{j}``, see ``extract.attribute_names``), so
the profile is one aggregation over the clusters' entities. Adapters with
``supports_struct_min_by`` pick each winner with an integer ``min`` over a packed key;
the others rank with a window. The output, {w.golden_new}(rid, v0, e0, v1, e1, ...), has
attribute j's value in ``v{j}`` and its record's eid in ``e{j}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.config.model import Canonicalize, Strategy
from app.core.vocabulary import GOLDEN_ALLOW_EXCLUDED_VALUES
from app.pipeline.context import RunContext
from app.pipeline.extract import (
    LATEST,
    active_rules,
    active_sources,
    attribute_names,
    canonical_sql,
    lit,
    live_conditions,
    release_attribute_columns,
    source_select,
    type_numbers,
)

STAGE = "golden_profile"


@dataclass(frozen=True)
class _Attr:
    j: int
    name: str
    strategy: Strategy
    recency: str  # SQL: the record's recency for this attribute
    rank: str  # SQL: the record's source rank for this attribute (lower wins)


def attributes(ctx: RunContext) -> list[_Attr]:
    cfg = ctx.config
    names = attribute_names(ctx)
    col = {n: f"a{j}" for j, n in enumerate(names)}
    surv = {s.attribute_name: s for s in cfg.survivorship_rules}
    trust = {s.table_id: s.trust_rank for s in cfg.source_trust if s.is_active}
    out = []
    for j, name in enumerate(names):
        rule = surv.get(name)
        strategy = Strategy(rule.strategy) if rule else Strategy.RECENCY
        rf = rule.recency_field if rule else None
        if not rf:
            recency = "record_ts"
        elif rf in col:
            recency = f"TRY_CAST({col[rf]} AS TIMESTAMP)"
        else:  # a recency field that no source maps is never known
            recency = "CAST(NULL AS TIMESTAMP)"
        listed = [t.strip() for t in (rule.source_priority_list or "").split(",") if t.strip()] if rule else []
        raw = {
            s.table_id: listed.index(s.table_id) if s.table_id in listed else len(listed) + trust.get(s.table_id, 100)
            for s in cfg.sources
        }
        # Dense positions keep the order and stay small, so they fit the packed key.
        dense = {v: i for i, v in enumerate(sorted(set(raw.values())))}
        whens = " ".join(f"WHEN {lit(t)} THEN {dense[v]}" for t, v in raw.items())
        rank = f"CASE table_id {whens} ELSE {len(dense)} END" if whens else "0"
        out.append(_Attr(j, name, strategy, recency, rank))
    return out


def blocked_types(ctx: RunContext) -> dict[int, str]:
    """Attribute position -> the identifier type whose exclusions apply to it: an
    attribute that maps, in some source, the same expression as that type's identifier."""
    if str(ctx.config.settings.get(GOLDEN_ALLOW_EXCLUDED_VALUES, "false")).lower() in ("true", "1", "yes"):
        return {}
    rules = active_rules(ctx)
    excluded = {x.identifier_type for x in ctx.config.exclusions}
    ident = {
        (m.table_id, m.identifier_value_expr.strip().lower()): m.identifier_type
        for m in ctx.config.identifier_mappings
        if m.identifier_type in rules and m.identifier_type in excluded
    }
    out: dict[int, str] = {}
    for j, name in enumerate(attribute_names(ctx)):
        for m in ctx.config.attribute_mappings:
            t = ident.get((m.table_id, m.attribute_expr.strip().lower()))
            if m.attribute_name == name and t is not None:
                out[j] = t
    return out


def _unblocked(ctx: RunContext, j: int, itype: str) -> str:
    """a{j}, or NULL where its normalized value is on the exclusion list of ``itype``."""
    canon = active_rules(ctx)[itype].canonicalize
    norm = canonical_sql(f"a{j}", canon if canon != Canonicalize.NONE else Canonicalize.NONE)
    likes = sorted(
        {
            x.identifier_value_pattern
            for x in ctx.config.exclusions
            if x.match_type == "LIKE" and x.identifier_type == itype
        }
    )
    conds = [f"{norm} IN (SELECT x.v FROM {ctx.w('excl_exact')} AS x WHERE x.type_no = {type_numbers(ctx)[itype]})"]
    conds += [f"{norm} LIKE {lit(p)}" for p in likes]
    return f"CASE WHEN {' OR '.join(conds)} THEN NULL ELSE a{j} END"


def _row_cols(ctx: RunContext) -> str:
    blocked = blocked_types(ctx)
    return "".join(
        f", {_unblocked(ctx, j, blocked[j]) if j in blocked else f'a{j}'} AS a{j}"
        for j in range(len(attribute_names(ctx)))
    )


def scope_rows(ctx: RunContext) -> None:
    """Step golden_rows: {w.gsrc}(comp, kr, eid, table_id, record_ts, a0..), the wide rows
    of every entity in the proposal. INCR re-reads the impacted clusters' other members
    from their sources (rows the watermark already passed: as last seen)."""
    cols = _row_cols(ctx)
    if ctx.full:
        ctx.exec(
            f"CREATE TABLE {ctx.w('gsrc')} AS SELECT p.comp, p.kr, e.eid, e.table_id, e.record_ts{cols} "
            f"FROM {ctx.w('entities')} AS e JOIN {ctx.w('proposed')} AS p ON p.eid = e.eid"
        )
        release_attribute_columns(ctx)  # copied: the profile's steps get the memory
        return
    ctx.exec(
        f"CREATE TABLE {ctx.w('reread_keys')} AS SELECT s.entity_key FROM {ctx.w('scope_keys')} AS s "
        f"WHERE s.eid NOT IN (SELECT eid FROM {ctx.w('ent_ids')})"
    )
    names = "".join(f", a{j}" for j in range(len(attribute_names(ctx))))
    parts = [f"SELECT entity_key, table_id, record_ts{names} FROM {ctx.w('entities')}"]
    for src in active_sources(ctx):
        sel = source_select(ctx, src, identifiers=False, where=live_conditions(ctx, src), keys_in=ctx.w("reread_keys"))
        parts.append(f"SELECT entity_key, {lit(src.table_id)} AS table_id, record_ts{names} FROM ({sel}) AS s")
    rows = ctx.w("attr_rows")
    ctx.exec(f"CREATE TABLE {rows} AS " + " UNION ALL ".join(parts))
    # A key read twice is a source holding several rows under it: keep its latest record.
    if ctx.scalar(f"SELECT count(*) - count(DISTINCT entity_key) FROM {rows}"):
        ctx.exec(f"CREATE TABLE {ctx.w('attr_latest')} AS SELECT * FROM {rows} {LATEST}")
        ctx.drop("attr_rows")
        rows = ctx.w("attr_latest")
    ctx.exec(
        f"CREATE TABLE {ctx.w('gsrc')} AS SELECT p.comp, p.kr, s.eid, e.table_id, e.record_ts{cols} "
        f"FROM {rows} AS e JOIN {ctx.w('scope_keys')} AS s ON s.entity_key = e.entity_key "
        f"JOIN {ctx.w('proposed')} AS p ON p.eid = s.eid"
    )
    ctx.drop("reread_keys", "attr_rows", "attr_latest")


# Packed integer sort keys (smallest wins): no strings in the aggregation states, which
# is what keeps a 10M-entity profile in memory. ``kr`` is the record's position in
# entity_key order (< 2^40), so integer ties fall to the smallest entity key exactly.
_KR = 1 << 40
_NULL_NEWEST = (1 << 64) - 1


def _key(at: _Attr) -> str:
    # newest first: -epoch_us shifted to [0, 2^64); an unknown time sorts last
    nz = f"coalesce(-CAST(epoch_us({at.recency}) AS HUGEINT) + {1 << 63}, CAST('{_NULL_NEWEST}' AS HUGEINT))"
    rank = f"CAST({at.rank} AS HUGEINT)"  # a dense source position: < 2^16 (one per source)
    if at.strategy == Strategy.SOURCE_PRIORITY:
        return f"({rank} * CAST('{1 << 104}' AS HUGEINT) + {nz} * {_KR} + kr)"
    return f"({nz} * CAST('{1 << 56}' AS HUGEINT) + {rank} * {_KR} + kr)"


def _pivot(ctx: RunContext, attrs: list[_Attr], winners: str, won: Callable[[_Attr], str], where: str) -> str:
    """SELECT rid, v0, e0, ... from the winning records: record x won attribute j where
    ``won(at)`` holds."""
    cols = ", ".join(
        f"max(CASE WHEN {won(at)} THEN x.a{at.j} END) AS v{at.j}, max(CASE WHEN {won(at)} THEN x.eid END) AS e{at.j}"
        for at in attrs
    )
    return f"SELECT k.rid, {cols} FROM {winners} WHERE {where} GROUP BY k.rid"


def _golden_min_by(ctx: RunContext, attrs: list[_Attr]) -> None:
    """One GROUP BY comp with an integer ``min`` per attribute (a MOST_FREQUENT attribute
    first counts its values per cluster, keeping each value's best key); the winning
    records are then picked out of the entity rows by one join on comp.

    FULL runs aggregate only the clusters of several records: a record no edge links is
    a cluster of its own (comp < 0) and wins every attribute it has."""
    multi = "comp >= 0" if ctx.full else "TRUE"
    plain, picks, joins = [], [], []
    for at in attrs:
        col = f"a{at.j}"
        if at.strategy == Strategy.MOST_FREQUENT:
            f = ctx.w(f"freq{at.j}")
            ctx.exec(
                f"CREATE TABLE {f} AS SELECT comp, arg_min(best, row(-n, best)) AS m "
                f"FROM (SELECT comp, count(*) AS n, min({_key(at)}) AS best "
                f"FROM {ctx.w('gsrc')} WHERE {multi} AND {col} IS NOT NULL GROUP BY comp, {col}) AS v GROUP BY comp"
            )
            joins.append(f"LEFT JOIN {f} AS f{at.j} ON f{at.j}.comp = c.comp")
            picks.append(f"CAST(f{at.j}.m & {_KR - 1} AS BIGINT) AS k{at.j}")
        else:
            plain.append(f"min(CASE WHEN {col} IS NOT NULL THEN {_key(at)} END) AS m{at.j}")
            picks.append(f"CAST(g.m{at.j} & {_KR - 1} AS BIGINT) AS k{at.j}")
    if plain:
        ctx.exec(
            f"CREATE TABLE {ctx.w('golden_wide')} AS SELECT comp, {', '.join(plain)} "
            f"FROM {ctx.w('gsrc')} WHERE {multi} GROUP BY comp"
        )
        joins.insert(0, f"JOIN {ctx.w('golden_wide')} AS g ON g.comp = c.comp")
    ctx.exec(
        f"CREATE TABLE {ctx.w('golden_k')} AS SELECT c.comp, c.rid, {', '.join(picks)} "
        f"FROM (SELECT * FROM {ctx.w('comp_ids')} WHERE {multi}) AS c {' '.join(joins)}"
    )
    ks = ", ".join(f"k.k{at.j}" for at in attrs)
    sql = _pivot(
        ctx,
        attrs,
        f"{ctx.w('gsrc')} AS x JOIN {ctx.w('golden_k')} AS k ON k.comp = x.comp",
        lambda at: f"x.kr = k.k{at.j}",
        f"x.kr IN ({ks})",
    )
    if ctx.full:  # one-record clusters: every attribute of the record
        own = ", ".join(
            f"x.a{at.j} AS v{at.j}, CASE WHEN x.a{at.j} IS NOT NULL THEN x.eid END AS e{at.j}" for at in attrs
        )
        some = " OR ".join(f"x.a{at.j} IS NOT NULL" for at in attrs)
        sql += (
            f" UNION ALL SELECT c.rid, {own} FROM {ctx.w('gsrc')} AS x "
            f"JOIN {ctx.w('comp_ids')} AS c ON c.comp = x.comp WHERE x.comp < 0 AND ({some})"
        )
    ctx.exec(f"CREATE TABLE {ctx.w('golden_new')} AS {sql}")
    ctx.drop("golden_wide", "golden_k", *(f"freq{at.j}" for at in attrs))


def _golden_window(ctx: RunContext, attrs: list[_Attr]) -> None:
    """Portable form: one ranked window per attribute, then one row per cluster."""
    parts = []
    for at in attrs:
        col = f"a{at.j}"
        order = []
        freq = "1"
        if at.strategy == Strategy.MOST_FREQUENT:
            freq = f"count(*) OVER (PARTITION BY comp, {col})"
            order.append("freq DESC")
        if at.strategy == Strategy.SOURCE_PRIORITY:
            order.append(at.rank)
        order += [f"{at.recency} DESC NULLS LAST", at.rank, "kr"]
        parts.append(
            f"SELECT comp, {at.j} AS j, kr FROM (SELECT *, {freq} AS freq FROM {ctx.w('gsrc')} "
            f"WHERE {col} IS NOT NULL) AS x{at.j} "
            f"QUALIFY row_number() OVER (PARTITION BY comp ORDER BY {', '.join(order)}) = 1"
        )
    ctx.exec(f"CREATE TABLE {ctx.w('golden_k')} AS " + " UNION ALL ".join(parts))
    sql = _pivot(
        ctx,
        attrs,
        f"{ctx.w('gsrc')} AS x JOIN {ctx.w('golden_k')} AS w ON w.comp = x.comp AND w.kr = x.kr "
        f"JOIN {ctx.w('comp_ids')} AS k ON k.comp = x.comp",
        lambda at: f"w.j = {at.j}",
        "TRUE",
    )
    ctx.exec(f"CREATE TABLE {ctx.w('golden_new')} AS {sql}")
    ctx.drop("golden_k")


def build(ctx: RunContext) -> None:
    """Step golden_build: {w.golden_new}, one row per proposed cluster that has a value."""
    attrs = attributes(ctx)
    if not attrs:  # (golden_rows did not run)
        ctx.exec(f"CREATE TABLE {ctx.w('golden_new')} (rid BIGINT)")
        ctx.state.count(STAGE, rows_out=0)
        return
    if ctx.adapter.supports_struct_min_by:
        _golden_min_by(ctx, attrs)
    else:
        _golden_window(ctx, attrs)
    ctx.state.count(STAGE, rows_in=ctx.count(ctx.w("gsrc")), rows_out=ctx.count(ctx.w("golden_new")))
