"""Dry-run review as a person reads it: merges and splits as units, and one of them opened.

Reads only the dry-run result tables (``idr_out.dry_run_*``), the configuration and the
source tables, never the engine's internal state. A *merge* is a proposed cluster that
combines members of two or more current clusters; a *split* a current cluster whose
members land in two or more proposed clusters (the same definitions as the change types).
Lists are keyset-paginated with an opaque cursor, sorted on the server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from sqlalchemy import select

from app.config.model import IdrConfig
from app.config.store import read_config
from app.config.validate import validate_expression
from app.core import cursor as cursors
from app.core.errors import IdrError, NotFoundError
from app.db.models import Run
from app.pipeline import dryrun
from app.pipeline.extract import canonical_sql, lit, table_sql
from app.platforms.base import Adapter
from app.services.dry_runs import _target as dry_run_target
from app.services.runtime import Runtime
from app.services.warehouse import warehouse

Kind = Literal["MERGE", "SPLIT"]
KINDS: tuple[str, ...] = get_args(Kind)
SORTS = {
    "size": "largest cluster first",
    "parts": "most clusters involved first",
    "records": "most records changing first",
    "id": "by cluster id",
}
# Records shown per side of an opened merge or split (the page says how many more there are).
RECORDS_PER_GROUP = 40
# Columns (clusters on the other side) per page of an opened merge or split.
COLUMNS_PER_PAGE = 6
NO_CLUSTER = "-"

_FLOWS = (
    "SELECT current_resolved_id AS cur, proposed_resolved_id AS pro, COALESCE(members, members_moved) AS n, "
    "current_cluster_size AS cur_size, proposed_cluster_size AS pro_size "
    "FROM idr_out.dry_run_cluster_changes WHERE run_id = $r"
)
# One row per merge and per split. size: the largest cluster involved (a merge's proposed
# cluster, a split's current one); records: how many records change cluster with it.
_UNITS = f"""WITH f AS ({_FLOWS}),
units AS (
    SELECT 'MERGE' AS kind, pro AS cluster_id, count(cur) AS parts, max(pro_size) AS size,
           sum(COALESCE(cur_size, 0)) AS size_before, max(pro_size) AS size_after,
           sum(CASE WHEN cur IS NULL THEN n ELSE 0 END) AS new_records,
           sum(n) - max(CASE WHEN cur = pro THEN n ELSE 0 END) AS records
    FROM f WHERE pro IS NOT NULL GROUP BY pro HAVING count(cur) >= 2
    UNION ALL
    SELECT 'SPLIT', cur, count(pro), max(cur_size),
           max(cur_size), max(pro_size),
           0,
           sum(n) - max(CASE WHEN cur = pro THEN n ELSE 0 END)
    FROM f WHERE cur IS NOT NULL GROUP BY cur HAVING count(pro) >= 2
)"""


def target_of(rt: Runtime, run_id: str) -> str:
    return dry_run_target(rt, run_id)


def unit_counts(a: Adapter, run_id: str) -> dict[str, int]:
    rows = a.fetchall(_UNITS + " SELECT kind, count(*) FROM units GROUP BY kind", {"r": run_id})
    out = dict.fromkeys(KINDS, 0)
    out.update({k: int(n) for k, n in rows})
    return out


def page_units(
    a: Adapter,
    run_id: str,
    *,
    kind: Kind | None = None,
    sort: str = "size",
    cursor: str | None = None,
    limit: int = 25,
) -> tuple[list[dict[str, Any]], str | None]:
    """Merges and splits, ``sort`` descending (``id``: ascending), then by cluster id."""
    if sort not in SORTS:
        raise IdrError(f"sort must be one of {', '.join(SORTS)}", field="sort")
    if kind is not None and kind not in KINDS:
        raise IdrError(f"kind must be one of {', '.join(KINDS)}", field="kind")
    dryrun.get_summary(a, run_id)  # 404 for unknown runs, deleted results
    key = "CAST(0 AS BIGINT)" if sort == "id" else sort
    params: dict[str, Any] = {"r": run_id, "n": limit + 1}
    where = []
    if kind:
        where.append("kind = $kind")
        params["kind"] = kind
    if cursor:
        s, c, k = cursors.decode(cursor, 3)
        params.update(cs=int(s), cc=str(c), ck=str(k))
        where.append(f"({key} < $cs OR ({key} = $cs AND (cluster_id > $cc OR (cluster_id = $cc AND kind > $ck))))")
    rows = a.fetch_dicts(
        _UNITS
        + f" SELECT kind, cluster_id, parts, size, size_before, size_after, new_records, records, {key} AS sort_key "
        + "FROM units"
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY {key} DESC, cluster_id, kind LIMIT $n",
        params,
    )
    nxt = None
    if len(rows) > limit:
        last = rows[limit - 1]
        nxt = cursors.encode([int(last["sort_key"]), last["cluster_id"], last["kind"]])
        rows = rows[:limit]
    _attach_parts(a, run_id, rows)
    return rows, nxt


def _attach_parts(a: Adapter, run_id: str, rows: list[dict[str, Any]], shown: int = 4) -> None:
    """Each unit's other side: a merge's current clusters, a split's proposed ones."""
    merges = [r["cluster_id"] for r in rows if r["kind"] == "MERGE"]
    splits = [r["cluster_id"] for r in rows if r["kind"] == "SPLIT"]
    if not rows:
        return
    params: dict[str, Any] = {"r": run_id}
    conds = []
    if merges:
        params.update({f"m{i}": v for i, v in enumerate(merges)})
        conds.append("pro IN (" + ", ".join(f"$m{i}" for i in range(len(merges))) + ")")
    if splits:
        params.update({f"s{i}": v for i, v in enumerate(splits)})
        conds.append("cur IN (" + ", ".join(f"$s{i}" for i in range(len(splits))) + ")")
    flows = a.fetch_dicts(f"SELECT * FROM ({_FLOWS}) AS f WHERE " + " OR ".join(conds), params)
    for r in rows:
        if r["kind"] == "MERGE":
            parts = [
                {"id": f["cur"], "size": f["cur_size"], "records": f["n"]} for f in flows if f["pro"] == r["cluster_id"]
            ]
        else:
            parts = [
                {"id": f["pro"], "size": f["pro_size"], "records": f["n"]} for f in flows if f["cur"] == r["cluster_id"]
            ]
        parts.sort(key=lambda p: (p["id"] is None, -int(p["records"] or 0), p["id"] or ""))
        r["parts_shown"] = parts[:shown]
        r["parts_more"] = max(0, len(parts) - shown)


# ----------------------------------------------------------------------------- one unit opened
@dataclass
class Record:
    entity_key: str
    change_type: str
    current_resolved_id: str | None
    proposed_resolved_id: str | None
    identifiers: list[dict[str, Any]] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)
    found: bool = False  # in a source table now


@dataclass
class Group:
    cluster_id: str | None  # the other side's cluster; None: new records (merge) / removed (split)
    size: int | None
    records_total: int
    records: list[Record] = field(default_factory=list)
    after: str | None = None  # the records shown follow this entity key (a later page of the column)
    next_after: str | None = None  # more records follow: the key to continue after

    @property
    def column(self) -> str:
        """How a URL names this column (``-``: new or removed records)."""
        return self.cluster_id or NO_CLUSTER


@dataclass
class Unit:
    run_id: str
    kind: Kind
    cluster_id: str
    size_before: int
    size_after: int
    groups: list[Group]  # the columns shown
    # (identifier_type, value) -> the groups whose records hold it, for values held in 2+ groups
    links: list[dict[str, Any]]
    attribute_names: list[str]
    columns_total: int = 0
    columns_from: int = 0  # position of the first column shown among all of them
    one_column: bool = False  # a later page of one column's records


def _records(
    a: Adapter, run_id: str, kind: Kind, cluster_id: str, ids: list[str | None], after: str | None
) -> list[Record]:
    """Up to RECORDS_PER_GROUP + 1 records of each listed column (``ids``: the other side's
    cluster ids, None for new/removed records), by entity key, after ``after`` if given."""
    mine, other = (
        ("proposed_resolved_id", "current_resolved_id")
        if kind == "MERGE"
        else ("current_resolved_id", "proposed_resolved_id")
    )
    params: dict[str, Any] = {"r": run_id, "c": cluster_id}
    named = [i for i in ids if i is not None]
    params.update({f"g{i}": g for i, g in enumerate(named)})
    conds = [f"{other} IN ({', '.join(f'$g{i}' for i in range(len(named)))})"] if named else []
    if None in ids:
        conds.append(f"{other} IS NULL")
    where = f"run_id = $r AND {mine} = $c AND ({' OR '.join(conds) or 'FALSE'})"
    if after is not None:
        where += " AND entity_key > $after"
        params["after"] = after
    rows = a.fetch_dicts(
        "SELECT entity_key, change_type, current_resolved_id, proposed_resolved_id FROM ("
        f"SELECT *, row_number() OVER (PARTITION BY {other} ORDER BY entity_key) AS rn "
        f"FROM idr_out.dry_run_results WHERE {where}) AS x "
        f"WHERE rn <= {RECORDS_PER_GROUP + 1} ORDER BY entity_key",
        params,
    )
    return [Record(**r) for r in rows]


def unit(
    a: Adapter,
    run_id: str,
    kind: Kind,
    cluster_id: str,
    *,
    columns_from: int = 0,
    column: str | None = None,
    after: str | None = None,
) -> Unit:
    """A merge (``cluster_id`` proposed) or a split (``cluster_id`` current) with its records
    side by side, one column per cluster on the other side, and the identifiers that link
    records of different columns (read from the sources as they are now).

    Paginated both ways: COLUMNS_PER_PAGE columns from ``columns_from``, RECORDS_PER_GROUP
    records each; or, with ``column`` (a column's cluster id, ``-`` for new/removed records)
    and ``after``, that column's records after that entity key, its shared identifiers
    still found against the first records of the columns shown beside it."""
    dryrun.get_summary(a, run_id)
    mine, other = ("pro", "cur") if kind == "MERGE" else ("cur", "pro")
    flows = a.fetch_dicts(
        f"SELECT * FROM ({_FLOWS}) AS f WHERE {mine} = $c ORDER BY n DESC, {other}", {"r": run_id, "c": cluster_id}
    )
    if len([f for f in flows if f[other] is not None]) < 2:
        what = "merge into proposed" if kind == "MERGE" else "split of current"
        raise NotFoundError(f"dry run {run_id} has no {what} cluster {cluster_id!r}", field="cluster_id")
    ordered = sorted(
        (
            Group(
                cluster_id=f[other],
                size=f["cur_size"] if kind == "MERGE" else f["pro_size"],
                records_total=int(f["n"] or 0),
            )
            for f in flows
        ),
        key=lambda g: (g.cluster_id is None, -g.records_total, g.cluster_id or ""),
    )
    if column is not None:
        idx = next((i for i, g in enumerate(ordered) if g.column == column), None)
        if idx is None:
            raise NotFoundError(f"{cluster_id} has no column {column!r} in dry run {run_id}", field="column")
        columns_from = idx - idx % COLUMNS_PER_PAGE
    if columns_from < 0 or (columns_from and columns_from >= len(ordered)):
        raise IdrError(f"columns_from must be between 0 and {len(ordered) - 1}", field="columns_from")
    shown = ordered[columns_from : columns_from + COLUMNS_PER_PAGE]
    by_id = {g.cluster_id: g for g in shown}
    records = _records(a, run_id, kind, cluster_id, [g.cluster_id for g in shown], None)
    later: list[Record] = []
    if column is not None:
        later = _records(a, run_id, kind, cluster_id, [by_id_key(column)], after)
    cfg = read_config(a)
    read_records(a, cfg, records + later, run_id)

    def gid(rec: Record) -> str | None:
        return rec.current_resolved_id if kind == "MERGE" else rec.proposed_resolved_id

    for rec in records:
        g = by_id[gid(rec)]
        if len(g.records) < RECORDS_PER_GROUP:
            g.records.append(rec)
        else:
            g.next_after = g.records[-1].entity_key
    holders: dict[tuple[str, str], set[str | None]] = {}
    for rec in records + later:
        for ident in rec.identifiers:
            if ident["links"]:
                holders.setdefault((ident["identifier_type"], ident["value"]), set()).add(gid(rec))
    shared = {k for k, gs in holders.items() if len(gs) > 1}
    for rec in records + later:
        for ident in rec.identifiers:
            ident["shared"] = (ident["identifier_type"], ident["value"]) in shared
    links = [
        {"identifier_type": t, "value": v, "groups": sorted(holders[(t, v)], key=lambda x: (x is None, x or ""))}
        for t, v in sorted(shared)
    ]
    if column is not None:
        g = by_id[by_id_key(column)]
        g.records, g.after, g.next_after = later[:RECORDS_PER_GROUP], after, None
        if len(later) > RECORDS_PER_GROUP:
            g.next_after = later[RECORDS_PER_GROUP - 1].entity_key
        shown = [g]
    size_after = int(flows[0]["pro_size"] or 0) if kind == "MERGE" else max(int(f["pro_size"] or 0) for f in flows)
    return Unit(
        run_id=run_id,
        kind=kind,
        cluster_id=cluster_id,
        size_before=(
            sum(int(f["cur_size"] or 0) for f in flows if f["cur"] is not None)
            if kind == "MERGE"
            else int(flows[0]["cur_size"] or 0)
        ),
        size_after=size_after,
        groups=shown,
        links=links,
        attribute_names=sorted({m.attribute_name for m in cfg.attribute_mappings}),
        columns_total=len(ordered),
        columns_from=columns_from,
        one_column=column is not None,
    )


def by_id_key(column: str) -> str | None:
    """A column's cluster id from its URL name."""
    return None if column == NO_CLUSTER else column


def _expr(expr: str) -> str:
    return validate_expression(expr, None).sql(dialect="duckdb")


def read_records(a: Adapter, cfg: IdrConfig, records: list[Record], run_id: str | None = None) -> None:
    """Fill each record's identifiers (canonicalized as the rules say, marked when the
    exclusion list or a too-large group keeps them from linking) and mapped attributes
    from its source table's latest row."""
    by_table: dict[str, list[Record]] = {}
    for rec in records:
        table, _, _ = rec.entity_key.partition(":")
        by_table.setdefault(table, []).append(rec)
    rules = {r.identifier_type: r for r in cfg.rules if r.is_active}
    skipped: set[tuple[str, str]] = set()
    if run_id is not None:
        skipped = {
            (t, v)
            for t, v in a.fetchall(
                "SELECT identifier_type, identifier_value_norm FROM idr_out.skipped_identifier_groups "
                "WHERE run_id = $r",
                {"r": run_id},
            )
        }
    for src in cfg.sources:
        recs = by_table.get(src.table_id)
        if not recs or not src.is_active:
            continue
        key = _expr(src.entity_key_expr)
        cols = [f"CAST(({key}) AS VARCHAR) AS k"]
        cols.append(
            f"CAST({a.ident(src.watermark_column)} AS TIMESTAMP) AS ts" if src.watermark_column else "NULL AS ts"
        )
        idents = []
        for m in cfg.identifier_mappings:
            rule = rules.get(m.identifier_type)
            if m.table_id != src.table_id or rule is None or (m.is_hashed and not rule.allow_hashed):
                continue
            value = canonical_sql(f"CAST(({_expr(m.identifier_value_expr)}) AS VARCHAR)", rule.canonicalize)
            excluded = []
            for x in cfg.exclusions:
                if x.identifier_type != m.identifier_type:
                    continue
                if str(x.match_type) == "LIKE":
                    excluded.append(f"({value}) LIKE {lit(x.identifier_value_pattern)}")
                else:  # EXACT patterns are canonicalized like the values
                    excluded.append(f"({value}) = {canonical_sql(lit(x.identifier_value_pattern), rule.canonicalize)}")
            j = len(idents)
            cols.append(f"{value} AS i{j}")
            cols.append(f"COALESCE({' OR '.join(excluded)}, FALSE) AS x{j}" if excluded else f"FALSE AS x{j}")
            idents.append(m.identifier_type)
        attrs = []
        for m in cfg.attribute_mappings:
            if m.table_id == src.table_id:
                cols.append(f"CAST(({_expr(m.attribute_expr)}) AS VARCHAR) AS a{len(attrs)}")
                attrs.append(m.attribute_name)
        prefix = src.table_id + ":"
        wanted = {r.entity_key[len(prefix) :]: r for r in recs}
        params = {f"k{i}": k for i, k in enumerate(wanted)}
        rows = a.fetch_dicts(
            f"SELECT {', '.join(cols)} FROM {table_sql(src.table_fqn)} "
            f"WHERE CAST(({key}) AS VARCHAR) IN ({', '.join(f'${p}' for p in params)}) "
            "ORDER BY ts DESC NULLS LAST",
            params,
        )
        seen: set[str] = set()
        for row in rows:
            rec = wanted.get(row["k"])
            if rec is None or row["k"] in seen:  # keep each key's latest row, as a run does
                continue
            seen.add(row["k"])
            rec.found = True
            for j, itype in enumerate(idents):
                v = row[f"i{j}"]
                if v is None or v == "":
                    continue
                why = "excluded" if row[f"x{j}"] else "group too large" if (itype, v) in skipped else None
                rec.identifiers.append({"identifier_type": itype, "value": v, "links": why is None, "why_not": why})
            for j, name in enumerate(attrs):
                if row[f"a{j}"] is not None:
                    rec.attributes[name] = row[f"a{j}"]
            rec.identifiers.sort(key=lambda i: (i["identifier_type"], i["value"]))


# ----------------------------------------------------------------------------- state DB
def applied_by(rt: Runtime, run_id: str) -> list[Run]:
    """Runs that applied (or are applying) this dry run, newest first."""
    with rt.session() as s:
        return list(s.scalars(select(Run).where(Run.apply_of == run_id).order_by(Run.created_at.desc())))


def open_review(rt: Runtime, run_id: str):
    return warehouse(rt.settings, target_of(rt, run_id))
