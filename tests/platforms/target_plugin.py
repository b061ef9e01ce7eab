"""A third-party target model, as a package would register it (tests/platforms/test_targets.py)."""

from __future__ import annotations

from typing import Literal

from app.core.targets import TargetModel
from app.platforms.duckdb import DuckDBAdapter


class EchoTarget(TargetModel):
    platform: Literal["echo"]
    file: str

    def build_adapter(self, settings):
        return DuckDBAdapter.from_path(self.file, settings)

    def duckdb_file(self, settings) -> str | None:
        return self.file
