"""Creates and upgrades the idr_meta / idr_out / idr_work schemas, idempotently."""

from __future__ import annotations

from functools import lru_cache

import sqlglot
from sqlglot import exp

from app.core.settings import get_settings
from app.platforms.base import Adapter

DEFAULT_CONFIG: dict[str, tuple[str, str]] = {
    "large_cluster_threshold": ("5000", "Clusters above this size are reported as large."),
    "dry_run_retention_days": ("7", "Dry-run results older than this are removed by cleanup."),
    "dry_run_keep_last": ("0", "Cleanup keeps at least this many newest dry runs regardless of age."),
    "max_cc_rounds": ("64", "Cap on connected-component rounds; hitting it fails the run."),
}


@lru_cache
def _ddl_statements() -> tuple[exp.Expression, ...]:
    text = (get_settings().sql_dir / "schema" / "tables.sql").read_text()
    return tuple(s for s in sqlglot.parse(text, read="duckdb") if s is not None)


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
    """Create every schema and table; add columns missing from older installs.

    Returns a list of human-readable changes made (empty when already up to date).
    """
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
    return changes
