"""Everything a stage needs: the adapter, the run's identity and config, scratch names."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.config.model import IdrConfig
from app.core.settings import Settings
from app.pipeline import sqltext
from app.pipeline.result import RunResult
from app.platforms.base import Adapter, Params

ProgressFn = Callable[[str, str], None]  # (stage_name, event: "start" | "end")


def new_run_id(dry_run: bool, now: datetime) -> str:
    prefix = "dry_run" if dry_run else "run"
    return f"{prefix}_{now:%Y%m%d_%H%M%S}_{secrets.token_hex(3)}"


@dataclass
class RunContext:
    adapter: Adapter
    config: IdrConfig
    settings: Settings
    result: RunResult
    tag: str
    now: datetime
    full: bool
    progress: ProgressFn | None = None
    # Facts stages hand to later stages (counts, flags).
    facts: dict[str, Any] = field(default_factory=dict)
    _work_tables: set[str] = field(default_factory=set)

    @property
    def run_id(self) -> str:
        return self.result.run_id

    @property
    def dry_run(self) -> bool:
        return self.result.dry_run

    def w(self, name: str) -> str:
        """Quoted run-scoped scratch table ``idr_work.<tag>_<name>``."""
        self._work_tables.add(name)
        return self.adapter.work_table(self.tag, name)

    # SQL helpers -------------------------------------------------------
    def stmt(self, stage: str, name: str) -> str:
        return sqltext.render(sqltext.load(self.settings.sql_dir, stage)[name], self.w)

    def run(self, stage: str, name: str, params: Params = None) -> None:
        # Canonical SQL: the adapter translates (and caches) for its platform.
        self.adapter.execute(self.stmt(stage, name), params)

    def q(self, stage: str, name: str, params: Params = None) -> list[tuple]:
        return self.adapter.fetchall(self.stmt(stage, name), params)

    def exec(self, sql: str, params: Params = None) -> None:
        self.adapter.execute(sql, params)

    def count(self, table_fqn: str) -> int:
        return int(self.adapter.scalar(f"SELECT count(*) FROM {table_fqn}") or 0)

    def drop(self, *names: str) -> None:
        """Drop scratch tables no later step reads (what stays alive decides whether a
        large run spills)."""
        for name in names:
            self.adapter.drop_table(self.w(name))

    def drop_work_tables(self) -> None:
        self.adapter.drop_work_tables(self.tag)


def utcnow() -> datetime:
    # Naive UTC: warehouse TIMESTAMP columns carry no zone.
    return datetime.now(UTC).replace(tzinfo=None)
