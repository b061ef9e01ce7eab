"""Erasure inside a run: the suppression list (idr_meta.erasure_suppression) keeps matching
source rows out of every run, and a run removes the stored records of erasures that have
not taken effect yet.

What is compared is a salted SHA-256 (app.services.erasures makes the same hashes from a
request): of the entity key, or of '<identifier type>:<normalized value>'. The salt is
the warehouse's own (idr_state.schema_info 'erasure_salt'), so the list holds no value a
reader could look up without it.
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

SALT_KEY = "erasure_salt"
KEY, IDENTIFIER = "KEY", "IDENTIFIER"
SUPPRESSION = "idr_meta.erasure_suppression"


def read_salt(a: Adapter) -> str | None:
    return a.scalar("SELECT info_value FROM idr_state.schema_info WHERE info_key = $k", {"k": SALT_KEY})


def read(a: Adapter) -> Suppression:
    if not a.table_exists("idr_meta", "erasure_suppression"):  # a schema `idr init` has not upgraded yet
        return Suppression()
    s = Suppression(salt=read_salt(a))
    for kind, itype in a.fetchall(f"SELECT DISTINCT match_kind, identifier_type FROM {SUPPRESSION}"):
        if kind == KEY:
            s.keys = True
        elif itype:
            s.types.add(str(itype))
    s.pending = [
        str(r[0])
        for r in a.fetchall("SELECT erasure_id FROM idr_meta.erasure_request WHERE applied_run_id IS NULL")
    ]
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


def _matches(kind: str, itype: str | None) -> str:
    where = f"match_kind = {lit(kind)}" + (f" AND identifier_type = {lit(itype)}" if itype else "")
    return f"(SELECT value_hash FROM {SUPPRESSION} WHERE {where})"


def live_conditions(ctx: RunContext, src: SourceTable) -> list[str]:
    """Conditions that keep the list's rows out of a run (a NULL hash matches nothing)."""
    return [f"coalesce({h}, '') NOT IN {_matches(kind, t)}" for kind, t, h in row_hashes(ctx, src)]


def matched_rows(ctx: RunContext, src: SourceTable, where: list[str], into: str) -> None:
    """INSERT INTO ``into``(entity_key, erasure_id): the source rows meeting ``where`` that
    the list holds, with the erasure that holds each."""
    hashes = row_hashes(ctx, src)
    if not hashes:
        return
    key = expr_sql(src.entity_key_expr, f"sources[{src.table_id}].entity_key_expr")
    cols = ", ".join(f"{h} AS h{j}" for j, (_, _, h) in enumerate(hashes))
    conds = " AND ".join([f"({key}) IS NOT NULL", *where])
    rows = ctx.w("erasure_rows")
    ctx.exec(
        f"CREATE TABLE {rows} AS SELECT {lit(src.table_id + ':')} || CAST(({key}) AS VARCHAR) AS entity_key, "
        f"{cols} FROM {table_sql(src.table_fqn)} WHERE {conds}"
    )
    parts = [
        f"SELECT r.entity_key, s.erasure_id FROM {rows} AS r JOIN {SUPPRESSION} AS s ON s.value_hash = r.h{j} "
        f"AND s.match_kind = {lit(kind)}" + (f" AND s.identifier_type = {lit(t)}" if t else "")
        for j, (kind, t, _) in enumerate(hashes)
    ]
    ctx.exec(f"INSERT INTO {into} " + " UNION ALL ".join(parts))
    ctx.adapter.drop_table(rows)


def stored_matches(ctx: RunContext, into: str) -> None:
    """INSERT INTO ``into``(entity_key, erasure_id): stored members matched by erasures that
    have not taken effect yet (INCR: their rows need not be in the delta)."""
    sup = ctx.state.suppression
    if not sup.pending or not sup.salt:
        return
    ids = ", ".join(lit(i) for i in sup.pending)
    pending = f"(SELECT * FROM {SUPPRESSION} WHERE erasure_id IN ({ids}))"
    key_hash = _hash(ctx, "e.entity_key")
    value_hash = _hash(ctx, "t.identifier_type || ':' || v.value_norm")
    ctx.exec(
        f"INSERT INTO {into} "
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
