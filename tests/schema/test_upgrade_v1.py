"""`idr init` upgrades a database engine v1 wrote in place: its public tables become views
over idr_state that return the same rows (membership and ids unchanged), the v1 tables
stay as <name>_v1, and the next runs continue from that state exactly as runs on a state
v2 wrote itself."""

from __future__ import annotations

import sqlglot

from app.config.apply import apply_config
from app.platforms.duckdb import DuckDBAdapter
from app.schema import init_schema
from tests.fixtures import HERE, as_rows, load
from tests.pipeline.world import World, clone
from tests.platforms.story import config

PUBLIC = {
    "idr_out.identity_resolved_membership_current": "entity_key, resolved_id, updated_ts",
    "idr_out.identity_clusters_current": "resolved_id, cluster_size, updated_ts",
    "idr_out.identity_edges_current": "rule_id, left_entity_key, right_entity_key, identifier_type, "
    "identifier_value_norm, first_seen_ts, last_seen_ts",
    "idr_out.identifiers_current": "entity_key, identifier_type, identifier_value_norm, updated_ts",
    "idr_out.golden_profile_current": "resolved_id, attribute_name, attribute_value, source_entity_key, "
    "source_table_id, strategy, updated_ts",
    "idr_out.rule_match_audit_current": "*",
    "idr_meta.run_state": "table_id, last_watermark_value, last_run_id, last_run_ts",  # v1 columns
    "idr_meta.resolved_id_sequence": "*",
}


def v1_config() -> dict:
    """The story's configuration as v1 stored it: without the deletion settings the story
    gained later (v1's source tables have no is_deleted column)."""
    doc = config()
    for src in doc["sources"]:
        src.pop("deleted_flag_expr", None)
        src.pop("reconcile_deletes", None)
    return doc


def v1_database() -> tuple[DuckDBAdapter, dict]:
    """A database as engine v1 left it after the story's FULL and INCR runs."""
    state = load("state_v1.json")
    a = DuckDBAdapter.from_path(":memory:")
    for stmt in sqlglot.parse((HERE / "tables_v1.sql").read_text(), read="duckdb"):
        if stmt is not None:
            a.execute(stmt.sql(dialect="duckdb"))
    a.execute("CREATE SCHEMA src")
    for t, data in state["sources"].items():
        a.execute(
            f"CREATE TABLE src.{t} (id VARCHAR, email VARCHAR, phone VARCHAR, name VARCHAR, updated_at TIMESTAMP)"
        )
        a.executemany(
            f"INSERT INTO src.{t} VALUES ($a, $b, $c, $d, $e)",
            [dict(zip("abcde", r, strict=True)) for r in data["rows"]],
        )
    for fqn, data in state["tables"].items():
        marks = ", ".join(f"$c{i}" for i in range(len(data["columns"])))
        a.execute(f"DELETE FROM {fqn}")
        a.executemany(
            f"INSERT INTO {fqn} ({', '.join(data['columns'])}) VALUES ({marks})",
            [{f"c{i}": v for i, v in enumerate(r)} for r in data["rows"]],
        )
    hist = state["run_history"]
    marks = ", ".join(f"$c{i}" for i in range(len(hist["columns"])))
    a.executemany(
        f"INSERT INTO idr_out.run_history ({', '.join(hist['columns'])}) VALUES ({marks})",
        [{f"c{i}": v for i, v in enumerate(r)} for r in hist["rows"]],
    )
    a.execute("INSERT INTO idr_meta.resolved_id_sequence VALUES ('resolved_id', 1) ON CONFLICT DO NOTHING")
    return a, state


def test_init_upgrades_a_v1_state_in_place_and_the_views_return_its_rows():
    a, state = v1_database()
    apply_config(a, v1_config())  # what v1 had stored
    changes = init_schema(a)
    assert any("upgraded the v1 state" in c for c in changes), changes
    for fqn, cols in PUBLIC.items():
        want = as_rows(state["tables"][fqn]["rows"])
        got = sorted(a.fetchall(f"SELECT {cols} FROM {fqn}"), key=repr)
        assert got == want, f"{fqn} differs after the upgrade"
    # The v1 tables are kept beside the views until the user drops them.
    assert "identity_resolved_membership_current_v1" in a.list_tables("idr_out")
    assert "identity_resolved_membership_current" in a.list_tables("idr_out", views=True)
    assert init_schema(a) == [], "a second init changes nothing"


def test_runs_after_the_upgrade_continue_from_the_same_state():
    a, _ = v1_database()
    apply_config(a, v1_config())
    init_schema(a)
    before = dict(a.fetchall("SELECT entity_key, resolved_id FROM idr_out.identity_resolved_membership_current"))
    w = World(a, ["crm", "shop"])
    w.clock = max(
        r[0] for r in a.fetchall("SELECT max(updated_at) FROM src.crm UNION ALL SELECT max(updated_at) FROM src.shop")
    )
    full = clone(w)
    # A record bridging two clusters: INCR must give what FULL gives from the same state.
    members = list(before)
    w.upsert("crm", "late", email="b5@chain.example", phone="555-300-0001")
    full.upsert("crm", "late", email="b5@chain.example", phone="555-300-0001")
    r_incr, r_full = w.run("INCR"), full.run("FULL")
    assert r_incr.ok and r_full.ok, (r_incr.error_message, r_full.error_message)
    assert w.membership() == full.membership()
    after = w.membership()
    # Untouched clusters kept their ids; the merge kept one of the merged clusters' ids.
    assert set(after.values()) <= set(before.values()) | {after["crm:late"]}
    assert sum(1 for k in members if after[k] != before[k]) < len(members) / 2
    edges = (
        "SELECT rule_id, left_entity_key, right_entity_key, identifier_type, identifier_value_norm "
        "FROM idr_out.identity_edges_current"
    )
    assert sorted(w.adapter.fetchall(edges)) == sorted(full.adapter.fetchall(edges))
