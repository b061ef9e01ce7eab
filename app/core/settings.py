"""All settings, read once from the environment (prefix ``IDR_``) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, SerializeAsAny, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.targets import TargetModel, parse_targets

REPO_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="IDR_",
        env_file=".env",
        extra="ignore",
        env_nested_delimiter="__",
        # An error must not echo what was given: a target's entry holds its secrets.
        hide_input_in_errors=True,
    )

    # Named warehouses; `--target NAME` (CLI) / `target` (API) picks one, else default_target,
    # else the embedded DuckDB at duckdb_path.
    # One model per platform (app/platforms/targets.py), chosen by `platform`: app/core/targets.py.
    targets: dict[str, SerializeAsAny[TargetModel]] = Field(
        default_factory=dict, description="Named warehouse targets."
    )
    default_target: str | None = Field(None, description="Target used when a command names none.")

    # Warehouse (embedded default).
    duckdb_path: str = Field("idr.duckdb", description="DuckDB database file of the embedded warehouse.")
    duckdb_memory_limit: str | None = Field(
        None,
        description="DuckDB memory_limit (e.g. '8GB'); larger runs spill to duckdb_temp_directory. Default: 3 GiB, "
        "or 60% of the memory of the machine (or container) where that is less.",
    )
    duckdb_block_memory: str | None = Field(
        None,
        description="DuckDB block_allocator_memory: memory a connection keeps for its buffer blocks once used, "
        "instead of returning it to the OS between a run's steps and faulting it in again; released when the "
        "connection closes (one per run or request). Default: the memory limit. '0B' returns memory at once.",
    )
    duckdb_temp_directory: str | None = Field(None, description="Where DuckDB spills; default: '<duckdb_path>.tmp'.")
    duckdb_threads: int | None = Field(None, description="DuckDB threads; default: all cores.")
    duckdb_string_compression: Literal["dict_fsst", "zstd", "uncompressed"] = Field(
        "dict_fsst",
        description="How DuckDB compresses the strings idr writes to the database file. 'dict_fsst': DuckDB's "
        "own choice, the smallest file and the fastest INCR runs. 'zstd': FULL runs take about 5% less CPU "
        "(writing the state) and the file grows 5-25%, but INCR runs take about 10% more (reading it). "
        "'uncompressed': writes faster again, the file 2-4x larger. A database in a storage format older than "
        "DuckDB 1.2 has no ZSTD and keeps 'dict_fsst'.",
    )
    duckdb_compact_strings: bool | None = Field(
        None,
        description="Deprecated: false is duckdb_string_compression='uncompressed', true is 'dict_fsst'.",
    )
    duckdb_vacuum: bool = Field(
        False,
        description="Let DuckDB's checkpoints merge row groups that hold deleted rows. Off: a checkpoint "
        "costs what a run changed, not the size of the tables it touched (INCR at 1M: 0.1-0.2 s instead of "
        "0.2-1.7 s); the space INCR runs free is reclaimed when a FULL run rewrites the tables.",
    )

    @field_validator("targets", mode="before")
    @classmethod
    def _targets(cls, value: object) -> object:
        return parse_targets(value)

    @field_validator("bootstrap_api_key", mode="before")
    @classmethod
    def _no_empty_key(cls, value: object) -> object:
        """`IDR_BOOTSTRAP_API_KEY=` (compose passes it through unset as '') means no key,
        never a key that is the empty string."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _compact_strings_alias(self) -> Settings:
        """The former boolean still works where it is set."""
        if self.duckdb_compact_strings is not None and "duckdb_string_compression" not in self.model_fields_set:
            self.duckdb_string_compression = "dict_fsst" if self.duckdb_compact_strings else "uncompressed"
        return self

    @field_validator("duckdb_memory_limit", "duckdb_block_memory")
    @classmethod
    def _duckdb_memory_size(cls, value: str | None) -> str | None:
        """Refused at start-up, not at the first connection: DuckDB's own parser decides."""
        if value is None:
            return value
        import duckdb  # the embedded engine is a dependency; only its size parser is used

        with duckdb.connect() as conn:
            try:
                conn.execute("SET memory_limit = $v", {"v": value})
            except duckdb.Error as e:
                raise ValueError(f"{value!r} is not a memory size (e.g. '8GB', '512MB', '0B'): {e}") from e
        return value

    # Pipeline.
    max_cc_rounds: int = Field(
        64, description="Cap on connected-component rounds; hitting it fails the run (never a wrong result)."
    )
    cc_engine: Literal["auto", "sql", "script", "unionfind"] = Field(
        "auto",
        description="Connected components: 'sql' (every platform, one round trip per round), 'script' (the same "
        "rounds as one server-side script: BigQuery, Spark / Databricks), 'unionfind' (scipy's union-find, "
        "in-process engines only), 'auto' = the warehouse's best. All give the same partition.",
    )
    sql_dir: Path = Field(REPO_ROOT / "sql", description="Folder holding the stage SQL.")

    # HTTP service (app.main) and workers (workers/).
    state_db_url: str = Field(
        "sqlite:///idr_state.db",
        description="SQLAlchemy URL of the service state (runs, keys, webhooks); PostgreSQL in production.",
    )
    state_db_auto_migrate: bool = Field(True, description="Run Alembic migrations when the API starts.")
    broker_url: str | None = Field(
        None, description="Celery broker (redis://...). Unset: embedded mode, tasks run on threads in the API."
    )
    celery_queue: str = Field("idr", description="Celery queue the API sends to and workers consume.")
    celery_visibility_timeout_seconds: float = Field(
        3600.0,
        gt=0,
        description="Redis broker: a task a worker took but did not acknowledge (paused, killed) is handed to "
        "another worker after this long. Redelivery is safe: a run that is no longer QUEUED is not run again.",
    )
    embedded_workers: int = Field(2, ge=1, description="Worker threads in embedded mode (a dry run beside a run).")
    api_max_body_bytes: int = Field(
        1 << 20, ge=1024, description="Largest request body the API reads (413 above it)."
    )
    api_host: str = Field("127.0.0.1", description="`idr serve` bind address.")
    api_port: int = Field(8000, description="`idr serve` port.")
    bootstrap_api_key: SecretStr | None = Field(
        None, description="An admin API key created (stored hashed) at start-up if missing; for first use."
    )
    metrics_require_auth: bool = Field(True, description="/metrics needs an API key with scope read.")
    run_heartbeat_seconds: float = Field(5.0, gt=0, description="How often a running task records it is alive.")
    run_timeout_seconds: float = Field(
        6 * 3600.0,
        gt=0,
        description="A run still going after this long is stopped like a cancel (its running statement "
        "interrupted) and ends FAILED; production tables stay as they were.",
    )
    run_stale_after_seconds: float = Field(
        60.0, gt=0, description="A RUNNING run without a heartbeat this long is marked FAILED (worker lost)."
    )
    reaper_interval_seconds: float = Field(15.0, gt=0, description="How often stale runs are looked for.")
    fault_stop_at: str | None = Field(
        None,
        max_length=128,
        description="Debug (bench/faults.py): a run stops its own process (SIGSTOP) at this point of its plan "
        "(app/core/faults.py), for the bench to kill there.",
    )
    run_stage_delay_seconds: float = Field(
        0.0, ge=0, description="Debug: pause at every stage boundary (tests use it to catch a run mid-flight)."
    )
    duckdb_keep_open_seconds: float = Field(
        1.0,
        ge=0,
        description="API process: how long a DuckDB file stays open after the last request or run ended, so a "
        "burst of requests opens it once; then it is released and other processes (your loaders, the CLI) can "
        "open it. Workers and CLI commands release it at once.",
    )
    explain_max_edges: int = Field(
        200_000,
        ge=1,
        le=10_000_000,
        description="Largest cluster (in identifier edges) whose chain `explain` searches; above it a 422 names "
        "the limit (the search holds the cluster's edges in memory).",
    )
    readyz_warehouse_check_seconds: float = Field(
        60.0,
        ge=0,
        description="/readyz: how long a remote warehouse's successful connection check is reused (a DuckDB "
        "file is only looked at, never opened: readiness takes no lock).",
    )
    cli_warehouse_wait_seconds: float = Field(
        15.0, ge=0, description="CLI: how long a command retries a DuckDB file another process holds."
    )
    record_cli_runs: bool = Field(
        True,
        description="`idr run` and `idr dry-runs apply` record their runs in the state DB (IDR_STATE_DB_URL) when "
        "the service serves that warehouse: the API lists them and can cancel them, webhooks fire, and one writing "
        "run per target holds across CLI and API.",
    )
    warehouse_busy_wait_seconds: float = Field(
        2.0, ge=0, description="API: how long to retry a warehouse another process holds (DuckDB) before 503."
    )
    worker_warehouse_wait_seconds: float = Field(
        120.0, ge=0, description="Worker: how long a task waits for a warehouse another process holds."
    )
    webhook_allow_hosts: str = Field(
        "",
        description="Webhook hosts that may be non-public addresses (comma-separated names, addresses or networks, "
        "e.g. '127.0.0.1' for a local receiver). Everything else must resolve to public addresses only.",
    )
    webhook_secret_keys: SecretStr | None = Field(
        None,
        description="Comma-separated Fernet keys that encrypt webhook signing secrets at rest: the first encrypts, "
        "all decrypt (rotation: README, Webhook secrets). Required once a webhook exists.",
    )
    webhook_timeout_seconds: float = Field(10.0, gt=0, description="Per-attempt timeout of a webhook delivery.")
    webhook_max_attempts: int = Field(8, ge=1, description="Attempts per delivery (timeouts, 5xx and 429 retry).")
    webhook_backoff_seconds: float = Field(2.0, ge=0, description="First retry delay; doubles each attempt.")
    webhook_backoff_max_seconds: float = Field(600.0, ge=0, description="Cap on one retry delay.")
    dry_run_cleanup_interval_seconds: float = Field(
        3600.0, gt=0, description="Beat schedule of dry-run retention cleanup."
    )
    audit_retention_days: float = Field(
        400.0, gt=0, description="Audit events (GET /v1/audit) older than this are deleted (hourly)."
    )
    metrics_push_exporters: str = Field(
        "", description="Comma-separated push exporters (webhook, datadog, pushgateway) fed after each run."
    )

    # Metrics push exporters (explicit `--option key=value` on the CLI overrides these).
    metrics_export_batch_size: int = Field(1000, ge=1, description="Rows read and exported per batch.")
    metrics_webhook_url: str | None = Field(None, description="Generic JSON webhook receiving run metrics.")
    metrics_webhook_secret: SecretStr | None = Field(None, description="HMAC-SHA256 key for X-IDR-Signature.")
    metrics_webhook_timeout_seconds: float = Field(10.0, gt=0, description="Per-request timeout.")
    metrics_webhook_max_attempts: int = Field(5, ge=1, description="Attempts per payload (timeouts and 5xx retry).")
    metrics_webhook_backoff_seconds: float = Field(0.5, ge=0, description="First retry delay; doubles each attempt.")
    metrics_webhook_backoff_max_seconds: float = Field(30.0, ge=0, description="Cap on one retry delay.")
    metrics_datadog_api_key: SecretStr | None = Field(None, description="DataDog API key (DD_API_KEY also works).")
    metrics_datadog_url: str = Field("https://api.datadoghq.com", description="DataDog API base URL (site).")
    metrics_datadog_tags: str = Field("", description="Extra comma-separated tags, e.g. 'env:prod,team:data'.")
    metrics_pushgateway_url: str | None = Field(None, description="Prometheus Pushgateway address.")
    metrics_pushgateway_job: str = Field("idr", description="Pushgateway job label.")
    metrics_pushgateway_instance: str = Field("", description="Pushgateway instance grouping label (optional).")
    ui_session_secret: SecretStr | None = Field(
        None,
        description="Key that signs the web console's session cookies. Unset: a random key per process "
        "(signing in again after a restart); set the same value on every API process behind one address.",
    )
    ui_session_hours: float = Field(12.0, gt=0, description="How long a web console sign-in lasts.")


@lru_cache
def get_settings() -> Settings:
    return Settings()
