"""The one interface every warehouse adapter implements.

Pipeline code writes canonical SQL (DuckDB dialect, named ``$param`` placeholders)
and never asks which platform it runs on; an adapter transpiles, binds and executes.
Every statement-taking method (``execute``, ``fetch*``, ``scalar``, ``executemany``)
takes canonical SQL: translation happens inside the adapter, once per distinct text.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar, Protocol, runtime_checkable

import sqlglot
from sqlglot import exp

from app.core import faults
from app.platforms.changes import Applied, ChangeSet, OrderedInsert, Rows, Statement, Write
from app.platforms.strategies import PORTABLE, Strategies

Params = Mapping[str, Any] | None

_SAFE_TAG = re.compile(r"^[a-z0-9_]{1,40}$")
_PARAM = re.compile(r"\$([A-Za-z_]\w*)")


def used_params(sql: str, params: Params) -> dict[str, Any] | None:
    """Only the ``$name`` parameters the statement uses (drivers reject extras)."""
    if not params:
        return None
    names = set(_PARAM.findall(sql))
    return {k: v for k, v in params.items() if k in names} or None


@lru_cache(maxsize=4096)
def _transpile(sql: str, read: str, write: str) -> tuple[str, ...]:
    return tuple(sqlglot.transpile(sql, read=read, write=write))


@lru_cache(maxsize=8192)
def quote_ident(name: str, dialect: str = "duckdb") -> str:
    """Quote one identifier safely for ``dialect``."""
    return exp.to_identifier(name, quoted=True).sql(dialect=dialect)


@runtime_checkable
class ArrowExchange(Protocol):
    """An in-process engine that hands result columns to Python as numpy arrays and reads
    Arrow tables back by name (DuckDB): what the embedded fast paths need, typed, instead
    of a flag and untyped calls."""

    def numpy(self, sql: str, params: Params = None) -> dict[str, Any]: ...

    def register_arrow(self, name: str, table: Any) -> None: ...

    def unregister(self, name: str) -> None: ...


@dataclass(frozen=True)
class Assign:
    """``SET name = expr`` in a server-side script (``expr``: canonical SQL, may be a
    scalar subquery)."""

    name: str
    expr: str


@dataclass(frozen=True)
class While:
    """``WHILE condition DO body END WHILE`` in a server-side script (``condition``:
    canonical boolean SQL; it may read tables and the script's variables)."""

    condition: str
    body: tuple[ScriptStep, ...]


ScriptStep = str | Assign | While


@dataclass(frozen=True)
class Script:
    """A block of canonical statements with BIGINT variables and loops, sent as one
    request (``Adapter.fetch_script``); ``result`` is a canonical SELECT whose first row
    comes back. Variables are plain names in the statements (``idr_r``), so they must
    not be column names of the tables read."""

    variables: tuple[tuple[str, int], ...]
    steps: tuple[ScriptStep, ...]
    result: str
    params: Mapping[str, Any] = field(default_factory=dict)  # $name values of every statement


class Adapter(ABC):
    platform: ClassVar[str]
    dialect: ClassVar[str]
    canonical_dialect: ClassVar[str] = "duckdb"
    # How the steps where platforms differ are computed (golden profile, key rank, entity
    # staging): portable defaults; an adapter overrides the ones it computes better. An
    # instance may be given others (tests run the defaults on DuckDB).
    strategies: Strategies = PORTABLE
    # A read inside transaction() sees the database as the transaction does (BigQuery: the
    # transaction is one script sent when the block ends, so reads inside run before it).
    reads_in_transaction: ClassVar[bool] = True

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self._conn: Any = None
        # Requests sent to the warehouse (one per cursor call / job / catalog call, whatever
        # it carries): on a remote warehouse a run's cost is its round trips, not its rows.
        self.round_trips = 0

    def count_round_trip(self, n: int = 1) -> None:
        """Called once per request sent (the latency bench adds its delay here)."""
        self.round_trips += n

    # Several statements can travel as one request (a script / compound statement).
    batch_statements: ClassVar[bool] = False

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Inside, statements whose results nobody reads may be held and sent together with
        the next read (or when the block ends) as one request, where the platform can send
        several statements at once; elsewhere (in-process DuckDB, or a driver that takes one
        statement per call) each is sent as it comes. Order is kept; an error in a held
        statement surfaces at the read (or block end) that sends it."""
        yield

    # Server-side scripting with loops (BigQuery scripting, Spark 4 / Databricks SQL
    # scripting): a ``Script`` runs in one request however many times its loops turn.
    server_loops: ClassVar[bool] = False

    def fetch_script(self, script: Script) -> tuple[Any, ...] | None:
        """Run ``script`` in the warehouse as one request (with any held statements before
        it) and return the first row of its result. Only where ``server_loops``."""
        raise NotImplementedError(f"{self.platform} runs no server-side scripts")

    def flush(self) -> None:  # noqa: B027 - nothing is held unless an adapter batches
        """Send held statements now (see ``batched``)."""

    # ------------------------------------------------------------ connection
    @property
    def conn(self) -> Any:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def adopt(self, conn: Any) -> None:
        """Use ``conn``, one this adapter's factory made for an earlier adapter (a pooled
        connection), instead of connecting."""
        self._conn = conn

    def detach(self) -> Any:
        """Hand over the open connection (None if never connected); ``close`` then leaves it open."""
        conn, self._conn = self._conn, None
        return conn

    def interrupt(self) -> bool:
        """Stop the statement this adapter is running, from another thread (cancel, run
        timeout). The statement fails; an open transaction rolls back. False where the
        platform offers no way (the run then stops at its next stage boundary)."""
        return False

    def __enter__(self) -> Adapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ SQL
    def translate(self, sql: str) -> list[str]:
        """Canonical SQL text -> its single canonical statements, ready for ``execute``.

        Execution translates by itself, so this only splits a script; kept so callers
        that loop ``for s in translate(sql): execute(s)`` stay correct on every platform.
        """
        if self.dialect == self.canonical_dialect:
            return [sql]
        return [e.sql(dialect=self.canonical_dialect) for e in sqlglot.parse(sql, read=self.canonical_dialect) if e]

    def to_platform(self, sql: str) -> list[str]:
        """The platform's own SQL for canonical ``sql`` (what ``execute`` sends, unbound)."""
        if self.dialect == self.canonical_dialect:
            return [sql]
        return list(_transpile(sql, self.canonical_dialect, self.dialect))

    def ident(self, name: str) -> str:
        return quote_ident(name, self.canonical_dialect)

    def table(self, schema: str, name: str) -> str:
        return f"{self.ident(schema)}.{self.ident(name)}"

    def work_table(self, tag: str, name: str) -> str:
        """A run-scoped scratch table: concurrent runs never share one."""
        if not _SAFE_TAG.match(tag):
            raise ValueError(f"bad work tag {tag!r}")
        return self.table("idr_work", f"{tag}_{name}")

    @abstractmethod
    def execute(self, sql: str, params: Params = None) -> None: ...

    @abstractmethod
    def fetchall(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]: ...

    def fetchone(self, sql: str, params: Params = None) -> tuple[Any, ...] | None:
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Params = None) -> Any:
        row = self.fetchone(sql, params)
        return None if row is None else row[0]

    def fetch_dicts(self, sql: str, params: Params = None) -> list[dict[str, Any]]:
        cols, rows = self.fetch_with_columns(sql, params)
        return [dict(zip(cols, r, strict=True)) for r in rows]

    @abstractmethod
    def fetch_with_columns(self, sql: str, params: Params = None) -> tuple[list[str], list[tuple]]: ...

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            self.execute(sql, row)

    @abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All statements inside commit together or not at all."""

    @contextmanager
    def transaction_then(self, ddl: Callable[[], None]) -> Iterator[None]:
        """A transaction (the block) followed by ``ddl``, statements that CREATE / ALTER /
        DROP. Portable default: ``ddl`` runs after the commit, since on most warehouses DDL
        commits an open transaction early or is refused inside one; an adapter whose DDL
        takes part in transactions (DuckDB) runs it inside, so both commit together."""
        with self.transaction():
            yield
        ddl()

    # ------------------------------------------------------------ publish
    def apply_changes(self, changes: ChangeSet) -> Applied:
        """Apply a publish's change set in one transaction: the checks read inside it, the
        fence is checked last before the commit. Adapters without multi-statement
        transactions override this with the strongest form they have."""
        applied = Applied(atomic=True, how="one transaction")
        with self.transaction():
            for check in changes.checks:
                check()
            for i, w in enumerate(changes.writes):
                if i == len(changes.writes) // 2:
                    faults.reached("publish:half")
                self.send_write(w)
            changes.fence()
            for w in changes.closing(applied):
                self.send_write(w)
            faults.reached("publish:commit")
        return applied

    def send_write(self, w: Write) -> None:
        """One write of a change set, sent as its own statement(s)."""
        match w:
            case Statement():
                self.execute(w.sql, w.params)
            case Rows():
                self.executemany(w.sql, w.rows)
            case OrderedInsert():
                self.insert_ordered(w.table, w.select, w.order_by)

    @contextmanager
    def _session_transaction(self, run: Callable[[str], None], begin: str = "BEGIN") -> Iterator[None]:
        """BEGIN / COMMIT / ROLLBACK on a session that has real transactions; nested use joins
        the outer transaction. Needs ``self._lock`` (RLock) and ``self._tx_depth`` (int)."""
        with self._lock:  # type: ignore[attr-defined]
            if self._tx_depth:  # type: ignore[has-type]
                with self._join_open_transaction():
                    yield
                return
            self.count_round_trip()
            run(begin)
            self._tx_depth = 1
            try:
                yield
            except BaseException:
                self._rollback(run)
                raise
            self._tx_depth = 0
            self.count_round_trip()
            run("COMMIT")

    @contextmanager
    def _join_open_transaction(self) -> Iterator[None]:
        """A nested ``transaction()`` block: it joins the open one, which commits or rolls back."""
        self._tx_depth += 1  # type: ignore[has-type]
        try:
            yield
        finally:
            self._tx_depth -= 1

    def _rollback(self, run: Callable[[str], None]) -> None:
        """End the open transaction with ROLLBACK (``run`` sends a statement)."""
        self._tx_depth = 0
        self.count_round_trip()
        try:
            run("ROLLBACK")
        except Exception:  # noqa: BLE001 - a late interrupt (cancel, lost lease) may hit the rollback itself
            run("ROLLBACK")

    # ------------------------------------------------------------ catalog
    @abstractmethod
    def columns(self, schema: str, table: str) -> list[str]:
        """Column names of a table, lower-cased; [] if the table does not exist."""

    def table_exists(self, schema: str, table: str) -> bool:
        return bool(self.columns(schema, table))

    @abstractmethod
    def list_tables(self, schema: str, prefix: str = "", views: bool = False) -> list[str]:
        """Tables (or, with ``views``, views) in ``schema`` whose name starts with ``prefix``."""

    @abstractmethod
    def table_fingerprint(self, table_fqn: str) -> str:
        """Order-independent checksum of a table's whole content (row count + hash)."""

    def create_table_ordered(self, fqn: str, select: str, order_by: str) -> None:
        """CREATE TABLE ``fqn`` AS ``select``, its rows stored in ``order_by`` order where
        the platform keeps insertion order (then ``row_index_sql`` follows it); elsewhere a
        plain CTAS, since ``row_index_sql`` orders by entity_key itself."""
        self.execute(f"CREATE TABLE {fqn} AS {select}")

    def key_hash_sql(self, expr: str) -> str | None:
        """A stable BIGINT hash of a string expression, for idr_state.entity_lookup where
        this platform wants one (a point lookup by key is otherwise a scan); None: it does
        not (its own engine finds a key)."""
        return None

    def key_hash_version(self) -> str | None:
        """Names the function ``key_hash_sql`` computes: stored hashes are rebuilt when it
        changes (an engine upgrade may change its hash). None when there is no hash."""
        return None

    def insert_ordered(self, fqn: str, select: str, order_by: str) -> None:
        """INSERT INTO ``fqn`` ``select``, stored in ``order_by`` order where the platform
        keeps insertion order (its zone maps then prune lookups); elsewhere a plain insert."""
        self.execute(f"INSERT INTO {fqn} {select}")

    def sha256_hex_sql(self, expr: str) -> str:
        """Canonical SQL: the lower-case hex SHA-256 of a VARCHAR expression's UTF-8 bytes."""
        return f"sha256({expr})"

    def row_index_sql(self) -> str:
        """0..n-1 over the rows of a freshly created scratch table (in a SELECT from it)."""
        return "(row_number() OVER (ORDER BY entity_key) - 1)"

    def drop_table(self, fqn: str) -> None:
        self.execute(f"DROP TABLE IF EXISTS {fqn}")

    def release_columns(self, fqn: str, columns: Sequence[str]) -> bool:
        """Drop columns of a scratch table that no later step reads, where that frees their
        memory at once (views over the table must then be re-created). False: kept, since
        on a warehouse it is a round trip that frees nothing the run needs."""
        return False

    def drop_relation(self, fqn: str, view: bool = False) -> None:
        """Drop a scratch table or view; ``view`` says which to try first (no catalog
        lookup: a round trip on remote warehouses)."""
        kinds = ("VIEW", "TABLE") if view else ("TABLE", "VIEW")
        try:
            self.execute(f"DROP {kinds[0]} IF EXISTS {fqn}")
        except Exception:  # noqa: BLE001 - the other kind of relation under that name
            self.execute(f"DROP {kinds[1]} IF EXISTS {fqn}")

    def list_relations(self, schema: str, prefix: str = "") -> list[tuple[str, bool]]:
        """(name, is_view) of the tables and views in ``schema`` whose name starts with
        ``prefix``; adapters whose catalog answers both in one request override this."""
        return [(n, False) for n in self.list_tables(schema, prefix)] + [
            (n, True) for n in self.list_tables(schema, prefix, views=True)
        ]

    def list_work_tables(self, tag: str) -> list[str]:
        """Names (without the tag) of one run's scratch tables and views that exist now."""
        return sorted(n[len(tag) + 1 :] for n, _ in self.list_relations("idr_work", f"{tag}_"))

    def drop_work_tables(self, tag: str) -> None:
        """Drop every scratch table and view of one run (views first: they read tables)."""
        found = self.list_relations("idr_work", f"{tag}_")
        for name, _ in (r for r in found if r[1]):
            self.execute(f"DROP VIEW IF EXISTS {self.table('idr_work', name)}")
        for name, _ in (r for r in found if not r[1]):
            self.drop_table(self.table("idr_work", name))
