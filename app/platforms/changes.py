"""A publish as an explicit change set: every write, in order, with the checks that must
hold when it commits. The adapter applies it in the strongest way its platform allows
(``Adapter.apply_changes``) and says how: one transaction (DuckDB, Snowflake), one
multi-statement script (BigQuery), or each written table staged and then swapped in
(Spark / Databricks: ``atomic=False``, reported in the run's warnings)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Statement:
    """One canonical DML statement (``$name`` parameters)."""

    sql: str
    params: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Rows:
    """One single-row ``INSERT ... VALUES`` statement, once per row."""

    sql: str
    rows: Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class OrderedInsert:
    """INSERT INTO ``table`` ``select``, stored in ``order_by`` order where the platform
    keeps insertion order (``Adapter.insert_ordered``)."""

    table: str
    select: str
    order_by: str


Write = Statement | Rows | OrderedInsert


@dataclass(frozen=True)
class Applied:
    """How a change set was applied: ``atomic`` when every write commits together or none."""

    atomic: bool
    how: str


def _nothing() -> None:
    return None


@dataclass
class ChangeSet:
    """``checks`` run first (they may read, and raise to stop the publish with nothing
    written); ``writes`` follow in order; ``fence`` runs last before the commit (the run
    still holds its right to publish); ``closing`` gives the writes that record the outcome,
    told how the set is applied (the run's history row carries the warning of a
    non-atomic publish)."""

    writes: list[Write] = field(default_factory=list)
    checks: list[Callable[[], None]] = field(default_factory=list)
    fence: Callable[[], None] = _nothing
    closing: Callable[[Applied], Sequence[Write]] = lambda applied: ()

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self.writes.append(Statement(sql, params))

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self.writes.append(Rows(sql, list(rows)))

    def insert_ordered(self, table: str, select: str, order_by: str) -> None:
        self.writes.append(OrderedInsert(table, select, order_by))
