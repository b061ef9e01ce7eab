"""Stage extract_entities and the identifier rows: read each active source's delta once,
give every record its entity id (eid) from the entity dictionary, and unpivot its
identifiers, normalized.

User expressions are parsed with sqlglot and re-rendered from the parse tree; config
values enter SQL only as literals built by sqlglot.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlglot import exp

from app.config.model import Canonicalize, IdentifierMapping, Rule, SourceTable
from app.config.validate import validate_expression
from app.core.errors import PipelineError
from app.pipeline.context import RunContext

STAGE = "extract_entities"


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


def expr_sql(expr: str, field: str) -> str:
    try:
        return validate_expression(expr, None).sql(dialect="duckdb")
    except Exception as e:  # a stored expression that no longer parses
        raise PipelineError(f"{field}: {e}", stage=STAGE) from e


def active_rules(ctx: RunContext) -> dict[str, Rule]:
    return {r.identifier_type: r for r in ctx.config.rules if r.is_active}


def type_numbers(ctx: RunContext) -> dict[str, int]:
    """Identifier type -> its number in the state (idr_state.identifier_types; a type
    keeps its number for good, new types get the next ones)."""
    if ctx.state.type_numbers is None:
        stored = {
            str(t): int(n)
            for n, t in ctx.adapter.fetchall("SELECT type_no, identifier_type FROM idr_state.identifier_types")
        }
        nxt = max(stored.values(), default=-1) + 1
        for t in sorted(active_rules(ctx)):
            if t not in stored:
                stored[t] = nxt
                nxt += 1
        ctx.state.type_numbers = stored
    return ctx.state.type_numbers


def active_sources(ctx: RunContext) -> list[SourceTable]:
    return [s for s in ctx.config.sources if s.is_active]


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


def _since(ctx: RunContext, src: SourceTable) -> datetime | None:
    if ctx.full or not src.watermark_column:
        return None
    last = ctx.state.watermarks_before.get(src.table_id)
    if last is None:
        return None
    return last - timedelta(minutes=src.watermark_lookback_minutes or 0)


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
    key = expr_sql(src.entity_key_expr, f"sources[{src.table_id}].entity_key_expr")
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
            e = expr_sql(m.attribute_expr, f"attribute_mappings[{m.table_id}].attribute_expr")
            cols.append(f"CAST(({e}) AS VARCHAR) AS a{j}")
    if identifiers:
        for j, m in enumerate(identifier_maps(ctx, src)):
            e = expr_sql(m.identifier_value_expr, f"identifier_mappings[{m.table_id}].identifier_value_expr")
            cols.append(f"CAST(({e}) AS VARCHAR) AS i{j}")
    conds = [f"({key}) IS NOT NULL", *where]
    if keys_in:
        # Matched on the key itself: the listed keys of this table, prefix cut off, rather
        # than building every source row's entity_key.
        prefix = src.table_id + ":"
        conds.append(
            f"CAST(({key}) AS VARCHAR) IN (SELECT substr(entity_key, {len(prefix) + 1}) FROM {keys_in} "
            f"WHERE starts_with(entity_key, {lit(prefix)}))"
        )
    return f"SELECT {', '.join(cols)} FROM {table_sql(src.table_fqn)} WHERE {' AND '.join(conds)}"


def deleted_sql(src: SourceTable) -> str | None:
    """The source's deletion flag as a boolean SQL condition (NULL = not deleted)."""
    if not src.deleted_flag_expr:
        return None
    flag = expr_sql(src.deleted_flag_expr, f"sources[{src.table_id}].deleted_flag_expr")
    return f"coalesce(CAST(({flag}) AS BOOLEAN), FALSE)"


def live_conditions(ctx: RunContext, src: SourceTable) -> list[str]:
    """Conditions a source row must meet to be resolved at all: not flagged deleted, not
    on the erasure suppression list."""
    from app.pipeline import erasure

    flag = deleted_sql(src)
    return ([f"NOT {flag}"] if flag else []) + erasure.live_conditions(ctx, src)


def _srow(ctx: RunContext) -> str:
    """A source scratch table's row number, 0..n-1 (keys are unique in it)."""
    return ctx.adapter.row_index_sql()


def read_sources(ctx: RunContext) -> None:
    """Step read_sources: one scratch table per active source (``src<i>``) with the rows of
    this run (FULL: all; INCR: watermark newer than the last run's minus the lookback),
    each key once (its latest record). Records the watermarks the run will publish."""
    a = ctx.adapter
    st = ctx.state
    rows_in = 0
    watermarks: dict[str, str | None] = {}
    sources = active_sources(ctx)
    for i, src in enumerate(sources):
        where: list[str] = live_conditions(ctx, src)
        since = _since(ctx, src)
        if since is not None and src.watermark_column:
            where.append(f"{a.ident(src.watermark_column)} > {ts_lit(since)}")  # lookback covers late arrivals
        select = source_select(ctx, src, identifiers=True, where=where)
        srct = ctx.w(f"src{i}")
        if ctx.kind.fresh:
            # Stored in key order: a first run numbers entities by their place, so eid order
            # is entity_key order and "the smallest key" is the smallest eid.
            a.create_table_ordered(srct, select, "entity_key")
        else:
            ctx.exec(f"CREATE TABLE {srct} AS {select}")
    # Every snapshot's figures in one read (a round trip on a warehouse). Distinct key
    # hashes where the platform has a cheap one: equal keys hash alike, so no duplicate is
    # missed; a collision only sends the source through the (exact) deduplication below.
    distinct_of = a.key_hash_sql("entity_key") or "entity_key"
    stats = {
        int(r[0]): r[1:]
        for r in a.fetchall(
            " UNION ALL ".join(
                f"SELECT {i} AS sno, count(*) AS n, count(DISTINCT {distinct_of}) AS d, max(record_ts) AS ts, "
                f"min(entity_key) AS lo, max(entity_key) AS hi FROM {ctx.w(f'src{i}')}"
                for i in range(len(sources))
            )
        )
    } if sources else {}
    for i, src in enumerate(sources):
        srct = ctx.w(f"src{i}")
        n, distinct, max_ts, lo, hi = stats.get(i) or (0, 0, None, None, None)
        n, distinct = int(n or 0), int(distinct or 0)
        rows_in += n
        if distinct < n:
            # Duplicate keys (or a hash collision): keep each key's latest record. Checked
            # on the snapshot just read because the window costs twice the read and keys
            # are usually unique.
            latest = ctx.w(f"src{i}_latest")
            if ctx.kind.fresh:
                a.create_table_ordered(latest, f"SELECT * FROM {srct} {LATEST}", "entity_key")
            else:
                ctx.exec(f"CREATE TABLE {latest} AS SELECT * FROM {srct} {LATEST}")
            a.drop_table(srct)
            a.execute(f"ALTER TABLE {latest} RENAME TO {a.ident(f'{ctx.tag}_src{i}')}")
        st.source_tables.append(srct)
        if distinct:
            st.key_ranges.append((src.table_id, lo, hi))
        prev = st.watermarks_before.get(src.table_id)
        newest = max([t for t in (max_ts, prev) if t is not None], default=None)
        watermarks[src.table_id] = newest.isoformat(sep=" ") if newest else None
    pairs = [(s.table_id, m.identifier_type) for s in active_sources(ctx) for m in identifier_maps(ctx, s)]
    st.identifiers_may_repeat = len(pairs) != len(set(pairs))
    ctx.result.source_tables_processed = len(active_sources(ctx))
    ctx.result.watermarks = watermarks
    st.count(STAGE, rows_in=rows_in)


def _keys_sql(ctx: RunContext) -> str:
    return " UNION ALL ".join(
        f"SELECT entity_key, {i} AS sno, {_srow(ctx)} AS srow FROM {t}" for i, t in enumerate(ctx.state.source_tables)
    )


def entity_ids(ctx: RunContext) -> None:
    """Step entity_ids: {w.ent_ids}(entity_key, sno, srow, eid, is_new, old_rid, old_ts).

    A key in the dictionary keeps its eid; new keys are numbered after the last eid in
    entity_key order. A fresh state (no entity stored yet) numbers every record by its
    place in its source instead: no sort, no join (see entity_rows)."""
    st = ctx.state
    if ctx.kind.fresh:
        offsets = _fresh_offsets(ctx)
        parts = [
            f"SELECT entity_key, {i} AS sno, {_srow(ctx)} AS srow, {st.next_eid + offsets[i]} + {_srow(ctx)} AS eid, "
            "TRUE AS is_new, CAST(NULL AS BIGINT) AS old_rid, CAST(NULL AS TIMESTAMP) AS old_ts "
            f"FROM {t}"
            for i, t in enumerate(st.source_tables)
        ]
        ctx.exec(f"CREATE VIEW {ctx.w('ent_ids')} AS " + " UNION ALL ".join(parts))
    else:
        ctx.exec(
            f"CREATE TABLE {ctx.w('ent_ids')} AS "
            "SELECT k.entity_key, k.sno, k.srow, "
            "coalesce(s.eid, $next - 1 + row_number() OVER (PARTITION BY s.eid IS NULL ORDER BY k.entity_key)) AS eid, "
            "s.eid IS NULL AS is_new, s.rid AS old_rid, s.updated_ts AS old_ts "
            f"FROM ({_keys_sql(ctx)}) AS k LEFT JOIN idr_state.entities AS s ON s.entity_key = k.entity_key",
            {"next": st.next_eid},
        )
    n, new = ctx.adapter.fetchone(f"SELECT count(*), count(*) FILTER (WHERE is_new) FROM {ctx.w('ent_ids')}") or (0, 0)
    st.new_entities = int(new or 0)
    ctx.result.entities_processed = int(n or 0)
    st.count(STAGE, rows_out=int(n or 0))


def _fresh_offsets(ctx: RunContext) -> list[int]:
    """Each source's first eid on a first run: sources in the order of their keys (a table's
    keys all start with its table_id and ':', and table ids hold no ':', so one table's keys
    never interleave with another's), each numbered in key order within."""
    if ctx.state.fresh_offsets:
        return ctx.state.fresh_offsets
    sources = active_sources(ctx)
    order = sorted(range(len(sources)), key=lambda i: (sources[i].table_id + ":").encode())
    # One read for every source's count (a round trip each on a warehouse).
    counts = ctx.scalars({f"n{i}": f"SELECT count(*) FROM {t}" for i, t in enumerate(ctx.state.source_tables)})
    offsets, total = [0] * len(sources), 0
    for i in order:
        offsets[i] = total
        total += counts[f"n{i}"]
    ctx.state.fresh_offsets = offsets
    return offsets


def _fresh_entity_rows(ctx: RunContext, offset: int, table: str) -> str:
    return f"SELECT {ctx.state.next_eid + offset} + {_srow(ctx)} AS eid, s.* FROM {table} AS s"


def entity_rows(ctx: RunContext) -> None:
    """Step entity_rows: per source ``src<i>e`` = its rows with their eid, and the view
    {w.entities}(eid, entity_key, table_id, record_ts, a0..) over them."""
    st = ctx.state
    tables = []
    offsets = _fresh_offsets(ctx) if ctx.kind.fresh else []
    for i, t in enumerate(st.source_tables):
        out = ctx.w(f"src{i}e")
        if ctx.kind.fresh:  # a view: the eid is the record's place, computed where it is read
            ctx.exec(f"CREATE VIEW {out} AS {_fresh_entity_rows(ctx, offsets[i], t)}")
        else:
            ctx.exec(
                f"CREATE TABLE {out} AS SELECT i.eid, s.* FROM (SELECT {_srow(ctx)} AS srow, * FROM {t}) AS s "
                f"JOIN {ctx.w('ent_ids')} AS i ON i.sno = {i} AND i.srow = s.srow"
            )
        tables.append(out)
    st.entity_tables = tables
    _entities_view(ctx, attributes=True)


def _entities_view(ctx: RunContext, *, attributes: bool) -> None:
    """{w.entities}: the union of the sources' entity rows (with their attributes or not)."""
    attrs = "".join(f", s.a{j}" for j in range(len(attribute_names(ctx)))) if attributes else ""
    parts = [
        f"SELECT s.eid, s.entity_key, {lit(src.table_id)} AS table_id, s.record_ts{attrs} FROM {t} AS s"
        for src, t in zip(active_sources(ctx), ctx.state.entity_tables, strict=True)
    ]
    if parts:
        ctx.exec(f"CREATE VIEW {ctx.w('entities')} AS " + " UNION ALL ".join(parts))
    else:
        n = len(attribute_names(ctx)) if attributes else 0
        cols = "".join(f", CAST(NULL AS VARCHAR) AS a{j}" for j in range(n))
        ctx.exec(
            f"CREATE VIEW {ctx.w('entities')} AS SELECT CAST(NULL AS BIGINT) AS eid, "
            "CAST(NULL AS VARCHAR) AS entity_key, "
            f"CAST(NULL AS VARCHAR) AS table_id, CAST(NULL AS TIMESTAMP) AS record_ts{cols} WHERE FALSE"
        )


def identifier_rows(ctx: RunContext) -> None:
    """Step identifier_rows: {w.ident_raw}(eid, type_no, value_norm), every non-empty
    normalized identifier of the run's records."""
    rules = active_rules(ctx)
    numbers = type_numbers(ctx)
    staging = ctx.adapter.strategies.staging
    ctes, parts = [], []
    for i, (src, t) in enumerate(zip(active_sources(ctx), ctx.state.entity_tables, strict=True)):
        for j, m in enumerate(identifier_maps(ctx, src)):
            norm = canonical_sql(f"i{j}", rules[m.identifier_type].canonicalize)
            # Computed once: the empty-value filter below must not repeat the canonicalization.
            ctes.append(staging.computed_once(f"t{i}_{j}", f"SELECT eid, {norm} AS v FROM {t}"))
            parts.append(
                f"SELECT eid, {numbers[m.identifier_type]} AS type_no, v AS value_norm FROM t{i}_{j} "
                "WHERE v IS NOT NULL AND v <> ''"
            )
    ctx.exec(f"CREATE TABLE {ctx.w('ident_raw')} (eid BIGINT, type_no INTEGER, value_norm VARCHAR)")
    if parts:
        ctx.exec(f"INSERT INTO {ctx.w('ident_raw')} WITH {', '.join(ctes)} " + " UNION ALL ".join(parts))
    _release_identifier_columns(ctx)


# Why a key is in {w.gone}; the smallest number wins when several apply.
REASON_NO = {"erasure": 0, "soft_delete": 1, "reconciliation": 2}


def key_select(ctx: RunContext, src: SourceTable, where: list[str]) -> str:
    """``entity_key, record_ts`` of the source rows meeting ``where``."""
    key = expr_sql(src.entity_key_expr, f"sources[{src.table_id}].entity_key_expr")
    wm = ctx.adapter.ident(src.watermark_column) if src.watermark_column else None
    ts = f"CAST({wm} AS TIMESTAMP)" if wm else "CAST(NULL AS TIMESTAMP)"
    conds = " AND ".join([f"({key}) IS NOT NULL", *where])
    return (
        f"SELECT {lit(src.table_id + ':')} || CAST(({key}) AS VARCHAR) AS entity_key, {ts} AS record_ts "
        f"FROM {table_sql(src.table_fqn)} WHERE {conds}"
    )


def reconcile_due(ctx: RunContext, src: SourceTable) -> bool:
    """INCR compares this source's keys with the stored ones now (reconcile_deletes)."""
    from app.core.vocabulary import reconcile_interval_minutes

    every = reconcile_interval_minutes(src.reconcile_deletes)
    if every is None or ctx.full:
        return False
    last = ctx.state.reconciled_before.get(src.table_id)
    return every == 0 or last is None or ctx.now - last >= timedelta(minutes=every)


def deletions(ctx: RunContext) -> None:
    """Step deletions: {w.gone}(entity_key, reason_no), keys this run removes, by reason:
    rows the erasure suppression list holds ({w.gone_erasure}: with their erasure; INCR
    also the stored members of erasures not applied yet), rows of the delta the source
    flags deleted (deleted_flag_expr) and, for the sources
    whose reconcile_deletes is due (INCR), stored keys the source no longer holds. A key
    that also has a live row in the delta stays. Flagged rows move the watermark on."""
    from app.pipeline import erasure

    a = ctx.adapter
    gone, erased = ctx.w("gone"), ctx.w("gone_erasure")
    ctx.exec(f"CREATE TABLE {gone} (entity_key VARCHAR, reason_no INTEGER)")
    ctx.exec(f"CREATE TABLE {erased} (entity_key VARCHAR, erasure_id VARCHAR)")
    erasure.scratch(ctx)
    st = ctx.state
    flagged_srcs: list[tuple[int, SourceTable]] = []
    for i, src in enumerate(active_sources(ctx)):
        live = st.source_tables[i]
        since = _since(ctx, src)
        delta = [f"{a.ident(src.watermark_column)} > {ts_lit(since)}"] if since and src.watermark_column else []
        erasure.matched_rows(ctx, src, delta, erased)
        flag = deleted_sql(src)
        if flag:
            where = [flag, *delta]
            flagged = ctx.w(f"flagged{i}")
            ctx.exec(f"CREATE TABLE {flagged} AS {key_select(ctx, src, where)}")
            ctx.exec(
                f"INSERT INTO {gone} SELECT DISTINCT entity_key, {REASON_NO['soft_delete']} FROM {flagged} "
                f"WHERE entity_key NOT IN (SELECT entity_key FROM {live})"
            )
            flagged_srcs.append((i, src))
        if reconcile_due(ctx, src):
            prefix = src.table_id + ":"
            current = key_select(ctx, src, live_conditions(ctx, src))
            ctx.exec(
                f"INSERT INTO {gone} SELECT e.entity_key, {REASON_NO['reconciliation']} "
                "FROM idr_state.entities AS e "
                f"WHERE e.rid IS NOT NULL AND starts_with(e.entity_key, {lit(prefix)}) "
                f"AND e.entity_key NOT IN (SELECT entity_key FROM ({current}) AS c)"
            )
            st.reconciled.append(src.table_id)
    if flagged_srcs:  # every source's newest flagged row in one read (a round trip each on a warehouse)
        reads = " UNION ALL ".join(
            f"SELECT {i} AS i, max(record_ts) AS ts FROM {ctx.w(f'flagged{i}')}" for i, _ in flagged_srcs
        )
        newest_of = {int(i): ts for i, ts in a.fetchall(reads)}
        for i, src in flagged_srcs:
            ctx.drop(f"flagged{i}")
            newest = newest_of.get(i)
            old = ctx.result.watermarks.get(src.table_id)
            if newest is not None and (old is None or newest > datetime.fromisoformat(old)):
                ctx.result.watermarks[src.table_id] = newest.isoformat(sep=" ")
    if not ctx.full:  # (FULL reads every row: the source scan found them)
        erasure.stored_matches(ctx, erased)
        for src in active_sources(ctx):
            if src.table_id in st.reconciled:
                erasure.reconciled_holds(ctx, src)
    ctx.exec(f"INSERT INTO {gone} SELECT DISTINCT entity_key, {REASON_NO['erasure']} FROM {erased}")
    if ctx.full:  # FULL compares every key anyway
        st.reconciled = [s.table_id for s in active_sources(ctx)]


def _release_identifier_columns(ctx: RunContext) -> None:
    """The raw identifier columns are read once, just above: where dropping them frees
    their memory (DuckDB), the grouping that follows gets it."""
    release_source_columns(ctx, lambda src: [f"i{j}" for j in range(len(identifier_maps(ctx, src)))])


def release_attribute_columns(ctx: RunContext) -> None:
    """Once the golden profile has copied the attributes, drop them from the sources'
    copies where that frees their memory; {w.entities} loses them."""
    names = attribute_names(ctx)
    if names and release_source_columns(ctx, lambda src: [f"a{j}" for j in range(len(names))]):
        ctx.adapter.drop_relation(ctx.w("entities"), view=True)
        _entities_view(ctx, attributes=False)


def release_source_columns(ctx: RunContext, columns: Callable[[SourceTable], list[str]]) -> bool:
    """Drop ``columns(source)`` from each source's entity rows where the platform frees
    them at once; True when it did."""
    st = ctx.state
    offsets = _fresh_offsets(ctx) if ctx.kind.fresh else []
    released = False
    for i, src in enumerate(active_sources(ctx)):
        cols = columns(src)
        # A first run's entity rows are views over the source copies; otherwise tables.
        table = st.source_tables[i] if ctx.kind.fresh else st.entity_tables[i]
        if not cols or not ctx.adapter.release_columns(table, cols):
            continue
        released = True
        if ctx.kind.fresh:  # the view's columns changed: bind it again
            ctx.adapter.drop_relation(st.entity_tables[i], view=True)
            ctx.exec(f"CREATE VIEW {st.entity_tables[i]} AS {_fresh_entity_rows(ctx, offsets[i], table)}")
    return released
