"""Warehouse adapters. ``open_adapter`` is the single place that picks one."""

from __future__ import annotations

from pathlib import Path

from app.core.errors import ConfigError, IdrError
from app.core.settings import Settings, get_settings
from app.core.targets import TargetModel
from app.platforms.base import Adapter
from app.platforms.duckdb import DuckDBAdapter


def target_adapter(t: TargetModel, settings: Settings) -> Adapter:
    """An adapter (holding a connection factory, nothing opened yet) for one target: its
    platform's model builds it (app/platforms/targets.py, or a plugin's)."""
    return t.build_adapter(settings)


def named_target(settings: Settings, name: str) -> TargetModel:
    targets = {k.lower(): v for k, v in settings.targets.items()}
    if name.lower() not in targets:
        known = ", ".join(sorted(targets)) or "none configured"
        raise ConfigError(f"unknown target {name!r} (known: {known})", field="target")
    return targets[name.lower()]


def duckdb_file(db_path: str | None = None, settings: Settings | None = None, target: str | None = None) -> str | None:
    """The DuckDB file ``open_adapter`` would open for these arguments; None for other platforms."""
    settings = settings or get_settings()
    name = target or (None if db_path else settings.default_target)
    if name:
        return named_target(settings, name).duckdb_file(settings)
    return db_path or settings.duckdb_path


def open_adapter(
    db_path: str | None = None, settings: Settings | None = None, target: str | None = None, *, create: bool = True
) -> Adapter:
    """``target`` names one of ``settings.targets``; without it: ``default_target`` if set,
    else the embedded DuckDB (``db_path`` or ``duckdb_path``). ``create=False`` refuses a
    DuckDB file that does not exist instead of creating an empty one."""
    settings = settings or get_settings()
    if not create:
        path = duckdb_file(db_path, settings, target)
        if path is not None and path != ":memory:" and not Path(path).exists():
            raise IdrError(
                f"{path} does not exist: create it with `idr init --db {path}` (or `idr demo --db {path}`)",
                field="db",
            )
    name = target or (None if db_path else settings.default_target)
    if name:
        return target_adapter(named_target(settings, name), settings)
    return DuckDBAdapter.from_path(db_path or settings.duckdb_path, settings)


__all__ = ["Adapter", "DuckDBAdapter", "duckdb_file", "named_target", "open_adapter", "target_adapter"]
