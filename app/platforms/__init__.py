"""Warehouse adapters. ``open_adapter`` is the single place that picks one."""

from __future__ import annotations

from app.core.settings import Settings, get_settings
from app.platforms.base import Adapter
from app.platforms.duckdb import DuckDBAdapter


def open_adapter(db_path: str | None = None, settings: Settings | None = None) -> Adapter:
    settings = settings or get_settings()
    return DuckDBAdapter.from_path(db_path or settings.duckdb_path, settings)


__all__ = ["Adapter", "DuckDBAdapter", "open_adapter"]
