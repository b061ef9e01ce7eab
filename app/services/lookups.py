"""Entity and cluster lookups, and "why are these two records linked?"."""

from __future__ import annotations

from collections import deque
from typing import Any

from app.core.errors import NotFoundError
from app.platforms.base import Adapter

_MEMBER = "SELECT resolved_id FROM idr_out.identity_resolved_membership_current WHERE entity_key = $k"


def _golden(a: Adapter, resolved_id: str) -> list[dict[str, Any]]:
    return a.fetch_dicts(
        "SELECT attribute_name, attribute_value, source_entity_key, source_table_id, strategy "
        "FROM idr_out.golden_profile_current WHERE resolved_id = $r ORDER BY attribute_name",
        {"r": resolved_id},
    )


def _size(a: Adapter, resolved_id: str) -> int:
    return int(
        a.scalar(
            "SELECT cluster_size FROM idr_out.identity_clusters_current WHERE resolved_id = $r", {"r": resolved_id}
        )
        or 0
    )


def entity(a: Adapter, entity_key: str) -> dict[str, Any]:
    rid = a.scalar(_MEMBER, {"k": entity_key})
    if rid is None:
        raise NotFoundError(f"entity {entity_key!r} is not in the resolved membership", field="entity_key")
    return {
        "entity_key": entity_key,
        "resolved_id": rid,
        "cluster_size": _size(a, rid),
        "golden_profile": _golden(a, rid),
    }


def cluster(a: Adapter, resolved_id: str, cursor: str | None, limit: int) -> dict[str, Any]:
    """Members page by entity_key; each edge is listed once, on the page of its left record."""
    size = a.scalar(
        "SELECT cluster_size FROM idr_out.identity_clusters_current WHERE resolved_id = $r", {"r": resolved_id}
    )
    if size is None:
        raise NotFoundError(f"cluster {resolved_id!r} not found", field="resolved_id")
    members = [
        r[0]
        for r in a.fetchall(
            "SELECT entity_key FROM idr_out.identity_resolved_membership_current WHERE resolved_id = $r "
            "AND ($c IS NULL OR entity_key > $c) ORDER BY entity_key LIMIT $n",
            {"r": resolved_id, "c": cursor, "n": limit + 1},
        )
    ]
    nxt = members[limit - 1] if len(members) > limit else None
    members = members[:limit]
    edges: list[dict[str, Any]] = []
    if members:
        lo, hi = members[0], members[-1]
        edges = a.fetch_dicts(
            "SELECT e.rule_id, e.left_entity_key, e.right_entity_key, e.identifier_type, e.identifier_value_norm, "
            "e.first_seen_ts, e.last_seen_ts FROM idr_out.identity_edges_current AS e "
            "JOIN idr_out.identity_resolved_membership_current AS m ON m.entity_key = e.left_entity_key "
            "WHERE m.resolved_id = $r AND e.left_entity_key >= $lo AND e.left_entity_key <= $hi "
            "ORDER BY e.left_entity_key, e.right_entity_key, e.identifier_type",
            {"r": resolved_id, "lo": lo, "hi": hi},
        )
    return {
        "resolved_id": resolved_id,
        "cluster_size": int(size),
        "golden_profile": _golden(a, resolved_id) if cursor is None else [],
        "members": members,
        "edges": edges,
        "next_cursor": nxt,
    }


def explain(a: Adapter, from_key: str, to_key: str) -> dict[str, Any]:
    """Shortest chain of records from ``from_key`` to ``to_key`` and the identifiers each
    consecutive pair shares, over the cluster's edges.

    Edges are stored as stars (each member of an identifier group links to the group's
    smallest key), so the search runs on records and identifier values together: two
    records holding the same value are one hop apart, whichever star edge recorded it.
    """
    rid_a = a.scalar(_MEMBER, {"k": from_key})
    if rid_a is None:
        raise NotFoundError(f"entity {from_key!r} is not in the resolved membership", field="entity_key")
    rid_b = a.scalar(_MEMBER, {"k": to_key})
    if rid_b is None:
        raise NotFoundError(f"entity {to_key!r} is not in the resolved membership", field="to")
    if rid_a != rid_b:
        raise NotFoundError(f"{from_key!r} ({rid_a}) and {to_key!r} ({rid_b}) are not in one cluster", field="to")
    if from_key == to_key:
        return {"from": from_key, "to": to_key, "resolved_id": rid_a, "hops": 0, "path": [from_key], "links": []}
    rows = a.fetchall(
        "SELECT e.left_entity_key, e.right_entity_key, e.identifier_type, e.identifier_value_norm, e.rule_id "
        "FROM idr_out.identity_edges_current AS e JOIN idr_out.identity_resolved_membership_current AS m "
        "ON m.entity_key = e.left_entity_key WHERE m.resolved_id = $r",
        {"r": rid_a},
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
    return {"from": from_key, "to": to_key, "resolved_id": rid_a, "hops": len(path) - 1, "path": path, "links": links}
