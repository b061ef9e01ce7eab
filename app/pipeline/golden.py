"""Golden profile: one value per (cluster, attribute), chosen by survivorship rules.

Strategies (a NULL value never wins; ties always fall through to a deterministic order):
- RECENCY: newest record (``recency_field`` attribute if set, else the source watermark),
  then most trusted source, then smallest entity key.
- SOURCE_PRIORITY: position in ``source_priority_list`` (else ``source.trust_rank``,
  lower = more trusted), then newest, then smallest entity key.
- MOST_FREQUENT: the value held by most members, then as RECENCY.

Entity rows are wide (attribute j in column ``a{j}``, see ``extract.attribute_names``), so
the profile is one aggregation over the clusters' entities instead of a window over
one row per (entity, attribute). Adapters with ``supports_struct_min_by`` pick each
winner with an integer ``min`` over a packed key; the others rank with a window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.config.model import Strategy
from app.pipeline.context import RunContext
from app.pipeline.extract import LATEST, attribute_names, drop_entities, lit, source_select


@dataclass(frozen=True)
class _Attr:
    j: int
    name: str
    strategy: Strategy
    recency: str  # SQL: the record's recency for this attribute
    rank: str  # SQL: the record's source rank for this attribute (lower wins)


def _attrs(ctx: RunContext) -> list[_Attr]:
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


def _scope_rows(ctx: RunContext) -> str:
    """Wide entity rows of every entity in the proposal, with its component and ``kr``,
    its position in entity_key order."""
    if ctx.full:  # kr from resolve_ids (resolve.sql: full_key_rank)
        return (
            f"SELECT k.comp, k.kr, e.* FROM {ctx.w('entities')} AS e JOIN {ctx.w('key_rank')} AS k ON k.eid = e.eid"
        )
    # INCR: the delta's rows are fresh; the other members of impacted clusters are read
    # back from their sources (rows the watermark already passed, so as last seen).
    ctx.exec(
        f"CREATE TABLE {ctx.w('reread_keys')} AS SELECT p.entity_key FROM {ctx.w('proposed')} AS p "
        f"WHERE NOT EXISTS (SELECT 1 FROM {ctx.w('entities')} AS e WHERE e.entity_key = p.entity_key)"
    )
    names = "".join(f", a{j}" for j in range(len(attribute_names(ctx))))
    parts = [f"SELECT entity_key, table_id, record_ts{names} FROM {ctx.w('entities')}"]
    for src in (s for s in ctx.config.sources if s.is_active):
        sel = source_select(ctx, src, identifiers=False, where=[], keys_in=ctx.w("reread_keys"))
        parts.append(f"SELECT entity_key, {lit(src.table_id)} AS table_id, record_ts{names} FROM ({sel}) AS s")
    ctx.exec(f"CREATE TABLE {ctx.w('attr_rows')} AS " + " UNION ALL ".join(parts))
    rows = ctx.w("attr_rows")
    # A key read twice is a source holding several rows under it: keep each key's latest
    # record. Checked on the rows read (keys are usually unique), where a window in every
    # re-read cost a third of it (1% at 10M: 0.18 s). Entity keys carry their table and
    # the delta's are not re-read, so one window over all rows is the per-source one.
    if int(ctx.adapter.scalar(f"SELECT count(*) - count(DISTINCT entity_key) FROM {rows}") or 0):
        ctx.exec(f"CREATE TABLE {ctx.w('attr_latest')} AS SELECT * FROM {rows} {LATEST}")
        rows = ctx.w("attr_latest")
    # The rank is taken over the proposal's narrow rows (a superset of these keys: the
    # same order), not through a sort of the wide attribute rows (1% at 10M: 0.15 s
    # against 0.28 s).
    return (
        f"SELECT p.comp, p.kr, e.* FROM {rows} AS e "
        f"JOIN (SELECT entity_key, comp, row_number() OVER (ORDER BY entity_key) AS kr FROM {ctx.w('proposed')}) AS p "
        "ON p.entity_key = e.entity_key"
    )


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


def _won(attrs: list[_Attr], won: Callable[[_Attr], str]) -> str:
    """SQL: one row per attribute the record of ``x`` wins (``won``: SQL condition), as a
    struct of its name ``n``, value ``v`` and strategy ``s``."""
    structs = ", ".join(
        f"{{'n': {lit(at.name)}, 'v': x.a{at.j}, 's': {lit(str(at.strategy))}, 'w': {won(at)}}}" for at in attrs
    )
    return f"unnest(list_filter([{structs}], lambda e: e.w))"


def _golden_min_by(ctx: RunContext, attrs: list[_Attr]) -> int:
    """One GROUP BY comp with an integer ``min`` per attribute (a MOST_FREQUENT
    attribute first counts its values per cluster, keeping each value's best key); the
    winning records are then picked out of the entity rows by one join on comp.

    FULL runs aggregate only the clusters of several records: a record no edge links is
    a cluster of its own (comp < 0, see graph.sql full_proposed; component labels are
    never negative) and wins every attribute it has, which needs no aggregation (1M
    records: 38% of the rows, 73% of the clusters)."""
    multi = "comp >= 0" if ctx.full else "TRUE"  # the clusters aggregated
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
    # Winner positions per cluster (k_j = kr of attribute j's winning record).
    ctx.exec(
        f"CREATE TABLE {ctx.w('golden_k')} AS SELECT c.comp, c.resolved_id, {', '.join(picks)} "
        f"FROM (SELECT * FROM {ctx.w('comp_ids')} WHERE {multi}) AS c {' '.join(joins)}"
    )
    ks = ", ".join(f"k.k{at.j}" for at in attrs)
    # Each winning record yields the attributes it won, side by side: a cluster's rows
    # reach publish together, so each row group of the profile holds fewer distinct ids
    # and keys, which DuckDB's string codecs write faster (1M records: 2.4M rows, ~15%),
    # and the winning records are read once in a view rather than copied for five reads.
    winners = (
        f"SELECT k.resolved_id, x.entity_key, x.table_id, {_won(attrs, lambda at: f'x.kr = k.k{at.j}')} AS u "
        f"FROM {ctx.w('gsrc')} AS x JOIN {ctx.w('golden_k')} AS k ON k.comp = x.comp WHERE x.kr IN ({ks})"
    )
    counts = f"(SELECT {' + '.join(f'count(k{at.j})' for at in attrs)} FROM {ctx.w('golden_k')})"
    if ctx.full:  # one-record clusters: every non-NULL attribute of the record
        winners += (
            f" UNION ALL SELECT c.resolved_id, x.entity_key, x.table_id, "
            f"{_won(attrs, lambda at: f'x.a{at.j} IS NOT NULL')} AS u "
            f"FROM (SELECT * FROM {ctx.w('gsrc')} WHERE NOT ({multi})) AS x "
            f"JOIN {ctx.w('comp_ids')} AS c ON c.comp = x.comp"
        )
        own = " + ".join(f"count(a{at.j})" for at in attrs)
        counts += f" + (SELECT {own} FROM {ctx.w('gsrc')} WHERE NOT ({multi}))"
    rows = int(ctx.adapter.scalar(f"SELECT {counts}") or 0)
    ctx.exec(
        f"CREATE VIEW {ctx.w('golden')} AS SELECT resolved_id, u.n AS attribute_name, u.v AS attribute_value, "
        "entity_key AS source_entity_key, table_id AS source_table_id, u.s AS strategy "
        f"FROM ({winners}) AS r"
    )
    ctx.drop("golden_wide", *(f"freq{at.j}" for at in attrs))  # gsrc and golden_k: read by the view
    return rows


def _golden_window(ctx: RunContext, attrs: list[_Attr]) -> int:
    """Portable form: one ranked window per attribute."""
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
        order += [f"{at.recency} DESC NULLS LAST", at.rank, "entity_key"]
        parts.append(
            f"SELECT comp, {lit(at.name)} AS attribute_name, {col} AS attribute_value, "
            f"entity_key AS source_entity_key, table_id AS source_table_id, {lit(str(at.strategy))} AS strategy "
            f"FROM (SELECT *, {freq} AS freq FROM {ctx.w('gsrc')} WHERE {col} IS NOT NULL) AS x{at.j} "
            f"QUALIFY row_number() OVER (PARTITION BY comp ORDER BY {', '.join(order)}) = 1"
        )
    ctx.exec(
        f"CREATE TABLE {ctx.w('golden')} AS SELECT c.resolved_id, w.attribute_name, w.attribute_value, "
        f"w.source_entity_key, w.source_table_id, w.strategy FROM ({' UNION ALL '.join(parts)}) AS w "
        f"JOIN {ctx.w('comp_ids')} AS c ON c.comp = w.comp"
    )
    return ctx.count(ctx.w("golden"))


# What the profile reads (besides comp_ids) and nothing after it does: publish and the
# dry-run diff read neither. Dropped as soon as {w.gsrc} holds what the profile needs.
INPUTS = ("proposed", "key_rank", "attr_rows", "attr_latest", "reread_keys")


def drop_inputs(ctx: RunContext) -> None:
    drop_entities(ctx)
    ctx.drop(*INPUTS)


def build_golden(ctx: RunContext) -> int:
    """Fill {w.golden} for every proposed cluster in scope. Returns rows written."""
    attrs = _attrs(ctx)
    if not attrs:
        ctx.exec(
            f"CREATE TABLE {ctx.w('golden')} (resolved_id VARCHAR, attribute_name VARCHAR, "
            "attribute_value VARCHAR, source_entity_key VARCHAR, source_table_id VARCHAR, strategy VARCHAR)"
        )
        drop_inputs(ctx)
        return 0
    ctx.exec(f"CREATE TABLE {ctx.w('gsrc')} AS " + _scope_rows(ctx))
    drop_inputs(ctx)  # before the aggregations need the memory
    if ctx.adapter.supports_struct_min_by:
        return _golden_min_by(ctx, attrs)  # {w.golden} is a view over gsrc, kept for publish
    rows = _golden_window(ctx, attrs)
    ctx.drop("gsrc")
    return rows
