"""Everything a step needs: the adapter, the run's identity, config and state, scratch names."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from app.config.model import IdrConfig
from app.core import faults
from app.core.run_record import RunResult
from app.core.settings import Settings
from app.pipeline import sqltext
from app.pipeline.plan import RunKind
from app.pipeline.state import RunState
from app.platforms.base import Adapter, Params

ProgressFn = Callable[[str, str], None]  # (stage_name, event: "start" | "end")


class Fence:
    """The run's right to publish, checked inside the publish transaction (``check``, last
    before commit) and held until that transaction ended (``with fence, transaction``: the
    fence's exit runs after the commit or rollback). This one always holds: a run that no
    service records (a bare pipeline call). The service's lease is app.services.execution."""

    def __enter__(self) -> Fence:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def check(self) -> None:
        return None


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
    kind: RunKind
    progress: ProgressFn | None = None
    fence: Fence = field(default_factory=Fence)
    state: RunState = field(default_factory=RunState)
    round_trips_at_start: int = 0
    # run_history's columns (an install `idr init` has not upgraded lacks the newest).
    history_columns: frozenset[str] | None = None

    def count_statements(self) -> None:
        """The run's round trips so far, plus the run_history write about to record them."""
        self.result.statements = self.adapter.round_trips - self.round_trips_at_start + 1

    @property
    def run_id(self) -> str:
        return self.result.run_id

    @property
    def dry_run(self) -> bool:
        return self.kind.dry_run

    @property
    def full(self) -> bool:
        return self.kind.full

    def w(self, name: str) -> str:
        """Quoted run-scoped scratch table ``idr_work.<tag>_<name>``."""
        return self.adapter.work_table(self.tag, name)

    # SQL helpers -------------------------------------------------------
    def stmt(self, ref: str, tables: dict[str, str] | None = None) -> str:
        """Canonical text of ``file.statement`` (sql/stages/<file>.sql); ``tables`` renames
        the statement's scratch tables (a loop's per-round tables)."""
        file, name = ref.split(".", 1)
        renamed = tables or {}
        return sqltext.render(
            sqltext.load(self.settings.sql_dir, file)[name], lambda t: self.w(renamed.get(t, t))
        )

    def run(self, ref: str, params: Params = None, tables: dict[str, str] | None = None) -> None:
        faults.reached(f"sql:{ref}")
        # Canonical SQL: the adapter translates (and caches) for its platform.
        self.adapter.execute(self.stmt(ref, tables), params)

    def exec(self, sql: str, params: Params = None) -> None:
        self.adapter.execute(sql, params)

    def scalar(self, sql: str, params: Params = None) -> int:
        return int(self.adapter.scalar(sql, params) or 0)

    def count(self, table_fqn: str) -> int:
        return self.scalar(f"SELECT count(*) FROM {table_fqn}")

    def scalars(self, queries: dict[str, str], params: Params = None) -> dict[str, int]:
        """Several scalar queries in one read (one round trip): name -> value (0 for NULL)."""
        cols = ", ".join(f"({q}) AS {self.adapter.ident(n)}" for n, q in queries.items())
        row = self.adapter.fetchone(f"SELECT {cols}", params) or ()
        return {n: int(v or 0) for n, v in zip(queries, row, strict=False)}

    def drop(self, *names: str) -> None:
        for name in names:
            self.adapter.drop_table(self.w(name))

    def drop_work_tables(self) -> None:
        self.adapter.drop_work_tables(self.tag)


def utcnow() -> datetime:
    # Naive UTC: warehouse TIMESTAMP columns carry no zone.
    return datetime.now(UTC).replace(tzinfo=None)
