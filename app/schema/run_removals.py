"""The records each run removed, by reason, moved to idr_out.run_history's own columns
(entities_removed_<reason>). Runs recorded before the columns existed kept them only in
their metrics rows (idr_out.metrics_export, ``idr_entities_removed{reason}``) -- and, for
erasures, in idr_out.erasure_runs: ``idr init`` fills the new columns of those runs from
there, once (idr_state.schema_info records it). A run with neither keeps NULL: not
recorded."""

from __future__ import annotations

import json

from app.core.vocabulary import REMOVAL_COLUMNS
from app.platforms.base import Adapter

INFO_KEY = "run_history_removals"


def fill(adapter: Adapter) -> int:
    """Fill the removal columns of earlier runs; returns how many runs it filled."""
    if adapter.scalar("SELECT info_value FROM idr_state.schema_info WHERE info_key = $k", {"k": INFO_KEY}):
        return 0
    empty = " AND ".join(f"h.{c} IS NULL" for c in REMOVAL_COLUMNS.values())
    found: dict[str, dict[str, int]] = {}
    for run_id, dims, value in adapter.fetchall(
        "SELECT m.run_id, m.dimensions, m.metric_value FROM idr_out.metrics_export AS m "
        f"JOIN idr_out.run_history AS h ON h.run_id = m.run_id WHERE m.metric_name = 'idr_entities_removed' AND {empty}"
    ):
        reason = (json.loads(dims) if dims else {}).get("reason")
        if reason in REMOVAL_COLUMNS:
            found.setdefault(str(run_id), {})[reason] = int(value or 0)
    for run_id, removed in adapter.fetchall(
        "SELECT e.run_id, sum(e.entities_removed) FROM idr_out.erasure_runs AS e "
        f"JOIN idr_out.run_history AS h ON h.run_id = e.run_id WHERE {empty} GROUP BY e.run_id"
    ):
        found.setdefault(str(run_id), {}).setdefault("erasure", int(removed or 0))
    sets = ", ".join(f"{c} = $rm_{r}" for r, c in REMOVAL_COLUMNS.items())
    adapter.executemany(
        f"UPDATE idr_out.run_history SET {sets} WHERE run_id = $id",
        [{"id": run_id, **{f"rm_{r}": got.get(r) for r in REMOVAL_COLUMNS}} for run_id, got in sorted(found.items())],
    )
    adapter.execute(
        "INSERT INTO idr_state.schema_info (info_key, info_value) VALUES ($k, $v)", {"k": INFO_KEY, "v": "filled"}
    )
    return len(found)
