"""Stage 1-2: read the delta of every active source and unpivot it into entities,
normalized identifiers and attribute values (run-scoped work tables).

User expressions are parsed with sqlglot and re-rendered from the parse tree; config
values enter SQL only as literals built by sqlglot.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlglot import exp

from app.config.model import Canonicalize, Rule, SourceTable
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


def extract(ctx: RunContext) -> tuple[int, int]:
    """Fill {w.entities}, {w.ident_raw}, {w.attributes}. Returns (rows_in, entities)."""
    a = ctx.adapter
    rules = active_rules(ctx)
    sources = [s for s in ctx.config.sources if s.is_active]
    ctx.exec(f"CREATE TABLE {ctx.w('entities')} (entity_key VARCHAR, table_id VARCHAR, record_ts TIMESTAMP)")
    ctx.exec(
        f"CREATE TABLE {ctx.w('ident_raw')} "
        "(entity_key VARCHAR, identifier_type VARCHAR, identifier_value_norm VARCHAR)"
    )
    ctx.exec(
        f"CREATE TABLE {ctx.w('attributes')} (entity_key VARCHAR, table_id VARCHAR, "
        "attribute_name VARCHAR, attribute_value VARCHAR, record_ts TIMESTAMP)"
    )
    rows_in = 0
    watermarks: dict[str, str | None] = {}
    ent_parts: list[str] = []
    ident_parts: list[str] = []
    attr_parts: list[str] = []
    src_tables: list[str] = []
    for i, src in enumerate(sources):
        maps = [
            m
            for m in ctx.config.identifier_mappings
            if m.table_id == src.table_id
            and m.identifier_type in rules
            and (not m.is_hashed or rules[m.identifier_type].allow_hashed)
        ]
        attrs = [m for m in ctx.config.attribute_mappings if m.table_id == src.table_id]
        key = expr_sql(ctx, src.entity_key_expr, f"sources[{src.table_id}].entity_key_expr")
        wm = a.ident(src.watermark_column) if src.watermark_column else None
        cols = [
            f"{lit(src.table_id + ':')} || CAST(({key}) AS VARCHAR) AS entity_key",
            f"CAST({wm} AS TIMESTAMP) AS record_ts" if wm else "CAST(NULL AS TIMESTAMP) AS record_ts",
        ]
        for j, m in enumerate(maps):
            e = expr_sql(ctx, m.identifier_value_expr, f"identifier_mappings[{m.table_id}].identifier_value_expr")
            cols.append(f"CAST(({e}) AS VARCHAR) AS i{j}")
        for j, m in enumerate(attrs):
            e = expr_sql(ctx, m.attribute_expr, f"attribute_mappings[{m.table_id}].attribute_expr")
            cols.append(f"CAST(({e}) AS VARCHAR) AS a{j}")
        where = [f"({key}) IS NOT NULL"]
        since = _since(ctx, src)
        if since is not None and wm:
            where.append(f"{wm} > {ts_lit(since)}")  # lookback covers late arrivals
        srct = ctx.w(f"src{i}")
        # One scan per source; duplicate keys keep their latest record.
        ctx.exec(
            f"CREATE TABLE {srct} AS SELECT {', '.join(cols)} FROM {table_sql(src.table_fqn)} "
            f"WHERE {' AND '.join(where)} "
            "QUALIFY row_number() OVER (PARTITION BY entity_key ORDER BY record_ts DESC NULLS LAST) = 1"
        )
        n, max_ts = a.fetchone(f"SELECT count(*), max(record_ts) FROM {srct}") or (0, None)
        rows_in += int(n)
        prev = ctx.facts["run_state"].get(src.table_id)
        newest = max([t for t in (max_ts, prev) if t is not None], default=None)
        watermarks[src.table_id] = newest.isoformat(sep=" ") if newest else None
        ent_parts.append(f"SELECT entity_key, {lit(src.table_id)}, record_ts FROM {srct}")
        for j, m in enumerate(maps):
            norm = canonical_sql(f"i{j}", rules[m.identifier_type].canonicalize)
            ident_parts.append(
                f"SELECT entity_key, {lit(m.identifier_type)}, v FROM "
                f"(SELECT entity_key, {norm} AS v FROM {srct} WHERE i{j} IS NOT NULL) AS t{i}_{j} "
                "WHERE v IS NOT NULL AND v <> ''"
            )
        for j, m in enumerate(attrs):
            attr_parts.append(
                f"SELECT entity_key, {lit(src.table_id)}, {lit(m.attribute_name)}, a{j}, record_ts "
                f"FROM {srct} WHERE a{j} IS NOT NULL"
            )
        src_tables.append(srct)
    # One statement per target table: far cheaper than an INSERT per mapping.
    for table, parts in (("entities", ent_parts), ("ident_raw", ident_parts), ("attributes", attr_parts)):
        if parts:
            ctx.exec(f"INSERT INTO {ctx.w(table)} " + " UNION ALL ".join(parts))
    for srct in src_tables:
        a.drop_table(srct)
    ctx.result.source_tables_processed = len(sources)
    ctx.result.watermarks = watermarks
    entities = ctx.count(ctx.w("entities"))
    ctx.result.entities_processed = entities
    return rows_in, entities
