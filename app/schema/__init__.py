"""Creates and upgrades the idr_meta / idr_state / idr_out / idr_work schemas, idempotently:
tables (sql/schema/tables.sql), the public views over the state (sql/schema/views.sql and
the golden-profile views), and the upgrade of a database written by engine v1, whose
public tables were the state itself (app/schema/upgrade.py)."""

from __future__ import annotations

from functools import lru_cache

import sqlglot
from sqlglot import exp

from app.core.settings import get_settings
from app.core.vocabulary import WAREHOUSE_CONFIG_DEFAULTS
from app.platforms.base import Adapter

DEFAULT_CONFIG: dict[str, tuple[str, str]] = WAREHOUSE_CONFIG_DEFAULTS

# The public tables that engine v2 serves as views.
PUBLIC_VIEWS: tuple[str, ...] = (
    "identity_resolved_membership_current",
    "identity_clusters_current",
    "identity_edges_current",
    "identifiers_current",
    "golden_profile_current",
    "golden_profile_wide",
)


@lru_cache
def _ddl_statements() -> tuple[exp.Expression, ...]:
    text = (get_settings().sql_dir / "schema" / "tables.sql").read_text()
    return tuple(s for s in sqlglot.parse(text, read="duckdb") if s is not None)


@lru_cache
def view_statements() -> tuple[str, ...]:
    from app.pipeline.sqltext import load

    return tuple(load(get_settings().sql_dir, "views", folder="schema").values())


def table_columns() -> dict[tuple[str, str], list[exp.ColumnDef]]:
    """(schema, table) -> column definitions, as the canonical DDL declares them."""
    out: dict[tuple[str, str], list[exp.ColumnDef]] = {}
    for stmt in _ddl_statements():
        if isinstance(stmt, exp.Create) and stmt.kind == "TABLE":
            schema_expr = stmt.this
            table = schema_expr.this
            cols = [c for c in schema_expr.expressions if isinstance(c, exp.ColumnDef)]
            out[(table.db, table.name)] = cols
    return out


def init_schema(adapter: Adapter) -> list[str]:
    """Create every schema, table and view; add columns missing from older installs;
    upgrade a v1 state in place.

    Returns a list of human-readable changes made (empty when already up to date).
    """
    from app.config.store import read_config
    from app.schema import entity_lookup, run_removals
    from app.schema.golden import sync_golden
    from app.schema.upgrade import upgrade_v1, v1_tables

    changes: list[str] = []
    existing = {key: adapter.columns(*key) for key in table_columns()}
    for stmt in _ddl_statements():
        for sql in adapter.translate(stmt.sql(dialect="duckdb")):
            adapter.execute(sql)
    for (schema, table), cols in table_columns().items():
        have = existing[(schema, table)]
        if not have:
            changes.append(f"created {schema}.{table}")
            continue
        for col in cols:
            if col.name.lower() in have:
                continue
            col_def = col.copy()
            # A PRIMARY KEY / NOT NULL cannot be added to a populated table; a default can.
            col_def.set(
                "constraints",
                [c for c in col_def.args.get("constraints", []) if isinstance(c.kind, exp.DefaultColumnConstraint)],
            )
            alter = f"ALTER TABLE {adapter.table(schema, table)} ADD COLUMN {col_def.sql(dialect='duckdb')}"
            for sql in adapter.translate(alter):
                adapter.execute(sql)
            changes.append(f"added column {schema}.{table}.{col.name}")
    for key, (value, description) in DEFAULT_CONFIG.items():
        adapter.execute(
            "INSERT INTO idr_meta.config (config_key, config_value, description, updated_at, updated_by) "
            "SELECT $k, $v, $d, CURRENT_TIMESTAMP, 'idr init' "
            "WHERE NOT EXISTS (SELECT 1 FROM idr_meta.config WHERE config_key = $k)",
            {"k": key, "v": value, "d": description},
        )
    adapter.execute(
        "INSERT INTO idr_meta.resolved_id_sequence (sequence_name, next_value) "
        "SELECT 'resolved_id', 1 WHERE NOT EXISTS "
        "(SELECT 1 FROM idr_meta.resolved_id_sequence WHERE sequence_name = 'resolved_id')"
    )
    if filled := run_removals.fill(adapter):
        changes.append(f"filled idr_out.run_history's removal columns of {filled} earlier run(s)")
    config = read_config(adapter)
    if v1_tables(adapter):
        changes += upgrade_v1(adapter, config)
    if entity_lookup.ensure_current(adapter):  # written before it existed, or by another hash
        changes.append("rebuilt idr_state.entity_lookup")
    for sql in view_statements():
        adapter.execute(sql)
    sync_golden(adapter, config, force=True)
    return changes
