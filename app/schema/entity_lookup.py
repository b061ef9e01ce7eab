"""idr_state.entity_lookup: the entity dictionary by a hash of the key, in hash order, kept
on platforms whose adapter gives a hash (``Adapter.key_hash_sql``). The publish
transaction adds the new keys of a run; a key's row never changes (eids are not reused).

The hash function may change with the engine's version (DuckDB's ``hash()`` does not
promise stability), so idr_state.schema_info records which one wrote the rows: a run
rebuilds the lookup when it differs, and a lookup meanwhile scans the dictionary."""

from __future__ import annotations

from collections.abc import Sequence

from app.platforms.base import Adapter
from app.platforms.changes import ChangeSet

_INFO_KEY = "entity_lookup_hash"


def write(adapter: Adapter, select_eid_key: str, changes: ChangeSet | None = None) -> None:
    """Add the (eid, entity_key) rows of ``select_eid_key`` (now, or as a write of
    ``changes``, a publish's change set)."""
    h = adapter.key_hash_sql("s.entity_key")
    if h is None:
        return
    (changes or adapter).insert_ordered(
        "idr_state.entity_lookup", f"SELECT {h} AS key_hash, s.eid FROM ({select_eid_key}) AS s", "key_hash"
    )


def _stored_version(adapter: Adapter) -> str | None:
    v = adapter.scalar("SELECT info_value FROM idr_state.schema_info WHERE info_key = $k", {"k": _INFO_KEY})
    return None if v is None else str(v)


def rebuild(adapter: Adapter) -> None:
    """Rewrite the whole lookup from the dictionary with this engine's hash, and record it."""
    version = adapter.key_hash_version()
    if version is None:
        return
    with adapter.transaction():
        adapter.execute("DELETE FROM idr_state.entity_lookup")
        write(adapter, "SELECT eid, entity_key FROM idr_state.entities")
        forget(adapter)
        adapter.execute(
            "INSERT INTO idr_state.schema_info (info_key, info_value) VALUES ($k, $v)", {"k": _INFO_KEY, "v": version}
        )


def forget(adapter: Adapter) -> None:
    """Mark the lookup as written by no hash (its rows are being replaced): the next
    ``ensure_current`` rebuilds it."""
    adapter.execute("DELETE FROM idr_state.schema_info WHERE info_key = $k", {"k": _INFO_KEY})


def ensure_current(adapter: Adapter) -> bool:
    """Rebuild the lookup when another hash (or none) wrote it; True when it did."""
    version = adapter.key_hash_version()
    if version is None or _stored_version(adapter) == version:
        return False
    rebuild(adapter)
    return True


def _by_key(cluster_columns: Sequence[str]) -> str:
    cols = "".join(f", c.{c}" for c in cluster_columns)
    join = " LEFT JOIN idr_state.clusters AS c ON c.rid = e.rid" if cluster_columns else ""
    return f"SELECT e.eid, e.rid, e.entity_key{cols} FROM idr_state.entities AS e{join} WHERE "


def _row(row: tuple) -> tuple:
    return (int(row[0]), None if row[1] is None else int(row[1]), *row[3:])


def _scan(adapter: Adapter, entity_key: str, cluster_columns: Sequence[str]) -> tuple | None:
    row = adapter.fetchone(_by_key(cluster_columns) + "e.entity_key = $k", {"k": entity_key})
    return None if row is None else _row(row)


def find(adapter: Adapter, entity_key: str, cluster_columns: Sequence[str] = ()) -> tuple | None:
    """(eid, rid, *cluster_columns) of a key, or None when the dictionary does not hold it.
    ``cluster_columns`` of idr_state.clusters come with the key's row (NULL for a key in no
    cluster): a point lookup's cost is its statements, not their rows."""
    h = adapter.key_hash_sql("$k")
    if h is None:
        return _scan(adapter, entity_key, cluster_columns)
    eids = [
        int(r[0])
        for r in adapter.fetchall(f"SELECT eid FROM idr_state.entity_lookup WHERE key_hash = {h}", {"k": entity_key})
    ]
    if not eids:
        # Not held, or the lookup was written by another hash (until the next run rebuilds it).
        stale = _stored_version(adapter) != adapter.key_hash_version()
        return _scan(adapter, entity_key, cluster_columns) if stale else None
    # By eid (the dictionary's order): the stored key confirms the hash's match.
    marks = ", ".join(f"$e{i}" for i in range(len(eids)))
    for row in adapter.fetchall(
        _by_key(cluster_columns) + f"e.eid IN ({marks})", {f"e{i}": e for i, e in enumerate(eids)}
    ):
        if row[2] == entity_key:
            return _row(row)
    # A hash match on another key: with a stale hash the key may still be held.
    if _stored_version(adapter) == adapter.key_hash_version():
        return None
    return _scan(adapter, entity_key, cluster_columns)
