"""dbt sources for idr's public tables: ``idr dbt sources`` writes a ``sources.yml`` so a
dbt project can ``source('idr', 'identity_resolved_membership_current')`` the results,
with every column listed (read from the warehouse, so it follows the golden columns the
configuration adds) and ``unique`` / ``not_null`` tests on each table's key."""

from __future__ import annotations

from typing import Any

import yaml

from app.platforms.base import Adapter

# Public tables (idr_out) -> (description, key columns: unique when one, not_null each).
PUBLIC: dict[str, tuple[str, tuple[str, ...]]] = {
    "identity_resolved_membership_current": ("Each resolved entity and its cluster (resolved_id).", ("entity_key",)),
    "identity_clusters_current": ("Each cluster: size, confidence.", ("resolved_id",)),
    "identity_edges_current": ("The links between entities, per rule and identifier.", ()),
    "identifiers_current": ("Each entity's normalized identifiers.", ("entity_key",)),
    "golden_profile_current": ("The golden profile, one row per cluster and attribute.", ("resolved_id",)),
    "golden_profile_wide": ("The golden profile, one row per cluster.", ("resolved_id",)),
    "run_history": ("Every run: mode, status, counts, round trips.", ("run_id",)),
}
# Keys that repeat in their table (one row per entity and identifier, per attribute).
NOT_UNIQUE = {("identifiers_current", "entity_key"), ("golden_profile_current", "resolved_id")}


def sources_doc(adapter: Adapter, schema: str = "idr_out") -> dict[str, Any]:
    tables = []
    for name, (description, keys) in PUBLIC.items():
        columns = adapter.columns(schema, name)
        if not columns:
            continue  # e.g. no attributes configured yet: no wide golden view
        cols = []
        for c in columns:
            col: dict[str, Any] = {"name": c}
            if c in keys:
                tests: list[str] = ["not_null"]
                if len(keys) == 1 and (name, c) not in NOT_UNIQUE:
                    tests.append("unique")
                col["data_tests"] = tests
            cols.append(col)
        tables.append({"name": name, "description": description, "columns": cols})
    return {
        "version": 2,
        "sources": [
            {
                "name": "idr",
                "description": "Identity resolution results published by idr (read only: idr owns these tables).",
                "schema": schema,
                "tables": tables,
            }
        ],
    }


def sources_yaml(adapter: Adapter, schema: str = "idr_out") -> str:
    return yaml.safe_dump(sources_doc(adapter, schema), sort_keys=False)
