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
the profile is one aggregation over the clusters' entities, built by the adapter's
golden strategy (``app/platforms/strategies.py``: a ranked window per attribute by
default; DuckDB picks each winner with an integer ``min`` over a packed key). The output,
{w.golden_new}(rid, v0, e0, v1, e1, ...), has attribute j's value in ``v{j}`` and its record's eid in ``e{j}``.
"""

from __future__ import annotations

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
from app.platforms.strategies import GoldenAttr

STAGE = "golden_profile"


def attributes(ctx: RunContext) -> list[GoldenAttr]:
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
        out.append(GoldenAttr(j, strategy, recency, rank))
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


# Up to this many EXACT exclusions of one type are inlined into the attribute check.
_INLINE_EXACT = 256


def _unblocked(ctx: RunContext, j: int, itype: str) -> str:
    """a{j}, or NULL where its normalized value is on the exclusion list of ``itype``."""
    canon = active_rules(ctx)[itype].canonicalize
    norm = canonical_sql(f"a{j}", canon if canon != Canonicalize.NONE else Canonicalize.NONE)
    mine = [x for x in ctx.config.exclusions if x.identifier_type == itype]
    likes = sorted({x.identifier_value_pattern for x in mine if x.match_type == "LIKE"})
    exact = sorted({x.identifier_value_pattern for x in mine if x.match_type == "EXACT"})
    if len(exact) <= _INLINE_EXACT:
        # A short list is a constant IN list (canonicalized like the values, folded once):
        # where the subquery is a join over every row of the scope.
        conds = [f"{norm} IN ({', '.join(canonical_sql(lit(p), canon) for p in exact)})"] if exact else []
    else:
        conds = [f"{norm} IN (SELECT x.v FROM {ctx.w('excl_exact')} AS x WHERE x.type_no = {type_numbers(ctx)[itype]})"]
    conds += [f"{norm} LIKE {lit(p)}" for p in likes]
    if not conds:
        return f"a{j}"
    return f"CASE WHEN {' OR '.join(conds)} THEN NULL ELSE a{j} END"


def _row_cols(ctx: RunContext) -> str:
    blocked = blocked_types(ctx)
    return "".join(
        f", {_unblocked(ctx, j, blocked[j]) if j in blocked else f'a{j}'} AS a{j}"
        for j in range(len(attribute_names(ctx)))
    )


def scope_rows(ctx: RunContext) -> None:
    """Step golden_rows: {w.gsrc}(comp, kr, eid, table_id, record_ts, a0..), the wide rows
    of the entities whose clusters the strategy profiles. INCR: every entity of the
    proposal, re-reading the impacted clusters' other members from their sources (rows
    the watermark already passed: as last seen). FULL: only the clusters of several
    records; a record no edge links (comp < 0, which is -1 - eid on a FULL run) is a
    cluster of its own whose profile is its own values, written straight to
    {w.golden_single}(rid, v0, e0, ...) without the strategy."""
    cols = _row_cols(ctx)
    if ctx.full:
        ctx.exec(
            f"CREATE TABLE {ctx.w('gsrc')} AS SELECT p.comp, p.kr, e.eid, e.table_id, e.record_ts{cols} "
            f"FROM {ctx.w('entities')} AS e JOIN {ctx.w('proposed')} AS p ON p.eid = e.eid WHERE p.comp >= 0"
        )
        n = len(attribute_names(ctx))
        own = "".join(f", a{j} AS v{j}, CASE WHEN a{j} IS NOT NULL THEN eid END AS e{j}" for j in range(n))
        some = " OR ".join(f"a{j} IS NOT NULL" for j in range(n))
        ctx.exec(
            f"CREATE TABLE {ctx.w('golden_single')} AS SELECT rid{own} FROM "
            f"(SELECT c.rid, e.eid{cols} FROM {ctx.w('entities')} AS e "
            f"JOIN {ctx.w('comp_ids')} AS c ON c.comp = -1 - e.eid WHERE c.comp < 0) AS x WHERE {some}"
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


def build(ctx: RunContext) -> None:
    """Step golden_build: {w.golden_new}, one row per proposed cluster that has a value."""
    attrs = attributes(ctx)
    if not attrs:  # (golden_rows did not run)
        ctx.exec(f"CREATE TABLE {ctx.w('golden_new')} (rid BIGINT)")
        ctx.state.count(STAGE, rows_out=0)
        return
    ctx.adapter.strategies.golden.build(ctx, attrs)
    n = ctx.scalars(
        {"rows_in": f"SELECT count(*) FROM {ctx.w('gsrc')}", "rows_out": f"SELECT count(*) FROM {ctx.w('golden_new')}"}
        | ({"single": f"SELECT count(*) FROM {ctx.w('golden_single')}"} if ctx.full else {})
    )
    single = n.get("single", 0)
    ctx.state.count(STAGE, rows_in=n["rows_in"] + single, rows_out=n["rows_out"] + single)
