"""`idr init` is idempotent and upgrades a predecessor's tables in place."""

from __future__ import annotations

from app.platforms.duckdb import DuckDBAdapter
from app.schema import DEFAULT_CONFIG, init_schema, table_columns


def test_init_creates_every_table_once_and_is_idempotent():
    a = DuckDBAdapter.from_path(":memory:")
    changes = init_schema(a)
    expected = table_columns()
    assert len([c for c in changes if c.startswith("created")]) == len(expected)
    for (schema, table), cols in expected.items():
        assert a.columns(schema, table) == [c.name.lower() for c in cols]
    assert init_schema(a) == []
    assert dict(a.fetchall("SELECT config_key, config_value FROM idr_meta.config")) == {
        k: v for k, (v, _) in DEFAULT_CONFIG.items()
    }
    assert a.fetchall("SELECT * FROM idr_meta.resolved_id_sequence") == [("resolved_id", 1)]


def test_init_adds_missing_columns_to_a_predecessor_install_and_keeps_rows():
    a = DuckDBAdapter.from_path(":memory:")
    a.execute("CREATE SCHEMA idr_out")
    # The predecessor's run_history had none of our added columns.
    a.execute("CREATE TABLE idr_out.run_history (run_id VARCHAR, run_mode VARCHAR, status VARCHAR)")
    a.execute("INSERT INTO idr_out.run_history VALUES ('old_run', 'FULL', 'SUCCESS')")
    changes = init_schema(a)
    assert "added column idr_out.run_history.dry_run" in changes
    assert "added column idr_out.run_history.config_fingerprint" in changes
    row = a.fetch_dicts("SELECT run_id, status, dry_run FROM idr_out.run_history")
    assert row == [{"run_id": "old_run", "status": "SUCCESS", "dry_run": False}]
    assert init_schema(a) == []
