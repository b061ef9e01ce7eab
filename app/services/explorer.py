"""The cluster explorer's read that ``app.services.lookups`` (by key or resolved id, over the
engine's state) does not answer: the records holding an identifier value. Through the
public views only (``idr_out.identifiers_current``, ``identity_edges_current``, the
membership), whose names and columns stay when the engine's tables change."""

from __future__ import annotations

import re
from typing import Any

from app.core import cursor as cursors
from app.platforms.base import Adapter

_HOLDERS = (
    "SELECT entity_key, identifier_type, identifier_value_norm FROM idr_out.identifiers_current "
    "WHERE identifier_value_norm IN ({v}) "
    "UNION SELECT left_entity_key, identifier_type, identifier_value_norm FROM idr_out.identity_edges_current "
    "WHERE identifier_value_norm IN ({v}) "
    "UNION SELECT right_entity_key, identifier_type, identifier_value_norm FROM idr_out.identity_edges_current "
    "WHERE identifier_value_norm IN ({v})"
)


def value_forms(text: str) -> list[str]:
    """What a person may type for a stored (canonicalized) value: as typed, trimmed,
    lower- and upper-cased (EMAIL, LOWERCASE, UPPERCASE rules), digits only (PHONE)."""
    t = text.strip()
    forms = [text, t, t.lower(), t.upper()]
    digits = re.sub(r"[^0-9]", "", t)
    if len(digits) >= 4:
        forms.append(digits)
    return list(dict.fromkeys(f for f in forms if f))


def search_identifier(
    a: Adapter, text: str, cursor: str | None = None, limit: int = 50
) -> tuple[list[dict[str, Any]], str | None]:
    """Records holding the value, with their resolved id, by cluster then record; one page
    and the cursor of the next (None on the last)."""
    forms = value_forms(text)
    if not forms:
        return [], None
    params: dict[str, Any] = {f"v{i}": f for i, f in enumerate(forms)}
    marks = ", ".join(f"${k}" for k in params)
    after = ""
    if cursor:
        # Keyset on the sort key: (cluster, record, type, value), NULL clusters as ''.
        params.update(zip(("cr", "ce", "ct", "cv"), (str(x) for x in cursors.decode(cursor, 4)), strict=True))
        after = (
            "WHERE rid > $cr OR (rid = $cr AND (entity_key > $ce OR (entity_key = $ce AND ("
            "identifier_type > $ct OR (identifier_type = $ct AND identifier_value > $cv))))) "
        )
    rows = a.fetch_dicts(
        "SELECT entity_key, identifier_type, identifier_value, resolved_id FROM ("
        "SELECT h.entity_key, h.identifier_type, h.identifier_value_norm AS identifier_value, m.resolved_id, "
        "COALESCE(m.resolved_id, '') AS rid "
        f"FROM ({_HOLDERS.format(v=marks)}) AS h "
        "LEFT JOIN idr_out.identity_resolved_membership_current AS m ON m.entity_key = h.entity_key) AS x "
        + after
        + "ORDER BY rid, entity_key, identifier_type, identifier_value LIMIT $n",
        {**params, "n": limit + 1},
    )
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    key = [last["resolved_id"] or "", last["entity_key"], last["identifier_type"], last["identifier_value"]]
    return rows[:limit], cursors.encode(key)
