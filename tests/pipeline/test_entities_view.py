"""DuckDB's entity staging (MATERIALIZED CTEs, a scratch table's stored row number instead
of a numbering window) gives exactly the state of the portable staging: membership, ids,
clusters, edges, stored identifiers and golden profile, FULL, INCR and dry runs, duplicate
source keys included."""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.platforms.duckdb_strategies import DuckDBStaging
from app.platforms.strategies import PortableStaging
from tests.pipeline.world import World, clone

record = st.tuples(
    st.sampled_from(["crm", "shop"]),
    st.integers(0, 9),
    st.one_of(st.none(), st.sampled_from(["a@x.com", "B@x.com ", "c@x.com"])),
    st.one_of(st.none(), st.sampled_from(["555-0101", "5550102", "555 0103"])),
    st.booleans(),  # also insert a stale duplicate of this key (the latest-record path)
)

STATE = {
    "membership": "SELECT entity_key, resolved_id FROM idr_out.identity_resolved_membership_current",
    "clusters": "SELECT resolved_id, cluster_size FROM idr_out.identity_clusters_current",
    "edges": "SELECT rule_id, left_entity_key, right_entity_key, identifier_type, identifier_value_norm "
    "FROM idr_out.identity_edges_current",
    "identifiers": "SELECT entity_key, identifier_type, identifier_value_norm FROM idr_out.identifiers_current",
    "golden": "SELECT resolved_id, attribute_name, attribute_value, source_entity_key, source_table_id, strategy "
    "FROM idr_out.golden_profile_current",
    "dry_run": "SELECT entity_key, current_resolved_id, proposed_resolved_id, change_type FROM idr_out.dry_run_results",
}


def load(w: World, records) -> None:
    for table, i, email, phone, stale in records:
        w.upsert(table, str(i), email=email, phone=phone, name=f"n{i}")
        if stale:  # an older row under the same key: extraction keeps the newest only
            w.adapter.execute(
                f'INSERT INTO src."{table}" VALUES ($id, $e, NULL, $n, $ts)',
                {"id": str(i), "e": "stale@x.com", "n": "old", "ts": w.clock.replace(year=2000)},
            )


def state(w: World) -> dict[str, list[tuple]]:
    return {name: sorted(w.adapter.fetchall(sql), key=repr) for name, sql in STATE.items()}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(record, min_size=1, max_size=20), st.lists(record, min_size=1, max_size=8))
def test_view_path_equals_table_path(first, second):
    fast = World.create(tables=("crm", "shop"))
    load(fast, first)
    slow = clone(fast)
    slow.adapter.strategies = dataclasses.replace(fast.adapter.strategies, staging=PortableStaging())
    assert isinstance(fast.adapter.strategies.staging, DuckDBStaging)
    for mode, batch in (("FULL", None), ("INCR", second)):
        if batch:
            load(fast, batch)
            load(slow, batch)
        for dry_run in (True, False):
            r1, r2 = fast.run(mode, dry_run=dry_run), slow.run(mode, dry_run=dry_run)
            assert r1.ok and r2.ok, (r1.error_message, r2.error_message)
            assert r1.entities_processed == r2.entities_processed
            assert state(fast) == state(slow), (mode, dry_run)
    # Nothing of either run is left behind in the scratch schema.
    for w in (fast, slow):
        assert not w.adapter.fetchall("SELECT table_name FROM duckdb_tables() WHERE temporary")
        assert not w.adapter.fetchall("SELECT view_name FROM duckdb_views() WHERE temporary AND NOT internal")
