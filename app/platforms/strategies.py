"""How a pipeline step is computed where platforms differ in what is fast or possible.

Each decision is a typed strategy object the adapter provides (``Adapter.strategies``), the
shape of SQLMesh's engine adapters: the portable default lives here, in canonical SQL every
platform runs; an override lives beside the adapter that wants it (DuckDB's:
``app/platforms/duckdb_strategies.py``). Default and override write the same tables
(tests/pipeline/test_strategies.py runs both on DuckDB and compares them), so the pipeline
never asks which platform it is on.

A strategy gets the values it computes from as typed arguments and sends its statements
through a ``StepRunner`` (the run context): it knows no idr configuration.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal, Protocol

from sqlglot import exp

# Survivorship strategies, as the configuration names them.
RECENCY, SOURCE_PRIORITY, MOST_FREQUENT = "RECENCY", "SOURCE_PRIORITY", "MOST_FREQUENT"


def lit(value: str) -> str:
    return exp.Literal.string(value).sql(dialect="duckdb")


class StepRunner(Protocol):
    """What a strategy needs of the run: send canonical SQL, name and drop its scratch tables."""

    def exec(self, sql: str, params: Any = None) -> None: ...

    def w(self, name: str) -> str: ...

    def drop(self, *names: str) -> None: ...


# ---------------------------------------------------------------------------- key rank
def table_prefixes(key_ranges: Sequence[tuple[str, str, str]]) -> list[tuple[str, int]] | None:
    """From each table's (table_id, smallest key, largest key), as extraction read them:
    [(table_id, length of the prefix all its keys share)] in key order, or None when two
    tables' key ranges overlap (a table id that is a prefix of another's keys)."""
    rows = sorted(key_ranges, key=lambda r: r[1])
    # Python compares str by code point: the same order as a bytewise UTF-8 compare.
    if any(prev[2] >= nxt[1] for prev, nxt in pairwise(rows)):
        return None
    return [(t, len(os.path.commonprefix([lo, hi]))) for t, lo, hi in rows]


class KeyRanker(Protocol):
    def rank(self, run: StepRunner, key_ranges: Sequence[tuple[str, str, str]]) -> None:
        """{w.key_rank}(eid, kr): each row of {w.entities} by its 1-based place in
        entity_key order. ``key_ranges``: each table's (table_id, smallest, largest key)."""
        ...


class SortedKeyRank:
    """Portable default: sort the whole keys."""

    def rank(self, run: StepRunner, key_ranges: Sequence[tuple[str, str, str]]) -> None:
        run.exec(
            f"CREATE TABLE {run.w('key_rank')} AS SELECT eid, row_number() OVER (ORDER BY entity_key) AS kr "
            f"FROM {run.w('entities')}"
        )


# ---------------------------------------------------------------------------- staging
class EntityStaging(Protocol):
    """How extraction stages the identifier rows."""

    def computed_once(self, name: str, select: str) -> str:
        """A CTE ``name`` over ``select`` whose expressions are evaluated once per row, even
        where a filter reads them (no predicate pushed into it)."""
        ...

    def identifier_rows(self, identifiers: str, raw: str, may_repeat: bool) -> tuple[str, str]:
        """(table to read, SQL of a row number unique per row of it, over alias ``x``) for
        the rows of ``identifiers``; ``raw`` holds the same rows when not ``may_repeat``
        ({w.identifiers} is then a view over it)."""
        ...


class PortableStaging:
    """Portable default: a plain CTE; a deterministic numbering by the rows' contents."""

    def computed_once(self, name: str, select: str) -> str:
        return f"{name} AS ({select})"

    def identifier_rows(self, identifiers: str, raw: str, may_repeat: bool) -> tuple[str, str]:
        return identifiers, "row_number() OVER (ORDER BY x.eid, x.type_no, x.value_norm)"


# ---------------------------------------------------------------------------- golden
@dataclass(frozen=True)
class GoldenAttr:
    """One golden-profile attribute: its column ``a{j}`` in {w.gsrc}, its survivorship
    strategy, and SQL over a {w.gsrc} row for its recency and source rank (lower wins,
    a dense position: < 2^16)."""

    j: int
    strategy: str
    recency: str
    rank: str


class GoldenBuilder(Protocol):
    def build(self, run: StepRunner, attrs: Sequence[GoldenAttr]) -> None:
        """{w.golden_new}(rid, v0, e0, ...) from {w.gsrc}(comp, kr, eid, table_id, record_ts,
        a0..) and {w.comp_ids}(comp, rid): per cluster in {w.gsrc}, attribute j's winning
        value in ``v{j}`` and its record's eid in ``e{j}`` (no row for a cluster without a
        value). A NULL never wins; ties fall to the next criterion, then to the smallest ``kr``."""
        ...


def pivot(attrs: Sequence[GoldenAttr], winners: str, won: Callable[[GoldenAttr], str], where: str) -> str:
    """SELECT rid, v0, e0, ... from the winning records: record x won attribute j where
    ``won(at)`` holds."""
    cols = ", ".join(
        f"max(CASE WHEN {won(at)} THEN x.a{at.j} END) AS v{at.j}, max(CASE WHEN {won(at)} THEN x.eid END) AS e{at.j}"
        for at in attrs
    )
    return f"SELECT k.rid, {cols} FROM {winners} WHERE {where} GROUP BY k.rid"


class WindowGolden:
    """Portable default: one ranked window per attribute, then one row per cluster."""

    def build(self, run: StepRunner, attrs: Sequence[GoldenAttr]) -> None:
        parts = []
        for at in attrs:
            col = f"a{at.j}"
            order = []
            freq = "1"
            if at.strategy == MOST_FREQUENT:
                freq = f"count(*) OVER (PARTITION BY comp, {col})"
                order.append("freq DESC")
            if at.strategy == SOURCE_PRIORITY:
                order.append(at.rank)
            order += [f"{at.recency} DESC NULLS LAST", at.rank, "kr"]
            parts.append(
                f"SELECT comp, {at.j} AS j, kr FROM (SELECT *, {freq} AS freq FROM {run.w('gsrc')} "
                f"WHERE {col} IS NOT NULL) AS x{at.j} "
                f"QUALIFY row_number() OVER (PARTITION BY comp ORDER BY {', '.join(order)}) = 1"
            )
        run.exec(f"CREATE TABLE {run.w('golden_k')} AS " + " UNION ALL ".join(parts))
        sql = pivot(
            attrs,
            f"{run.w('gsrc')} AS x JOIN {run.w('golden_k')} AS w ON w.comp = x.comp AND w.kr = x.kr "
            f"JOIN {run.w('comp_ids')} AS k ON k.comp = x.comp",
            lambda at: f"w.j = {at.j}",
            "TRUE",
        )
        run.exec(f"CREATE TABLE {run.w('golden_new')} AS {sql}")
        run.drop("golden_k")


# ---------------------------------------------------------------------------- components
# The connected-components solvers (app/pipeline/components.py): SQL rounds, one request
# each; the same rounds as one server-side loop; union-find in process.
ComponentsEngine = Literal["sql", "script", "unionfind"]


class ComponentsChoice(Protocol):
    def engine(self, server_loops: bool) -> ComponentsEngine:
        """The solver a run uses when the setting cc_engine is ``auto``; ``server_loops``:
        the platform runs scripts with loops in one request (``Adapter.server_loops``)."""
        ...


class SQLComponents:
    """Portable default: SQL rounds in the warehouse, as one server-side loop where the
    platform has one (no round trip per round)."""

    def engine(self, server_loops: bool) -> ComponentsEngine:
        return "script" if server_loops else "sql"


# ---------------------------------------------------------------------------- the set
@dataclass(frozen=True)
class Strategies:
    """The strategies an adapter provides; every field defaults to the portable one."""

    golden: GoldenBuilder = field(default_factory=WindowGolden)
    key_rank: KeyRanker = field(default_factory=SortedKeyRank)
    staging: EntityStaging = field(default_factory=PortableStaging)
    components: ComponentsChoice = field(default_factory=SQLComponents)


PORTABLE = Strategies()
