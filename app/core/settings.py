"""All settings, read once from the environment (prefix ``IDR_``) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IDR_", env_file=".env", extra="ignore")

    # Warehouse (embedded default).
    duckdb_path: str = Field("idr.duckdb", description="DuckDB database file of the embedded warehouse.")
    duckdb_memory_limit: str = Field(
        "8GB", description="DuckDB memory_limit; larger runs spill to duckdb_temp_directory."
    )
    duckdb_temp_directory: str | None = Field(None, description="Where DuckDB spills; default: '<duckdb_path>.tmp'.")
    duckdb_threads: int | None = Field(None, description="DuckDB threads; default: all cores.")

    # Pipeline.
    max_cc_rounds: int = Field(
        64, description="Cap on connected-component rounds; hitting it fails the run (never a wrong result)."
    )
    sql_dir: Path = Field(REPO_ROOT / "sql", description="Folder holding the stage SQL.")


@lru_cache
def get_settings() -> Settings:
    return Settings()
