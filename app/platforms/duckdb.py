"""DuckDB: the embedded default and the reference every other platform must match."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

from app.core.settings import Settings, get_settings
from app.platforms.base import Adapter, Params, used_params
from app.platforms.duckdb_strategies import DUCKDB


def duckdb_connector(path: str, settings: Settings | None = None):
    """A connection factory (adapters get factories, never connections)."""
    settings = settings or get_settings()

    def connect() -> duckdb.DuckDBPyConnection:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = duckdb.connect(path)
        limit = settings.duckdb_memory_limit or default_memory_limit()
        tmp = settings.duckdb_temp_directory or (f"{path}.tmp" if path != ":memory:" else None)
        sets = [f"SET memory_limit = {_lit(limit)}", "SET preserve_insertion_order = false"]
        if tmp:
            sets.append(f"SET temp_directory = {_lit(tmp)}")
        if settings.duckdb_threads:
            sets.append(f"SET threads = {int(settings.duckdb_threads)}")
        optional = [_keep_blocks_sql(settings.duckdb_block_memory or limit), _SAFE_OPTIMIZERS]
        if settings.duckdb_string_compression == "uncompressed":
            optional.append(_FAST_STRINGS)
        elif settings.duckdb_string_compression == "zstd" and _has_zstd(conn):
            optional.append(_ZSTD_STRINGS)
        if not settings.duckdb_vacuum:
            optional.append(_NO_VACUUM)
        try:  # one call: the service opens a connection per request
            conn.execute("; ".join(sets + optional))
        except duckdb.Error:
            for s in sets:
                conn.execute(s)
            # An older DuckDB lacks some of these; a database this process already has open
            # keeps its block memory (it cannot shrink while open): each is then left as is.
            for s in optional:
                with contextlib.suppress(duckdb.Error):
                    conn.execute(s)
        return conn

    return connect


def _lit(value: str) -> str:
    return exp.Literal.string(value).sql(dialect="duckdb")


# cgroup v2, then v1: a container's limit, which the machine's page count does not show.
_CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


# Engine v2's integer state keeps a 10M-record FULL run's working set near this; more
# memory barely speeds it up (bench/README.md), and the process stays a good neighbour.
DEFAULT_MEMORY_CAP = 3 << 30


@functools.cache
def default_memory_limit(cgroup_files: tuple[str, ...] = _CGROUP_LIMITS) -> str:
    """3 GiB, or 60% of the memory this process may use where that is less (a small
    machine or container, where the process would be killed instead of spilling). The
    rest is for the service itself, the union-find's arrays and the OS file cache."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for f in cgroup_files:
        with contextlib.suppress(OSError, ValueError):
            total = min(total, int(Path(f).read_text().strip()))  # 'max' (no limit) is a ValueError
    return f"{max(min(total * 6 // 10, DEFAULT_MEMORY_CAP) >> 20, 256)}MB"


def _keep_blocks_sql(size: str) -> str:
    """Keep freed buffer blocks for reuse. A run's steps each build large scratch tables
    and drop them; returned to the OS, that memory is faulted in again by the next step,
    which costs the kernel more than the step's own work on VMs that hand freed guest
    memory back to their host (the benchmark VM: 2.5 s per GiB; a FULL run on 10M records
    spent 10-15 s of system time instead of 13-20 s)."""
    return f"SET block_allocator_memory = {_lit(size)}"


# Store strings without DICT_FSST (opt-in, IDR_DUCKDB_COMPACT_STRINGS=false): DuckDB 1.3+
# writes strings as DICT_FSST, whose encoding is most of the cost of writing the state.
_FAST_STRINGS = "SET disabled_compression_methods = 'dict_fsst'"

# ZSTD for every string column (other types keep DuckDB's choice): DICT_FSST's analysis
# and encoding were most of the CPU of writing the state tables (bench/README.md), for a
# file only somewhat smaller.
_ZSTD_STRINGS = "SET force_compression = 'zstd'"
_ZSTD_SINCE = (1, 2)


def _has_zstd(conn: duckdb.DuckDBPyConnection) -> bool:
    """The database's storage format has ZSTD strings (DuckDB 1.2+). An older format would
    take the forced codec as 'uncompressed' instead, a much larger file."""
    try:
        row = conn.execute(
            "SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchone()
    except duckdb.Error:  # a DuckDB without the tag
        return False
    version = row[0] if row else None
    if isinstance(version, list):  # older DuckDBs answer a map lookup with a list
        version = version[0] if version else None
    found = re.match(r"v(\d+)\.(\d+)", version or "")
    return bool(found) and (int(found[1]), int(found[2])) >= _ZSTD_SINCE

# DuckDB's common-subplan optimizer returns wrong rows on 1.5.1-2.0.1 when two arms of a
# UNION read different columns of the same join (duckdb#25819), as a query over both ends
# of identity_edges_current does (tests/platforms/test_duckdb_storage.py).
_SAFE_OPTIMIZERS = "SET disabled_optimizers = 'common_subplan'"

# No vacuum tasks at checkpoints (see the setting). DuckDB otherwise merges row groups
# holding deleted rows, rewriting them: after a 1% INCR that touches most row groups of
# every state table, that was up to 1.7 s of a 2.5 s run at 1M records. Row groups whose
# rows are all deleted are still dropped, so a FULL run's rewrite reclaims the space.
_NO_VACUUM = "SET max_vacuum_tasks = 0"


# Scratch tables are DuckDB TEMP tables: kept in memory (spilling to temp_directory), never
# written to the database file, private to the run's connection, gone if the process dies.
# Writing them to the file costs about five times as much.
_TEMP_CREATE = re.compile(r"\bCREATE\s+(TABLE|VIEW)\s+(?=temp\.main\.)", re.IGNORECASE)


def _temp_ddl(sql: str) -> str:
    return _TEMP_CREATE.sub(r"CREATE TEMP \1 ", sql, count=1) if "temp.main." in sql else sql


class DuckDBAdapter(Adapter):
    platform = "duckdb"
    dialect = "duckdb"
    strategies = DUCKDB

    def __init__(self, connect) -> None:
        super().__init__(connect)
        self._lock = threading.RLock()
        self._tx_depth = 0

    @classmethod
    def from_path(cls, path: str, settings: Settings | None = None) -> DuckDBAdapter:
        return cls(duckdb_connector(path, settings))

    def work_table(self, tag: str, name: str) -> str:
        super().work_table(tag, name)  # validates the tag
        return f"temp.main.{self.ident(f'{tag}_{name}')}"

    def row_index_sql(self) -> str:
        # A fresh table's rowid already runs 0..n-1: free, where a window costs a pass.
        return "rowid"

    def key_hash_sql(self, expr: str) -> str | None:
        # hash() is many times cheaper than md5 over every key of a FULL run; a parameter's
        # hash is folded to a constant, so the sorted table's zone maps prune.
        return f"CAST(hash({expr}) >> 1 AS BIGINT)"

    def key_hash_version(self) -> str | None:
        # DuckDB does not promise hash() is stable across releases: its version names it.
        return f"duckdb hash() {duckdb.__version__}"

    def insert_ordered(self, fqn: str, select: str, order_by: str) -> None:
        with self._lock:
            self.count_round_trip(2)
            self.conn.execute("SET preserve_insertion_order = true")
            try:
                self.execute(f"INSERT INTO {fqn} {select} ORDER BY {order_by}")
            finally:
                self.conn.execute("SET preserve_insertion_order = false")

    def release_columns(self, fqn: str, columns: Sequence[str]) -> bool:
        # A dropped column's segments are freed at once and the others are shared, not
        # copied; rowids stay. At 10M records the raw identifier columns are most of the
        # sources' memory, which the grouping after them otherwise spills around.
        for c in columns:
            self.execute(f"ALTER TABLE {fqn} DROP COLUMN {self.ident(c)}")
        return True

    def create_table_ordered(self, fqn: str, select: str, order_by: str) -> None:
        # Connections run with preserve_insertion_order off (faster, less memory); this one
        # statement needs it, so that rowid follows the ORDER BY.
        with self._lock:
            self.count_round_trip(2)
            self.conn.execute("SET preserve_insertion_order = true")
            try:
                self.execute(f"CREATE TABLE {fqn} AS {select} ORDER BY {order_by}")
            finally:
                self.conn.execute("SET preserve_insertion_order = false")

    def drop_work_tables(self, tag: str) -> None:
        for kind, fn in (("VIEW", "duckdb_views"), ("TABLE", "duckdb_tables")):
            names = self.fetchall(
                f"SELECT {'view_name' if kind == 'VIEW' else 'table_name'} FROM {fn}() "
                f"WHERE temporary AND starts_with({'view_name' if kind == 'VIEW' else 'table_name'}, $p)",
                {"p": f"{tag}_"},
            )
            for (n,) in names:
                self.execute(f"DROP {kind} IF EXISTS temp.main.{self.ident(n)}")
        super().drop_work_tables(tag)  # scratch tables of older versions lived in idr_work

    def list_work_tables(self, tag: str) -> list[str]:
        rows = self.fetchall(
            "SELECT table_name FROM duckdb_tables() WHERE temporary AND starts_with(table_name, $p) "
            "UNION ALL SELECT view_name FROM duckdb_views() WHERE temporary AND starts_with(view_name, $p)",
            {"p": f"{tag}_"},
        )
        return sorted(r[0][len(tag) + 1 :] for r in rows)

    def interrupt(self) -> bool:
        conn = self._conn  # never connect here, and never wait for the statement's lock
        if conn is None:
            return False
        conn.interrupt()
        return True

    def execute(self, sql: str, params: Params = None) -> None:
        sql = _temp_ddl(sql)
        with self._lock:
            self.count_round_trip()
            self.conn.execute(sql, used_params(sql, params))

    def fetch_with_columns(self, sql: str, params: Params = None) -> tuple[list[str], list[tuple]]:
        with self._lock:
            self.count_round_trip()
            cur = self.conn.execute(sql, used_params(sql, params))
            cols = [d[0] for d in cur.description] if cur.description else []
            return cols, cur.fetchall()

    def fetchall(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        return self.fetch_with_columns(sql, params)[1]

    def executemany(self, sql, rows) -> None:
        if not rows:
            return
        with self._lock:
            self.count_round_trip()
            self.conn.executemany(sql, [used_params(sql, r) or {} for r in rows])

    def arrow(self, sql: str, params: Params = None):
        with self._lock:
            self.count_round_trip()
            rel = self.conn.sql(sql, params=used_params(sql, params))
            # duckdb 2.x renamed fetch_arrow_table -> to_arrow_table
            fetch = getattr(rel, "to_arrow_table", None) or rel.fetch_arrow_table
            return fetch()

    def numpy(self, sql: str, params: Params = None) -> dict[str, Any]:
        """Columns as numpy arrays, straight from DuckDB's vectors."""
        with self._lock:
            self.count_round_trip()
            return self.conn.sql(sql, params=used_params(sql, params)).fetchnumpy()

    def register_arrow(self, name: str, table) -> None:
        """A relation DuckDB scans in place: an Arrow table or a dict of numpy columns."""
        self.conn.register(name, table)

    def unregister(self, name: str) -> None:
        self.conn.unregister(name)

    def transaction(self):
        return self._session_transaction(self.conn.execute, "BEGIN TRANSACTION")

    @contextlib.contextmanager
    def transaction_then(self, ddl: Callable[[], None]) -> Iterator[None]:
        """DDL takes part in DuckDB's transactions: ``ddl`` commits with the block."""
        with self.transaction():
            yield
            ddl()

    def table_fingerprint(self, table_fqn: str) -> str:
        from app.platforms.names import parse_table_fqn

        fqn = parse_table_fqn(table_fqn).sql(dialect="duckdb", identify=True)
        n, h = self.fetchone(f"SELECT count(*), sum(hash(t)) FROM {fqn} AS t") or (0, 0)
        return f"{n}:{h}"

    def columns(self, schema: str, table: str) -> list[str]:
        rows = self.fetchall(
            "SELECT lower(column_name) FROM information_schema.columns "
            "WHERE table_schema = $s AND table_name = $t ORDER BY ordinal_position",
            {"s": schema, "t": table},
        )
        return [r[0] for r in rows]

    def list_tables(self, schema: str, prefix: str = "", views: bool = False) -> list[str]:
        rows = self.fetchall(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $s "
            "AND starts_with(table_name, $p) AND (table_type = 'VIEW') = $v ORDER BY table_name",
            {"s": schema, "p": prefix, "v": views},
        )
        return [r[0] for r in rows]
