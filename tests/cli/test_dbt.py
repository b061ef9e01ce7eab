"""`idr dbt sources` writes a dbt sources.yml: every public table with its columns as the
warehouse has them, key tests, parseable YAML."""

from __future__ import annotations

import yaml

from app.platforms.duckdb import DuckDBAdapter


def test_dbt_sources_lists_public_tables_with_columns_and_key_tests(cli, demo_db, tmp_path):
    path, _ = demo_db
    out = tmp_path / "models" / "sources.yml"
    out.parent.mkdir()
    r = cli("dbt", "sources", "--db", str(path), "--out", str(out))
    assert r.exit_code == 0, r.output
    doc = yaml.safe_load(out.read_text())
    assert doc["version"] == 2
    (src,) = doc["sources"]
    assert src["name"] == "idr" and src["schema"] == "idr_out"
    tables = {t["name"]: t for t in src["tables"]}
    assert {"identity_resolved_membership_current", "identity_clusters_current", "run_history"} <= set(tables)
    a = DuckDBAdapter.from_path(str(path))
    try:
        for name, t in tables.items():
            assert [c["name"] for c in t["columns"]] == a.columns("idr_out", name)
        wide = a.columns("idr_out", "golden_profile_wide")
    finally:
        a.close()
    assert len(wide) > 2  # the demo's attributes are columns of the wide view
    tests = {
        (t["name"], c["name"]): c.get("data_tests") for t in src["tables"] for c in t["columns"] if c.get("data_tests")
    }
    assert tests[("identity_resolved_membership_current", "entity_key")] == ["not_null", "unique"]
    assert tests[("run_history", "run_id")] == ["not_null", "unique"]
    assert tests[("identifiers_current", "entity_key")] == ["not_null"]  # one row per identifier
    stdout = cli("dbt", "sources", "--db", str(path), "--out", "-")
    assert yaml.safe_load(stdout.output) == doc


def test_dbt_sources_on_a_missing_database_is_bad_input(cli, tmp_path):
    r = cli("dbt", "sources", "--db", str(tmp_path / "nope.duckdb"))
    assert r.exit_code == 2 and "does not exist" in r.output
