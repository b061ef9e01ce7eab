"""Fixtures: a real DuckDB warehouse with the idr schema and the sample's source tables."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.config.yaml_io import load_config_file
from app.platforms.base import Adapter
from app.platforms.duckdb import DuckDBAdapter
from app.schema import init_schema

SAMPLE = Path(__file__).resolve().parents[2] / "app" / "config" / "sample.yml"

# The layout documented at the top of sample.yml.
SOURCE_DDL = [
    "CREATE SCHEMA IF NOT EXISTS crm",
    "CREATE SCHEMA IF NOT EXISTS shop",
    "CREATE SCHEMA IF NOT EXISTS loyalty",
    "CREATE TABLE crm.customers (customer_id VARCHAR PRIMARY KEY, first_name VARCHAR, last_name VARCHAR, "
    "email VARCHAR, phone VARCHAR, updated_at TIMESTAMP)",
    "CREATE TABLE shop.orders (order_id VARCHAR PRIMARY KEY, customer_email VARCHAR, phone_number VARCHAR, "
    "buyer_name VARCHAR, loyalty_id VARCHAR, order_total DECIMAL(10,2), ordered_at TIMESTAMP)",
    "CREATE TABLE loyalty.members (member_id VARCHAR PRIMARY KEY, loyalty_id VARCHAR, email VARCHAR, "
    "mobile VARCHAR, updated_at TIMESTAMP)",
]


@pytest.fixture
def adapter(tmp_path: Path) -> Iterator[Adapter]:
    a = DuckDBAdapter.from_path(str(tmp_path / "t.duckdb"))
    init_schema(a)
    for stmt in SOURCE_DDL:
        a.execute(stmt)
    yield a
    a.close()


@pytest.fixture(scope="session")
def _sample_doc() -> dict[str, Any]:
    return load_config_file(SAMPLE)


@pytest.fixture
def sample_doc(_sample_doc: dict[str, Any]) -> dict[str, Any]:
    """A fresh deep copy per test, so tests can break it freely."""
    return copy.deepcopy(_sample_doc)


def meta_dump(adapter: Adapter) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every idr_meta table, in a deterministic order."""
    out = {}
    for table in adapter.list_tables("idr_meta"):
        ncols = len(adapter.columns("idr_meta", table))
        order = ", ".join(str(i) for i in range(1, ncols + 1))
        out[table] = adapter.fetchall(f"SELECT * FROM idr_meta.{table} ORDER BY {order}")
    return out


@pytest.fixture
def dump_meta() -> Any:
    """``meta_dump`` as a fixture (test modules cannot import conftest reliably)."""
    return meta_dump
