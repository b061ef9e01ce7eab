"""Entity and cluster lookups, and "why are these two records linked?".

Read straight from the integer state (idr_state), not through the public views: a key
is found in the entity dictionary (stored in key order, so DuckDB reads one row group),
everything else by number.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from app.core.errors import LimitExceededError, NotFoundError
from app.core.vocabulary import format_resolved_id, parse_resolved_id
from app.platforms.base import Adapter
from app.schema import entity_lookup

_CONFIDENCE = ("confidence_score", "edge_diversity", "match_density", "primary_reason")


_CLUSTER = ("cluster_size", *_CONFIDENCE)


def _member(a: Adapter, entity_key: str, field: str) -> int:
    """The resolved id of a key."""
    found = entity_lookup.find(a, entity_key)
    if found is None or found[1] is None:
        raise NotFoundError(f"entity {entity_key!r} is not in the resolved membership", field=field)
    return found[1]


def _member_cluster(a: Adapter, entity_key: str) -> tuple[int, dict[str, Any] | None]:
    """The resolved id of a key and its cluster's row, read together."""
    found = entity_lookup.find(a, entity_key, _CLUSTER)
    if found is None or found[1] is None:
        raise NotFoundError(f"entity {entity_key!r} is not in the resolved membership", field="entity_key")
    _, rid, *cluster = found
    return rid, (dict(zip(_CLUSTER, cluster, strict=True)) if cluster[0] is not None else None)


def _cluster_row(a: Adapter, rid: int) -> dict[str, Any] | None:
    rows = a.fetch_dicts(
        "SELECT cluster_size, confidence_score, edge_diversity, match_density, primary_reason "
        "FROM idr_state.clusters WHERE rid = $r",
        {"r": rid},
    )
    return rows[0] if rows else None


def _confidence(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: row[k] for k in _CONFIDENCE}


def _keys(a: Adapter, eids: list[int]) -> dict[int, str]:
    if not eids:
        return {}
    params = {f"e{i}": e for i, e in enumerate(eids)}
    marks = ", ".join(f"$e{i}" for i in range(len(eids)))
    return {
        int(e): k
        for e, k in a.fetchall(f"SELECT eid, entity_key FROM idr_state.entities WHERE eid IN ({marks})", params)
    }


def golden(a: Adapter, rid: int) -> list[dict[str, Any]]:
    cols = a.fetchall(
        "SELECT attribute_name, column_no, strategy FROM idr_state.golden_columns WHERE active ORDER BY attribute_name"
    )
    if not cols:
        return []
    sel = ", ".join(f"v{int(k)}, e{int(k)}" for _, k, _ in cols)
    row = a.fetchone(f"SELECT {sel} FROM idr_state.golden WHERE rid = $r", {"r": rid})
    if row is None:
        return []
    keys = _keys(a, sorted({int(e) for e in row[1::2] if e is not None}))
    out = []
    for i, (name, _, strategy) in enumerate(cols):
        value, eid = row[2 * i], row[2 * i + 1]
        if eid is None:
            continue
        key = keys.get(int(eid))
        out.append(
            {
                "attribute_name": name,
                "attribute_value": value,
                "source_entity_key": key,
                "source_table_id": key.split(":", 1)[0] if key else None,
                "strategy": strategy,
            }
        )
    return out


def entity(a: Adapter, entity_key: str) -> dict[str, Any]:
    rid, c = _member_cluster(a, entity_key)
    return {
        "entity_key": entity_key,
        "resolved_id": format_resolved_id(rid),
        "cluster_size": int(c["cluster_size"]) if c else 0,
        "confidence": _confidence(c),
        "golden_profile": golden(a, rid),
    }


def _rid(resolved_id: str) -> int:
    rid = parse_resolved_id(resolved_id)
    if rid is None:
        raise NotFoundError(
            f"cluster {resolved_id!r} not found (resolved ids look like R00000000042)", field="resolved_id"
        )
    return rid


_EDGES = (
    "SELECT t.rule_id, a.entity_key AS left_entity_key, e.entity_key AS right_entity_key, t.identifier_type, "
    "v.value_norm AS identifier_value_norm, h.first_seen_ts, v.updated_ts AS last_seen_ts "
    "FROM idr_state.identifier_values AS v "
    "JOIN idr_state.value_holders AS h ON h.vid = v.vid AND h.eid <> v.anchor_eid "
    "JOIN idr_state.identifier_types AS t ON t.type_no = v.type_no "
    "JOIN idr_state.entities AS a ON a.eid = v.anchor_eid "
    "JOIN idr_state.entities AS e ON e.eid = h.eid "
    "WHERE v.linked AND v.anchor_eid IN ({anchors})"
)


def cluster(a: Adapter, resolved_id: str, cursor: str | None, limit: int) -> dict[str, Any]:
    """Members page by entity_key; each edge is listed once, on the page of its left record."""
    rid = _rid(resolved_id)
    c = _cluster_row(a, rid)
    if c is None:
        raise NotFoundError(f"cluster {resolved_id!r} not found", field="resolved_id")
    rows = a.fetchall(
        "SELECT eid, entity_key FROM idr_state.entities WHERE rid = $r AND ($c IS NULL OR entity_key > $c) "
        "ORDER BY entity_key LIMIT $n",
        {"r": rid, "c": cursor, "n": limit + 1},
    )
    nxt = rows[limit - 1][1] if len(rows) > limit else None
    rows = rows[:limit]
    edges: list[dict[str, Any]] = []
    if rows:
        params = {f"e{i}": int(e) for i, (e, _) in enumerate(rows)}
        edges = a.fetch_dicts(
            _EDGES.format(anchors=", ".join(f"${k}" for k in params))
            + " ORDER BY left_entity_key, right_entity_key, t.identifier_type",
            params,
        )
    return {
        "resolved_id": format_resolved_id(rid),
        "cluster_size": int(c["cluster_size"]),
        "confidence": _confidence(c),
        "golden_profile": golden(a, rid) if cursor is None else [],
        "members": [k for _, k in rows],
        "edges": edges,
        "next_cursor": nxt,
    }


# As in app.core.settings (explain_max_edges); the CLI and the console pass theirs.
EXPLAIN_MAX_EDGES = 200_000


def explain(a: Adapter, from_key: str, to_key: str, max_edges: int = EXPLAIN_MAX_EDGES) -> dict[str, Any]:
    """Shortest chain of records from ``from_key`` to ``to_key`` and the identifiers each
    consecutive pair shares, over the cluster's edges.

    Edges are stored as stars (each holder of a value links to the value's anchor), so
    the search runs on records and identifier values together: two records holding the
    same value are one hop apart, whichever star edge recorded it. The search holds the
    cluster's edges in memory: a cluster with more than ``max_edges`` is refused (422)
    after reading at most one edge more, rather than loaded.
    """
    rid_a = _member(a, from_key, "entity_key")
    rid_b = _member(a, to_key, "to")
    ra, rb = format_resolved_id(rid_a), format_resolved_id(rid_b)
    if rid_a != rid_b:
        raise NotFoundError(f"{from_key!r} ({ra}) and {to_key!r} ({rb}) are not in one cluster", field="to")
    if from_key == to_key:
        return {"from": from_key, "to": to_key, "resolved_id": ra, "hops": 0, "path": [from_key], "links": []}
    rows = a.fetchall(
        "SELECT a.entity_key, e.entity_key, t.identifier_type, v.value_norm, t.rule_id "
        "FROM idr_state.identifier_values AS v "
        "JOIN idr_state.value_holders AS h ON h.vid = v.vid AND h.eid <> v.anchor_eid "
        "JOIN idr_state.identifier_types AS t ON t.type_no = v.type_no "
        "JOIN idr_state.entities AS a ON a.eid = v.anchor_eid "
        "JOIN idr_state.entities AS e ON e.eid = h.eid "
        f"WHERE v.linked AND a.rid = $r LIMIT {int(max_edges) + 1}",
        {"r": rid_a},
    )
    if len(rows) > max_edges:
        raise LimitExceededError(
            f"cluster {ra} has more than {max_edges} identifier edges, the most explain searches "
            f"(IDR_EXPLAIN_MAX_EDGES); page through its members with GET /v1/clusters/{ra} instead",
            field="entity_key",
        )
    # Bipartite graph: record <-> (identifier_type, value).
    by_entity: dict[str, set[tuple[str, str]]] = {}
    by_value: dict[tuple[str, str], set[str]] = {}
    rule_of: dict[tuple[str, str], str] = {}
    for left, right, itype, value, rule in rows:
        ident = (itype, value)
        rule_of[ident] = rule
        for k in (left, right):
            by_entity.setdefault(k, set()).add(ident)
            by_value.setdefault(ident, set()).add(k)
    prev: dict[str, tuple[str, tuple[str, str]] | None] = {from_key: None}
    queue = deque([from_key])
    while queue and to_key not in prev:
        cur = queue.popleft()
        for ident in sorted(by_entity.get(cur, ())):
            for nxt in sorted(by_value[ident]):
                if nxt not in prev:
                    prev[nxt] = (cur, ident)
                    queue.append(nxt)
    if to_key not in prev:  # cannot happen for a consistent state; say so rather than invent a path
        raise NotFoundError(f"no chain of edges links {from_key!r} and {to_key!r}", field="to")
    path = [to_key]
    while prev[path[-1]] is not None:
        path.append(prev[path[-1]][0])  # type: ignore[index]
    path.reverse()
    links = []
    for x, y in zip(path, path[1:], strict=False):
        shared = sorted(by_entity.get(x, set()) & by_entity.get(y, set()))
        links.append(
            {
                "from": x,
                "to": y,
                "shared_identifiers": [
                    {"identifier_type": t, "identifier_value": v, "rule_id": rule_of.get((t, v))} for t, v in shared
                ],
            }
        )
    return {"from": from_key, "to": to_key, "resolved_id": ra, "hops": len(path) - 1, "path": path, "links": links}


def cluster_summary(a: Adapter, resolved_id: str, top: int = 10) -> dict[str, Any]:
    """What links a cluster too large to draw: its links (star edges) per identifier type,
    the values held by most of its records, and its records per source table. A linked
    value's anchor and holders are all in one cluster, so its values are those anchored on
    a member, and each value's holder count is its number of records."""
    rid = _rid(resolved_id)
    if _cluster_row(a, rid) is None:
        raise NotFoundError(f"cluster {resolved_id!r} not found", field="resolved_id")
    values = (
        "SELECT t.identifier_type, v.value_norm, v.holders FROM idr_state.identifier_values AS v "
        "JOIN idr_state.identifier_types AS t ON t.type_no = v.type_no "
        "WHERE v.linked AND v.anchor_eid IN (SELECT eid FROM idr_state.entities WHERE rid = $r)"
    )
    by_type = a.fetch_dicts(
        f"SELECT identifier_type, sum(holders - 1) AS links, count(*) AS dist_values FROM ({values}) AS x "
        "GROUP BY identifier_type ORDER BY links DESC, identifier_type",
        {"r": rid},
    )
    hubs = a.fetch_dicts(
        f"SELECT identifier_type, value_norm AS identifier_value, holders AS records FROM ({values}) AS x "
        "ORDER BY records DESC, identifier_type, identifier_value LIMIT $n",
        {"r": rid, "n": top},
    )
    tables = a.fetch_dicts(
        "SELECT substr(entity_key, 1, strpos(entity_key, ':') - 1) AS table_id, count(*) AS records "
        "FROM idr_state.entities WHERE rid = $r GROUP BY table_id ORDER BY records DESC, table_id",
        {"r": rid},
    )
    return {"by_type": by_type, "hubs": hubs, "tables": tables}
