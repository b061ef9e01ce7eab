"""The built-in target models (``IDR_TARGETS__<NAME>__<FIELD>``), one per platform, each
building its own adapter. Registered as ``idr.targets`` entry points (``app.core.targets``).

Secrets are SecretStr (never printed) or ``*_file`` paths read at connect time (mounted
secrets). Driver modules are imported when an adapter is built, so a target for a platform
whose driver is not installed only fails when it is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr

from app.core.errors import ConfigError
from app.core.targets import TargetModel

if TYPE_CHECKING:
    from app.core.settings import Settings
    from app.platforms.base import Adapter


def _secret(value: SecretStr | None, path: Path | None) -> str | None:
    if value is not None:
        return value.get_secret_value()
    if path is not None:
        return path.read_text().strip()
    return None


class DuckDBTarget(TargetModel):
    platform: Literal["duckdb"]
    path: str | None = Field(None, description="DuckDB database file; unset: IDR_DUCKDB_PATH.")

    def duckdb_file(self, settings: Settings) -> str | None:
        return self.path or settings.duckdb_path

    def build_adapter(self, settings: Settings) -> Adapter:
        from app.platforms.duckdb import DuckDBAdapter

        return DuckDBAdapter.from_path(self.path or settings.duckdb_path, settings)


class SnowflakeTarget(TargetModel):
    platform: Literal["snowflake"]
    account: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    private_key_file: Path | None = None
    database: str | None = None
    warehouse: str | None = None
    role: str | None = None
    host: str | None = None
    port: int | None = None
    protocol: str | None = None

    def connect_params(self) -> dict[str, Any]:
        """snowflake.connector.connect keyword arguments (the password read now)."""
        names = ("account", "user", "database", "warehouse", "role", "host", "port", "protocol")
        params: dict[str, Any] = {k: getattr(self, k) for k in names}
        params["password"] = _secret(self.password, self.password_file)
        if self.private_key_file:
            params["private_key_file"] = str(self.private_key_file)
        return params

    def build_adapter(self, settings: Settings) -> Adapter:
        from app.platforms.snowflake import SnowflakeAdapter, snowflake_connector

        return SnowflakeAdapter(snowflake_connector(self.connect_params()))


class BigQueryTarget(TargetModel):
    platform: Literal["bigquery"]
    # Optional here so that settings holding an unfinished BigQuery target still load for
    # the other targets (as before per-platform models); using it without one is refused.
    project: str | None = None
    location: str | None = None
    credentials_file: Path | None = None
    endpoint: str | None = Field(None, description="BigQuery API endpoint override (an emulator).")

    def build_adapter(self, settings: Settings) -> Adapter:
        from app.platforms.bigquery import BigQueryAdapter, bigquery_connector

        if not self.project:
            raise ConfigError("a bigquery target needs project", field="project")
        creds = str(self.credentials_file) if self.credentials_file else None
        return BigQueryAdapter(
            bigquery_connector(self.project, location=self.location, endpoint=self.endpoint, credentials_file=creds)
        )


class DatabricksTarget(TargetModel):
    """A Databricks SQL warehouse through databricks-sql-connector."""

    platform: Literal["databricks"]
    server_hostname: str | None = None
    http_path: str | None = None
    access_token: SecretStr | None = None
    access_token_file: Path | None = None
    catalog: str | None = None

    def build_adapter(self, settings: Settings) -> Adapter:
        from app.platforms.spark import DatabricksSQLAdapter, databricks_connector

        return DatabricksSQLAdapter(
            databricks_connector(
                {
                    "server_hostname": self.server_hostname,
                    "http_path": self.http_path,
                    "access_token": _secret(self.access_token, self.access_token_file),
                    "catalog": self.catalog,
                }
            )
        )


class SparkTarget(TargetModel):
    """A SparkSession: spark-submit on a cluster (the active session), or local."""

    platform: Literal["spark"]
    spark_master: str | None = Field(None, description="Spark master URL; unset: the active/default session.")
    spark_warehouse_dir: str | None = None
    spark_metastore_dir: str | None = Field(
        None,
        description="Local sessions: keep the catalog in an embedded Derby metastore here (tables outlive the "
        "process); unset: an in-memory catalog.",
    )

    def build_adapter(self, settings: Settings) -> Adapter:
        from app.platforms.spark import SparkSessionAdapter, spark_session_factory

        return SparkSessionAdapter(
            spark_session_factory(self.spark_master, self.spark_warehouse_dir, self.spark_metastore_dir)
        )
