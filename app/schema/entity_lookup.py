"""idr_state.entity_lookup: the entity dictionary by a hash of the key, in hash order, kept
on platforms whose adapter gives a hash (``Adapter.key_hash_sql``). The publish
transaction adds the new keys of a run; a key's row never changes (eids are not reused)."""

from __future__ import annotations

from app.platforms.base import Adapter


def write(adapter: Adapter, select_eid_key: str) -> None:
    """Add the (eid, entity_key) rows of ``select_eid_key``."""
    h = adapter.key_hash_sql("s.entity_key")
    if h is None:
        return
    adapter.insert_ordered(
        "idr_state.entity_lookup", f"SELECT {h} AS key_hash, s.eid FROM ({select_eid_key}) AS s", "key_hash"
    )


def fill_if_missing(adapter: Adapter) -> bool:
    """Fill the lookup of a state written before it existed; True when it did."""
    if adapter.key_hash_sql("x") is None:
        return False
    if adapter.scalar("SELECT count(*) FROM (SELECT 1 FROM idr_state.entity_lookup LIMIT 1) AS t"):
        return False
    if not adapter.scalar("SELECT count(*) FROM (SELECT 1 FROM idr_state.entities LIMIT 1) AS t"):
        return False
    write(adapter, "SELECT eid, entity_key FROM idr_state.entities")
    return True


def find(adapter: Adapter, entity_key: str) -> tuple[int, int | None] | None:
    """(eid, rid) of a key, or None when the dictionary does not hold it."""
    h = adapter.key_hash_sql("$k")
    if h is None:
        row = adapter.fetchone("SELECT eid, rid FROM idr_state.entities WHERE entity_key = $k", {"k": entity_key})
        return None if row is None else (int(row[0]), None if row[1] is None else int(row[1]))
    eids = [
        int(r[0])
        for r in adapter.fetchall(f"SELECT eid FROM idr_state.entity_lookup WHERE key_hash = {h}", {"k": entity_key})
    ]
    if not eids:
        return None
    # By eid (the dictionary's order): the stored key confirms the hash's match.
    marks = ", ".join(f"$e{i}" for i in range(len(eids)))
    for eid, rid, key in adapter.fetchall(
        f"SELECT eid, rid, entity_key FROM idr_state.entities WHERE eid IN ({marks})",
        {f"e{i}": e for i, e in enumerate(eids)},
    ):
        if key == entity_key:
            return int(eid), None if rid is None else int(rid)
    return None
