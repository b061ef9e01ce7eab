"""Erasure inside a run: the suppression list (idr_meta.erasure_suppression) keeps matching
source rows out of every run, and a run removes the stored records of erasures that have
not taken effect yet.

What is compared is a salted SHA-256 (app.services.erasures makes the same hashes from a
request): of the entity key, or of '<identifier type>:<normalized value>'. The salt is
the warehouse's own (idr_state.schema_info 'erasure_salt'), so the list holds no value a
reader could look up without it.

An erasure stays in force while a source still holds a row it matched: those rows are
its holds (idr_meta.erasure_holds: a salted hash of the row's entity key and its
source). A row leaves the holds when its source deletes it -- flags it deleted, or a
reconciliation or FULL run no longer finds its key -- or re-sends it without the erased
value. Once an erasure that held rows holds none, the run lifts it: its hashes leave the
suppression list and a new row with the value resolves normally (decision 0008).
"""

from __future__ import annotations

from app.config.model import SourceTable
from app.pipeline.context import RunContext
from app.pipeline.extract import (
    active_rules,
    canonical_sql,
    expr_sql,
    identifier_maps,
    lit,
    table_sql,
)
from app.pipeline.state import Suppression
from app.platforms.base import Adapter
from app.platforms.changes import ChangeSet

SALT_KEY = "erasure_salt"
KEY, IDENTIFIER = "KEY", "IDENTIFIER"
SUPPRESSION = "idr_meta.erasure_suppression"
HOLDS = "idr_meta.erasure_holds"


def read_salt(a: Adapter) -> str | None:
    return a.scalar("SELECT info_value FROM idr_state.schema_info WHERE info_key = $k", {"k": SALT_KEY})


def read(a: Adapter) -> Suppression:
    """The salt, the suppressed kinds, the open erasures and whether any holds a row: one
    read after the catalog call (each was a round trip on a warehouse)."""
    cols = a.columns("idr_meta", "erasure_request")
    if not cols:  # a schema `idr init` has not upgraded yet
        return Suppression()
    # Lifting came with idr_meta.erasure_holds (the same `idr init`).
    s = Suppression(tracked="lifted_run_id" in cols)
    lifted = " WHERE lifted_at IS NULL" if s.tracked else ""
    none = "CAST(NULL AS VARCHAR)"
    arms = [
        f"SELECT 0 AS k, info_value AS a, {none} AS b FROM idr_state.schema_info WHERE info_key = $salt",
        f"SELECT DISTINCT 1 AS k, match_kind AS a, identifier_type AS b FROM {SUPPRESSION}",
        f"SELECT 2 AS k, erasure_id AS a, CAST(applied_run_id AS VARCHAR) AS b FROM idr_meta.erasure_request{lifted}",
    ]
    if s.tracked:
        arms.append(
            f"SELECT 3 AS k, CAST(count(*) AS VARCHAR) AS a, {none} AS b FROM (SELECT 1 FROM {HOLDS} LIMIT 1) AS t"
        )
    for k, value, other in a.fetchall(" UNION ALL ".join(arms), {"salt": SALT_KEY}):
        k = int(k)
        if k == 0:
            s.salt = value
        elif k == 1:
            if value == KEY:
                s.keys = True
            elif other:
                s.types.add(str(other))
        elif k == 2:
            (s.in_force if other else s.pending).append(str(value))
        else:
            s.holding = bool(s.tracked and int(value or 0))
    s.holding = s.holding and bool(s.in_force)
    return s


def _hash(ctx: RunContext, expr: str) -> str:
    return ctx.adapter.sha256_hex_sql(f"{lit(ctx.state.suppression.salt or '')} || {expr}")


def row_hashes(ctx: RunContext, src: SourceTable) -> list[tuple[str, str | None, str]]:
    """(match_kind, identifier_type, SQL of the row's hash) for every hash of a source row
    the list may hold: its key, and each mapped identifier of a suppressed type."""
    sup = ctx.state.suppression
    if not sup.active:
        return []
    out: list[tuple[str, str | None, str]] = []
    if sup.keys:
        key = expr_sql(src.entity_key_expr, f"sources[{src.table_id}].entity_key_expr")
        out.append((KEY, None, _hash(ctx, f"{lit(src.table_id + ':')} || CAST(({key}) AS VARCHAR)")))
    rules = active_rules(ctx)
    for m in identifier_maps(ctx, src):
        if m.identifier_type not in sup.types:
            continue
        e = expr_sql(m.identifier_value_expr, f"identifier_mappings[{m.table_id}].identifier_value_expr")
        norm = canonical_sql(f"CAST(({e}) AS VARCHAR)", rules[m.identifier_type].canonicalize)
        out.append((IDENTIFIER, m.identifier_type, _hash(ctx, f"{lit(m.identifier_type + ':')} || {norm}")))
    return out


def _key_hash(ctx: RunContext, entity_key: str) -> str:
    """The hash a hold stores: of the entity key ('<table_id>:<key>'), like a KEY entry."""
    return _hash(ctx, entity_key)


def scratch(ctx: RunContext) -> None:
    """While an erasure is in force or taking effect: {w.erasure_keys}(table_id, key_hash,
    deleted), the keys this INCR saw at their source (the delta's rows, deleted = flagged;
    held keys a reconciliation no longer finds), and {w.erasure_hold}(erasure_id,
    table_id, key_hash), the rows each erasure holds now."""
    if not _lifting(ctx):
        return
    ctx.exec(f"CREATE TABLE {ctx.w('erasure_keys')} (table_id VARCHAR, key_hash VARCHAR, deleted BOOLEAN)")
    ctx.exec(f"CREATE TABLE {ctx.w('erasure_hold')} (erasure_id VARCHAR, table_id VARCHAR, key_hash VARCHAR)")


def _lifting(ctx: RunContext) -> bool:
    """Holds and lifts are kept: the schema has them, and an erasure is in force or pending."""
    sup = ctx.state.suppression
    return sup.tracked and bool(sup.in_force or sup.pending)


def _tracking(ctx: RunContext) -> bool:
    """... and the suppression list has entries (runs match rows against it)."""
    return _lifting(ctx) and ctx.state.suppression.active


def _matches(kind: str, itype: str | None) -> str:
    where = f"match_kind = {lit(kind)}" + (f" AND identifier_type = {lit(itype)}" if itype else "")
    return f"(SELECT value_hash FROM {SUPPRESSION} WHERE {where})"


def live_conditions(ctx: RunContext, src: SourceTable) -> list[str]:
    """Conditions that keep the list's rows out of a run (a NULL hash matches nothing)."""
    return [f"coalesce({h}, '') NOT IN {_matches(kind, t)}" for kind, t, h in row_hashes(ctx, src)]


def matched_rows(ctx: RunContext, src: SourceTable, where: list[str], into: str) -> None:
    """INSERT INTO ``into``(entity_key, erasure_id): the source rows meeting ``where`` that
    the list holds, with the erasure that holds each. The rows a source holds live (not
    flagged deleted) become holds; an INCR also records every row it read (erasure_keys)."""
    from app.pipeline.extract import deleted_sql

    hashes = row_hashes(ctx, src)
    if not hashes:
        return
    key = expr_sql(src.entity_key_expr, f"sources[{src.table_id}].entity_key_expr")
    cols = ", ".join(f"{h} AS h{j}" for j, (_, _, h) in enumerate(hashes))
    conds = " AND ".join([f"({key}) IS NOT NULL", *where])
    flag = deleted_sql(src) or "FALSE"
    rows = ctx.w("erasure_rows")
    ctx.exec(
        f"CREATE TABLE {rows} AS SELECT {lit(src.table_id + ':')} || CAST(({key}) AS VARCHAR) AS entity_key, "
        f"{flag} AS deleted, {cols} FROM {table_sql(src.table_fqn)} WHERE {conds}"
    )
    parts = [
        f"SELECT r.entity_key, s.erasure_id, r.deleted FROM {rows} AS r JOIN {SUPPRESSION} AS s "
        f"ON s.value_hash = r.h{j} AND s.match_kind = {lit(kind)}" + (f" AND s.identifier_type = {lit(t)}" if t else "")
        for j, (kind, t, _) in enumerate(hashes)
    ]
    found = " UNION ALL ".join(parts)
    ctx.exec(f"INSERT INTO {into} SELECT entity_key, erasure_id FROM ({found}) AS f")
    if _tracking(ctx):
        table = lit(src.table_id)
        ctx.exec(
            f"INSERT INTO {ctx.w('erasure_hold')} SELECT DISTINCT erasure_id, {table}, "
            f"{_key_hash(ctx, 'entity_key')} FROM ({found}) AS f WHERE NOT deleted"
        )
        if not ctx.full:  # FULL replaces every hold: it reads every row
            ctx.exec(
                f"INSERT INTO {ctx.w('erasure_keys')} SELECT DISTINCT {table}, {_key_hash(ctx, 'entity_key')}, "
                f"deleted FROM {rows}"
            )
    ctx.adapter.drop_table(rows)


def reconciled_holds(ctx: RunContext, src: SourceTable) -> None:
    """INCR reconciling ``src``, after the holds of this run are known: held keys of the
    source (held before, or by an erasure taking effect now) that it no longer holds -- no
    row, or only rows flagged deleted -- leave their holds. Suppressed rows still count:
    the source holds them."""
    from app.pipeline.extract import deleted_sql

    sup = ctx.state.suppression
    if not _tracking(ctx) or not (sup.holding or sup.pending):
        return
    key = expr_sql(src.entity_key_expr, f"sources[{src.table_id}].entity_key_expr")
    flag = deleted_sql(src)
    conds = " AND ".join([f"({key}) IS NOT NULL", *([f"NOT {flag}"] if flag else [])])
    current = _key_hash(ctx, f"{lit(src.table_id + ':')} || CAST(({key}) AS VARCHAR)")
    table = lit(src.table_id)
    ctx.exec(
        f"INSERT INTO {ctx.w('erasure_keys')} SELECT DISTINCT table_id, key_hash, TRUE FROM "
        f"(SELECT table_id, key_hash FROM {HOLDS} UNION ALL SELECT table_id, key_hash FROM {ctx.w('erasure_hold')}) "
        f"AS h WHERE h.table_id = {table} "
        f"AND h.key_hash NOT IN (SELECT {current} FROM {table_sql(src.table_fqn)} WHERE {conds})"
    )


def stored_matches(ctx: RunContext, into: str) -> None:
    """INSERT INTO ``into``(entity_key, erasure_id): stored members matched by erasures that
    have not taken effect yet (INCR: their rows need not be in the delta). Their rows are
    held unless this run read them (what it read decides)."""
    sup = ctx.state.suppression
    if not sup.pending or not sup.salt:
        return
    ids = ", ".join(lit(i) for i in sup.pending)
    pending = f"(SELECT * FROM {SUPPRESSION} WHERE erasure_id IN ({ids}))"
    key_hash = _hash(ctx, "e.entity_key")
    value_hash = _hash(ctx, "t.identifier_type || ':' || v.value_norm")
    stored = ctx.w("erasure_stored")
    ctx.exec(
        f"CREATE TABLE {stored} AS "
        f"SELECT e.entity_key, s.erasure_id FROM idr_state.entities AS e JOIN {pending} AS s "
        f"ON s.match_kind = {lit(KEY)} AND s.value_hash = {key_hash} WHERE e.rid IS NOT NULL "
        "UNION ALL "
        "SELECT e.entity_key, s.erasure_id FROM idr_state.identifier_values AS v "
        "JOIN idr_state.identifier_types AS t ON t.type_no = v.type_no "
        f"JOIN {pending} AS s ON s.match_kind = {lit(IDENTIFIER)} AND s.identifier_type = t.identifier_type "
        f"AND s.value_hash = {value_hash} "
        "JOIN (SELECT vid, anchor_eid AS eid FROM idr_state.identifier_values WHERE holders = 1 "
        "      UNION ALL SELECT vid, eid FROM idr_state.value_holders) AS h ON h.vid = v.vid "
        "JOIN idr_state.entities AS e ON e.eid = h.eid WHERE e.rid IS NOT NULL"
    )
    ctx.exec(f"INSERT INTO {into} SELECT entity_key, erasure_id FROM {stored}")
    if _tracking(ctx):
        from app.pipeline.extract import active_sources

        table = (
            "CASE "
            + " ".join(
                f"WHEN starts_with(entity_key, {lit(s.table_id + ':')}) THEN {lit(s.table_id)}"
                for s in active_sources(ctx)
            )
            + " ELSE '' END"
        )
        keys = ctx.w("erasure_keys")
        ctx.exec(
            f"INSERT INTO {ctx.w('erasure_hold')} SELECT DISTINCT erasure_id, {table}, kh FROM "
            f"(SELECT erasure_id, entity_key, {_key_hash(ctx, 'entity_key')} AS kh FROM {stored}) AS m "
            f"WHERE kh NOT IN (SELECT key_hash FROM {keys})"
        )
    ctx.adapter.drop_table(stored)


def lifts(ctx: RunContext) -> None:
    """Step erasure_lifts: the erasures this run lifts -- in force (or taking effect now),
    holding no row once this run's holds are written, and having held or matched one
    (this run, before it, or -- for an erasure recorded before holds were, which a FULL
    run alone can judge -- any earlier run). An erasure that never matched a row stays:
    the row it names may still arrive."""
    sup = ctx.state.suppression
    if not _lifting(ctx):
        return
    keys, hold = ctx.w("erasure_keys"), ctx.w("erasure_hold")
    if ctx.full:
        before = f"SELECT erasure_id, 1 AS b, 0 AS n FROM {HOLDS}"
        now = f"SELECT DISTINCT erasure_id, key_hash FROM {hold}"
    else:
        before = (
            f"SELECT h.erasure_id, 1 AS b, CASE WHEN k.key_hash IS NULL THEN 1 ELSE 0 END AS n FROM {HOLDS} AS h "
            f"LEFT JOIN (SELECT DISTINCT key_hash FROM (SELECT key_hash FROM {keys} UNION ALL "
            f"SELECT key_hash FROM {hold}) AS u) AS k ON k.key_hash = h.key_hash"
        )
        now = (
            f"SELECT DISTINCT erasure_id, key_hash FROM {hold} "
            f"WHERE key_hash NOT IN (SELECT key_hash FROM {keys} WHERE deleted)"
        )
    counts = {
        str(e): (int(b or 0), int(n or 0))
        for e, b, n in ctx.adapter.fetchall(
            f"SELECT erasure_id, sum(b), sum(n) FROM ({before} UNION ALL SELECT erasure_id, 0, 1 FROM ({now}) AS x) "
            "AS t GROUP BY erasure_id"
        )
    }
    matched_before: set[str] = set()
    if ctx.full:
        matched_before = {
            str(r[0])
            for r in ctx.adapter.fetchall(
                "SELECT erasure_id FROM idr_out.erasure_runs GROUP BY erasure_id "
                "HAVING sum(entities_removed + rows_suppressed) > 0"
            )
        }
    out = []
    for e in sorted({*sup.in_force, *sup.pending}):
        held_before, held_now = counts.get(e, (0, 0))
        seen = ctx.state.erasure_counts.get(e, (0, 0))[1] > 0
        if held_now == 0 and (held_before > 0 or seen or e in matched_before):
            out.append(e)
    ctx.state.erasures_lifted = out


def publish_holds(ctx: RunContext, changes: ChangeSet) -> None:
    """Inside publish: the holds this run saw replace those of the keys it read (FULL: all),
    and the erasures it lifts leave the suppression list: writes of the publish's change set."""
    a = changes
    if _lifting(ctx):
        keys, hold = ctx.w("erasure_keys"), ctx.w("erasure_hold")
        if ctx.full:
            a.execute(f"DELETE FROM {HOLDS}")
            a.execute(f"INSERT INTO {HOLDS} (erasure_id, table_id, key_hash) SELECT DISTINCT * FROM {hold}")
        else:
            a.execute(
                f"DELETE FROM {HOLDS} WHERE key_hash IN "
                f"(SELECT key_hash FROM {keys} UNION ALL SELECT key_hash FROM {hold})"
            )
            a.execute(
                f"INSERT INTO {HOLDS} (erasure_id, table_id, key_hash) SELECT DISTINCT erasure_id, table_id, key_hash "
                f"FROM {hold} WHERE key_hash NOT IN (SELECT key_hash FROM {keys} WHERE deleted)"
            )
    for e in ctx.state.erasures_lifted:
        p = {"e": e, "r": ctx.run_id, "now": ctx.now}
        a.execute(
            "UPDATE idr_meta.erasure_request SET lifted_run_id = $r, lifted_at = $now "
            "WHERE erasure_id = $e AND lifted_at IS NULL",
            p,
        )
        a.execute(f"DELETE FROM {SUPPRESSION} WHERE erasure_id = $e", p)
        a.execute(f"DELETE FROM {HOLDS} WHERE erasure_id = $e", p)
    ctx.result.erasures_lifted = list(ctx.state.erasures_lifted)
