"""Stage 1-2: read the delta of every active source and unpivot it into entities,
normalized identifiers and attribute values (run-scoped work tables).

User expressions are parsed with sqlglot and re-rendered from the parse tree; config
values enter SQL only as literals built by sqlglot.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlglot import exp

from app.config.model import Canonicalize, IdentifierMapping, Rule, SourceTable
from app.config.validate import validate_expression
from app.core.errors import PipelineError
from app.pipeline.context import RunContext


def lit(value: str) -> str:
    return exp.Literal.string(value).sql(dialect="duckdb")


def ts_lit(value: datetime) -> str:
    return f"CAST({lit(value.isoformat(sep=' '))} AS TIMESTAMP)"


def canonical_sql(col: str, mode: Canonicalize) -> str:
    """SQL for one canonicalization of a VARCHAR column (see README: Canonicalization)."""
    match mode:
        case Canonicalize.NONE:
            return col
        case Canonicalize.LOWERCASE:
            return f"lower({col})"
        case Canonicalize.UPPERCASE:
            return f"upper({col})"
        case Canonicalize.TRIM:
            return f"trim({col})"
        case Canonicalize.EMAIL:
            return f"lower(trim({col}))"
        case Canonicalize.PHONE:
            return f"regexp_replace({col}, '[^0-9]', '', 'g')"
    raise ValueError(mode)  # pragma: no cover - enum is closed


def table_sql(fqn: str) -> str:
    return exp.to_table(fqn, dialect="duckdb").sql(dialect="duckdb", identify=True)


def expr_sql(ctx: RunContext, expr: str, field: str) -> str:
    try:
        return validate_expression(expr, None).sql(dialect="duckdb")
    except Exception as e:  # a stored expression that no longer parses
        raise PipelineError(f"{field}: {e}", stage="extract_entities") from e


def active_rules(ctx: RunContext) -> dict[str, Rule]:
    return {r.identifier_type: r for r in ctx.config.rules if r.is_active}


def _since(ctx: RunContext, src: SourceTable) -> datetime | None:
    if ctx.full or not src.watermark_column:
        return None
    last = ctx.facts["run_state"].get(src.table_id)
    if last is None:
        return None
    return last - timedelta(minutes=src.watermark_lookback_minutes or 0)


def attribute_names(ctx: RunContext) -> list[str]:
    """Golden-profile attributes in column order: entity rows carry attribute j as ``a{j}``."""
    return sorted({m.attribute_name for m in ctx.config.attribute_mappings})


def identifier_maps(ctx: RunContext, src: SourceTable) -> list[IdentifierMapping]:
    rules = active_rules(ctx)
    return [
        m
        for m in ctx.config.identifier_mappings
        if m.table_id == src.table_id
        and m.identifier_type in rules
        and (not m.is_hashed or rules[m.identifier_type].allow_hashed)
    ]


LATEST = "QUALIFY row_number() OVER (PARTITION BY entity_key ORDER BY record_ts DESC NULLS LAST) = 1"


def source_select(
    ctx: RunContext,
    src: SourceTable,
    *,
    identifiers: bool,
    where: list[str],
    keys_in: str | None = None,
) -> str:
    """One scan of a source: ``entity_key, record_ts, a0..ak`` (attributes in
    ``attribute_names`` order, NULL where this source maps none) and, with
    ``identifiers``, raw identifier columns ``i0..``; every row, also several under one
    key (callers keep each key's latest record with ``LATEST`` where keys repeat).
    ``where`` adds conditions on the source's columns; ``keys_in`` keeps only the entity
    keys listed in that table's ``entity_key`` column."""
    a = ctx.adapter
    key = expr_sql(ctx, src.entity_key_expr, f"sources[{src.table_id}].entity_key_expr")
    wm = a.ident(src.watermark_column) if src.watermark_column else None
    entity_key = f"{lit(src.table_id + ':')} || CAST(({key}) AS VARCHAR)"
    cols = [
        f"{entity_key} AS entity_key",
        f"CAST({wm} AS TIMESTAMP) AS record_ts" if wm else "CAST(NULL AS TIMESTAMP) AS record_ts",
    ]
    mapped = {m.attribute_name: m for m in ctx.config.attribute_mappings if m.table_id == src.table_id}
    for j, name in enumerate(attribute_names(ctx)):
        m = mapped.get(name)
        if m is None:
            cols.append(f"CAST(NULL AS VARCHAR) AS a{j}")
        else:
            e = expr_sql(ctx, m.attribute_expr, f"attribute_mappings[{m.table_id}].attribute_expr")
            cols.append(f"CAST(({e}) AS VARCHAR) AS a{j}")
    if identifiers:
        for j, m in enumerate(identifier_maps(ctx, src)):
            e = expr_sql(ctx, m.identifier_value_expr, f"identifier_mappings[{m.table_id}].identifier_value_expr")
            cols.append(f"CAST(({e}) AS VARCHAR) AS i{j}")
    conds = [f"({key}) IS NOT NULL", *where]
    if keys_in:
        # Matched on the key itself: the listed keys of this table, prefix cut off, rather
        # than building every source row's entity_key (10M records: a third of the scan).
        prefix = src.table_id + ":"
        conds.append(
            f"CAST(({key}) AS VARCHAR) IN (SELECT substr(entity_key, {len(prefix) + 1}) FROM {keys_in} "
            f"WHERE starts_with(entity_key, {lit(prefix)}))"
        )
    sql = f"SELECT {', '.join(cols)} FROM {table_sql(src.table_fqn)} WHERE {' AND '.join(conds)}"
    return sql


def extract(ctx: RunContext) -> tuple[int, int]:
    """Fill {w.entities} (eid, entity_key, table_id, record_ts, a0..ak) and {w.ident_raw}.
    Drop {w.entities} with ``drop_entities`` (it may be a view over other scratch tables).

    ``eid`` is a run-local integer id (0..n-1, no gaps) so that later stages join and
    group on integers rather than on entity_key strings. Returns (rows_in, entities).
    """
    a = ctx.adapter
    rules = active_rules(ctx)
    sources = [s for s in ctx.config.sources if s.is_active]
    ctx.exec(
        f"CREATE TABLE {ctx.w('ident_raw')} "
        "(eid BIGINT, entity_key VARCHAR, identifier_type VARCHAR, identifier_value_norm VARCHAR)"
    )
    rows_in = 0
    watermarks: dict[str, str | None] = {}
    ent_parts: list[str] = []
    ident_parts: list[str] = []
    entity_srcs: dict[str, int] = {}  # table the entity rows come from -> its identifier columns
    src_tables: list[str] = []
    # Without MATERIALIZED, DuckDB pushes the empty-value filter into the scan as a copy
    # of the canonicalization, which then runs three times per row (1M records: 1.8 s
    # instead of 0.9 s to fill ident_raw).
    ident_ctes: list[str] = []
    key_ranges: list[tuple[str, str, str]] = []
    materialized = "MATERIALIZED " if a.supports_materialized_cte else ""
    attrs = "".join(f", a{j}" for j in range(len(attribute_names(ctx))))
    for i, src in enumerate(sources):
        where: list[str] = []
        since = _since(ctx, src)
        if since is not None and src.watermark_column:
            where.append(f"{a.ident(src.watermark_column)} > {ts_lit(since)}")  # lookback covers late arrivals
        srct = ctx.w(f"src{i}")
        ctx.exec(f"CREATE TABLE {srct} AS " + source_select(ctx, src, identifiers=True, where=where))
        n, distinct, max_ts, lo, hi = a.fetchone(
            f"SELECT count(*), count(DISTINCT entity_key), max(record_ts), min(entity_key), max(entity_key) "
            f"FROM {srct}"
        ) or (0, 0, None, None, None)
        if n:  # the table's key range, for FULL's key rank (stages.key_rank); read in the same scan
            key_ranges.append((src.table_id, lo, hi))
        if distinct < n:
            # Duplicate keys: keep each key's latest record. Checked on the snapshot just
            # read because the window costs twice the read and keys are usually unique.
            src_tables.append(srct)
            srct = ctx.w(f"src{i}_latest")
            ctx.exec(f"CREATE TABLE {srct} AS SELECT * FROM {ctx.w(f'src{i}')} {LATEST}")
            n = distinct
        eid = f"CAST({rows_in} + {a.row_index_sql()} AS BIGINT)"
        rows_in += int(n)
        prev = ctx.facts["run_state"].get(src.table_id)
        newest = max([t for t in (max_ts, prev) if t is not None], default=None)
        watermarks[src.table_id] = newest.isoformat(sep=" ") if newest else None
        ent_parts.append(
            f"SELECT {eid} AS eid, entity_key, {lit(src.table_id)} AS table_id, record_ts{attrs} FROM {srct}"
        )
        maps = identifier_maps(ctx, src)
        entity_srcs[srct] = len(maps)
        for j, m in enumerate(maps):
            norm = canonical_sql(f"i{j}", rules[m.identifier_type].canonicalize)
            ident_ctes.append(f"t{i}_{j} AS {materialized}(SELECT {eid} AS eid, entity_key, {norm} AS v FROM {srct})")
            ident_parts.append(
                f"SELECT eid, entity_key, {lit(m.identifier_type)}, v FROM t{i}_{j} WHERE v IS NOT NULL AND v <> ''"
            )
        src_tables.append(srct)
    # One statement per target table: far cheaper than an INSERT per mapping.
    if ident_parts:
        ctx.exec(
            f"INSERT INTO {ctx.w('ident_raw')} WITH {', '.join(ident_ctes)} " + " UNION ALL ".join(ident_parts)
        )
    if ent_parts and a.stable_row_index:
        # A view over the per-source tables, which stay: copying their rows into one
        # table was a quarter of extraction (10M records: 4 s). Their raw identifier
        # columns are dropped (metadata only: rows keep their row numbers).
        for srct, n_ident in entity_srcs.items():
            for j in range(n_ident):
                ctx.exec(f"ALTER TABLE {srct} DROP COLUMN i{j}")
        ctx.exec(f"CREATE VIEW {ctx.w('entities')} AS " + " UNION ALL ".join(ent_parts))
        ctx.facts["entity_tables"] = list(entity_srcs)
        src_tables = [t for t in src_tables if t not in entity_srcs]
    else:
        attr_cols = "".join(f", a{j} VARCHAR" for j in range(len(attribute_names(ctx))))
        ctx.exec(
            f"CREATE TABLE {ctx.w('entities')} "
            f"(eid BIGINT, entity_key VARCHAR, table_id VARCHAR, record_ts TIMESTAMP{attr_cols})"
        )
        if ent_parts:
            ctx.exec(f"INSERT INTO {ctx.w('entities')} " + " UNION ALL ".join(ent_parts))
    for srct in src_tables:
        a.drop_table(srct)
    # One mapping per (source, type) cannot repeat an (entity, type, value): rows are
    # unique per entity key, so the identifiers stage can skip a DISTINCT.
    pairs = [(s.table_id, m.identifier_type) for s in sources for m in identifier_maps(ctx, s)]
    ctx.facts["identifiers_may_repeat"] = len(pairs) != len(set(pairs))
    # Ranges of the snapshot read: a key dropped by the latest-record window only narrows
    # the real range, so a prefix shared by the whole range is shared by what is kept.
    ctx.facts["key_ranges"] = key_ranges
    ctx.result.source_tables_processed = len(sources)
    ctx.result.watermarks = watermarks
    ctx.result.entities_processed = rows_in
    return rows_in, rows_in


def drop_entities(ctx: RunContext) -> None:
    """Drop {w.entities}: a table, or a view and the per-source tables it reads."""
    tables = ctx.facts.pop("entity_tables", None)
    if tables is None:
        ctx.drop("entities")
        return
    ctx.exec(f"DROP VIEW IF EXISTS {ctx.w('entities')}")
    for t in tables:
        ctx.adapter.drop_table(t)
