"""Warehouse adapters. ``open_adapter`` is the single place that picks one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.core.errors import ConfigError, IdrError
from app.core.settings import Settings, Target, get_settings
from app.platforms.base import Adapter
from app.platforms.duckdb import DuckDBAdapter


def _secret(value: Any, path: Any) -> str | None:
    if value is not None:
        return value.get_secret_value()
    if path is not None:
        return path.read_text().strip()
    return None


def target_adapter(t: Target, settings: Settings) -> Adapter:
    """An adapter (holding a connection factory, nothing opened yet) for one target."""
    if t.platform == "duckdb":
        return DuckDBAdapter.from_path(t.path or settings.duckdb_path, settings)
    if t.platform == "snowflake":
        from app.platforms.snowflake import SnowflakeAdapter, snowflake_connector

        params: dict[str, Any] = {
            k: getattr(t, k) for k in ("account", "user", "database", "warehouse", "role", "host", "port", "protocol")
        }
        params["password"] = _secret(t.password, t.password_file)
        if t.private_key_file:
            params["private_key_file"] = str(t.private_key_file)
        return SnowflakeAdapter(snowflake_connector(params))
    if t.platform == "bigquery":
        from app.platforms.bigquery import BigQueryAdapter, bigquery_connector

        if not t.project:
            raise ConfigError("a bigquery target needs project", field="project")
        creds = str(t.credentials_file) if t.credentials_file else None
        return BigQueryAdapter(
            bigquery_connector(t.project, location=t.location, endpoint=t.endpoint, credentials_file=creds)
        )
    if t.platform == "databricks":
        from app.platforms.spark import DatabricksSQLAdapter, databricks_connector

        return DatabricksSQLAdapter(
            databricks_connector(
                {
                    "server_hostname": t.server_hostname,
                    "http_path": t.http_path,
                    "access_token": _secret(t.access_token, t.access_token_file),
                    "catalog": t.catalog,
                }
            )
        )
    if t.platform == "spark":
        from app.platforms.spark import SparkSessionAdapter, spark_session_factory

        return SparkSessionAdapter(spark_session_factory(t.spark_master, t.spark_warehouse_dir))
    raise ConfigError(f"unknown platform {t.platform!r}", field="platform")  # pragma: no cover


def _named(settings: Settings, name: str) -> Target:
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
        t = _named(settings, name)
        return (t.path or settings.duckdb_path) if t.platform == "duckdb" else None
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
        return target_adapter(_named(settings, name), settings)
    return DuckDBAdapter.from_path(db_path or settings.duckdb_path, settings)


__all__ = ["Adapter", "DuckDBAdapter", "duckdb_file", "open_adapter", "target_adapter"]
