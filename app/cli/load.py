"""`idr load TABLE FILE`: put a CSV, Parquet or JSON file into a source table of the
embedded DuckDB warehouse, waiting (like every command) while the service holds the file.

For the first hour and for the compose stack's /data volume; on Snowflake, BigQuery or
Databricks, load with the warehouse's own tools.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import DbOpt, TargetOpt, console, fail, warehouse

READERS = {
    ".csv": "read_csv_auto",
    ".tsv": "read_csv_auto",
    ".parquet": "read_parquet",
    ".json": "read_json_auto",
    ".jsonl": "read_json_auto",
    ".ndjson": "read_json_auto",
}


def load(
    table: Annotated[str, typer.Argument(help="schema.table (created from the file's columns when missing).")],
    file: Annotated[Path, typer.Argument(help="A .csv, .tsv, .parquet, .json or .jsonl file.")],
    replace: Annotated[bool, typer.Option("--replace", help="Replace the table's rows instead of appending.")] = False,
    db: DbOpt = None,
    target: TargetOpt = None,
) -> None:
    """Append (or --replace) a file's rows to a source table of the DuckDB warehouse, matching
    columns by name. Safe while the service runs: waits while it holds the file."""
    from app.config.validate import parse_table_fqn

    reader = READERS.get(file.suffix.lower())
    if reader is None:
        raise fail(f"{file}: unknown file type; use one of {', '.join(sorted(READERS))}")
    if not file.is_file():
        raise fail(f"{file} does not exist")
    fqn = parse_table_fqn(table)
    schema = fqn.db or "main"
    name = fqn.sql(dialect="duckdb", identify=True)
    source = f"{reader}($path)"  # the path is a bound parameter, the name a quoted identifier
    with warehouse(db, target) as a:
        if a.platform != "duckdb":
            raise fail("idr load writes the embedded DuckDB warehouse; load other warehouses with their own tools")
        with a.transaction():
            if fqn.db:
                a.execute(f"CREATE SCHEMA IF NOT EXISTS {fqn.args['db'].sql(dialect='duckdb', identify=True)}")
            existed = a.table_exists(schema, fqn.name)
            before = int(a.scalar(f"SELECT count(*) FROM {name}") or 0) if existed else 0
            if not existed:
                a.execute(f"CREATE TABLE {name} AS SELECT * FROM {source}", {"path": str(file.resolve())})
            else:
                if replace:
                    a.execute(f"DELETE FROM {name}")
                a.execute(f"INSERT INTO {name} BY NAME SELECT * FROM {source}", {"path": str(file.resolve())})
            after = int(a.scalar(f"SELECT count(*) FROM {name}") or 0)
    added = after - (0 if replace else before)
    what = "created with" if not existed else "replaced by" if replace else "appended"
    console.print(f"{table}: {what} {added:,} row(s) from {file.name} ({after:,} in the table)", highlight=False)
