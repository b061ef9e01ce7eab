"""Databricks / Spark: a SparkSession (Spark clusters, local PySpark in tests) and the
databricks-sql-connector (SQL warehouses). Both run the Databricks dialect.

What differs, and how it is handled here (flags first, overrides second):
- parameters: named ``:name`` markers, bound by Spark (``spark.sql(args=...)``) or by the
  connector's native parameters; identifiers in backticks;
- DDL: no PRIMARY KEY (informational at best), plain Spark also no NOT NULL;
- ``ALTER TABLE ... RENAME TO`` gets a qualified target;
- ordered aggregates (``string_agg(x ORDER BY x)``): ``ARRAY_JOIN(ARRAY_SORT(COLLECT_LIST(x)))``
  because ``ARRAY_AGG ... ORDER BY`` silently loses its order on Databricks;
- plain Spark tables (no Delta: its jars cannot be fetched offline) have no DELETE or
  UPDATE: such a statement becomes "build the kept/updated rows into a new table, then
  ``INSERT OVERWRITE`` the original from it";
- no multi-statement transactions. A publish (``apply_changes``) and ``transaction()``
  stage every table the block writes
  in a shadow copy (reads inside the block see the shadows: read-your-writes), and only
  when the block succeeds replaces each written table from its shadow with
  ``INSERT OVERWRITE``. A failure anywhere inside the block leaves every table as it was.
  The replace step itself is one overwrite per table, each atomic on Delta, but not
  atomic *across* tables: a crash between two overwrites leaves some tables new. The
  run-state watermark is written in the same block, so a rerun (FULL, or INCR from the
  old watermark) converges; see README "Platforms".
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, ClassVar

from sqlglot import exp

from app.core import faults
from app.platforms.base import Params
from app.platforms.changes import Applied, ChangeSet
from app.platforms.transpiled import ANYWHERE, Bound, TranspilingAdapter, ddl_targets, dml_target, table_key


class SparkSQLAdapter(TranspilingAdapter):
    dialect = "databricks"
    param_style = "named"
    qualify_rename_target = True
    keep_primary_keys = False
    sort_ordered_aggregates = True
    window_needs_order = True
    native_dml: ClassVar[bool] = True  # DELETE / UPDATE on the platform's tables
    # SQL scripting (Spark 4 / Databricks): BEGIN ... END is one statement; its result is
    # the last statement's.
    batch_statements = True
    # SQL scripting has DECLARE / SET / WHILE (Spark 4, Databricks).
    server_loops = True

    def __init__(self, connect: Callable[[], Any]) -> None:
        super().__init__(connect)
        self._shadows: dict[tuple[str, str], exp.Table] | None = None
        self._shadow_tag = ""

    # ------------------------------------------------------------ planning
    def _table_columns(self, t: exp.Table) -> list[str]:
        """A table's columns for a rebuilt UPDATE, asked once per run (batched block): a
        catalog call is a round trip, and the run's history row is updated several times.
        A shadow (``_staged``) is a ``SELECT *`` copy: its table's columns are asked, so
        the held statements that made it need not be sent first. DDL on a table forgets
        its columns (``plan``)."""
        key = table_key(t)
        for orig, shadow in (self._shadows or {}).items():
            if table_key(shadow) == key:
                key = orig
        cache: dict[tuple[str, str], list[str]] = self.__dict__.setdefault("_cols_seen", {})
        if key not in cache or not self._batch_depth:
            cache[key] = self.columns(*key)
        return cache[key]

    def _end_batch(self) -> None:
        self.__dict__.pop("_cols_seen", None)

    def plan(self, e: exp.Expression) -> list[exp.Expression]:
        """One rewritten statement -> what the platform actually runs."""
        if self.__dict__.get("_cols_seen"):
            changed = ddl_targets(e)
            if ANYWHERE in changed:
                self._cols_seen.clear()
            for key in changed:
                self._cols_seen.pop(key, None)
        if self._shadows is not None:
            e = self._redirect(e)
        if not self.native_dml and isinstance(e, exp.Delete | exp.Update):
            return self._rebuild(e)
        return [e]

    def _redirect(self, e: exp.Expression) -> exp.Expression:
        assert self._shadows is not None
        target = dml_target(e)
        if target is not None and target.db and table_key(target) not in self._shadows:
            if isinstance(e, exp.Create | exp.Drop | exp.Alter):
                raise RuntimeError("DDL inside a transaction is not supported on Spark")
            shadow = exp.to_table(
                f"idr_work.{self._shadow_tag}_{table_key(target)[0]}_{table_key(target)[1]}", dialect=self.dialect
            )
            src = exp.Table(this=target.this.copy(), db=target.args["db"].copy())
            self._shadows[table_key(target)] = shadow
            self._send(exp.Create(this=shadow.copy(), kind="TABLE", expression=exp.select("*").from_(src)), {})
        if not any(table_key(t) in self._shadows for t in e.find_all(exp.Table) if t.db):
            return e
        e = e.copy()
        for t in list(e.find_all(exp.Table)):
            shadow = self._shadows.get(table_key(t)) if t.db else None
            if shadow is not None:
                t.set("this", shadow.this.copy())
                t.set("db", shadow.args["db"].copy())
        return e

    def _rebuild(self, e: exp.Delete | exp.Update) -> list[exp.Expression]:
        """DELETE/UPDATE without platform support: new rows into a scratch table, then
        INSERT OVERWRITE the original from it (Spark cannot overwrite a table it reads)."""
        target: exp.Table = e.this
        plain = exp.Table(this=target.this.copy(), db=target.args.get("db"))
        where = e.args.get("where")
        cond = exp.func("coalesce", where.this.copy(), exp.false()) if where else exp.true()
        if isinstance(e, exp.Delete):
            if where is None:
                return [exp.TruncateTable(expressions=[plain])]
            select = exp.select("*").from_(target.copy()).where(exp.not_(cond))
        else:
            if e.args.get("from"):
                raise RuntimeError("UPDATE ... FROM is not supported on plain Spark tables")
            sets = {eq.this.name.lower(): eq.expression for eq in e.expressions}
            cols = self._table_columns(plain)
            select = exp.select(
                *[
                    exp.alias_(exp.If(this=cond.copy(), true=sets[c].copy(), false=exp.column(c)), c)
                    if c in sets
                    else exp.column(c)
                    for c in cols
                ]
            ).from_(target.copy())
        tmp = exp.to_table(f"idr_work.tmp_{secrets.token_hex(6)}")
        return [
            exp.Create(this=tmp, kind="TABLE", expression=select),
            exp.Insert(this=plain.copy(), expression=exp.select("*").from_(tmp.copy()), overwrite=True),
            exp.Drop(tables=[tmp.copy()], kind="TABLE", exists=True),
        ]

    # ------------------------------------------------------------ execution
    def _send(self, e: exp.Expression, params: Mapping[str, Any], fetch: bool = False):
        return self._dispatch(e, params, fetch)

    def _join_script(self, texts: list[str]) -> str:
        return "BEGIN\n" + ";\n".join(texts) + ";\nEND"

    def execute(self, sql: str, params: Params = None) -> None:
        with self._lock:
            for e in self.statements(sql):
                for x in self.plan(e):
                    self._send(x, dict(params or {}))

    def fetch_with_columns(self, sql: str, params: Params = None) -> tuple[list[str], list[tuple]]:
        with self._lock:
            planned = [x for e in self.statements(sql) for x in self.plan(e)]
            for x in planned[:-1]:
                self._send(x, dict(params or {}))
            cols, rows = self._send(planned[-1], dict(params or {}), fetch=True)
            return [c.lower() for c in cols], [tuple(r) for r in rows]

    def _rewrite_ddl(self, e: exp.Create) -> None:
        super()._rewrite_ddl(e)
        # Spark accepts only deterministic column defaults: DEFAULT uuid() is dropped.
        for col in e.this.expressions:
            if isinstance(col, exp.ColumnDef):
                col.set(
                    "constraints",
                    [
                        c
                        for c in col.args.get("constraints") or []
                        if not (isinstance(c.kind, exp.DefaultColumnConstraint) and c.kind.find(exp.Uuid))
                    ],
                )

    def _execute_ast(self, e: exp.Expression, params: Mapping[str, Any]) -> None:
        with self._lock:
            for x in self.plan(e):
                self._send(x, params)

    def apply_changes(self, changes: ChangeSet) -> Applied:
        """Per-table swaps: every write goes to a shadow copy of its table, and once all of
        them (and the fence) passed, each written table is replaced from its shadow, one
        table at a time: a failure before the swaps changes nothing; one during them leaves
        some tables new (``atomic=False``, in the run's warnings)."""
        applied = Applied(atomic=False, how="per-table swaps")
        with self._lock:
            for check in changes.checks:
                check()
            with self._staged():
                writes = [*changes.writes, *changes.closing(applied)]
                for i, w in enumerate(writes):
                    if i == len(writes) // 2:
                        faults.reached("publish:half")
                    self.send_write(w)
                # Inside a run the writes are held: the fence is checked before they are
                # sent, with the swaps after them, as one request (``_staged``); it stays
                # held until that request ended (the caller's ``with fence``), as with
                # BigQuery's publish script. Outside one, every write has run by now.
                changes.fence()
                faults.reached("publish:commit")
        return applied

    def transaction(self) -> AbstractContextManager[None]:
        """No multi-statement transactions: the block's writes are staged and swapped in
        table by table (``_staged``)."""
        return self._staged()

    @contextmanager
    def _staged(self) -> Iterator[None]:
        with self._lock:
            if self._shadows is not None:  # nested: part of the outer block
                yield
                return
            self._shadows = {}
            self._shadow_tag = f"tx{secrets.token_hex(5)}"
            try:
                yield
            except BaseException:
                shadows, self._shadows = self._shadows, None
                self._drop_all(shadows.values())
                raise
            shadows, self._shadows = self._shadows, None
            # Everything is staged: now replace each written table from its shadow. Inside a
            # run the staged writes are still held, and the swaps join them in one request:
            # a script stops at its first error, so no table is replaced unless every staged
            # write succeeded. Outside a run each was sent (and succeeded) already.
            try:
                for i, ((db, name), shadow) in enumerate(shadows.items()):
                    if i == 1 and faults.armed("spark:replace"):
                        self.flush()  # the kill point is after the first swap has run
                    if i == 1:
                        faults.reached("spark:replace")
                    self._send(
                        exp.Insert(
                            this=exp.to_table(f"{db}.{name}"), expression=exp.select("*").from_(shadow), overwrite=True
                        ),
                        {},
                    )
                self._drop_all(shadows.values())
                self.flush()  # the block's outcome is known when it ends
            except BaseException:
                self._drop_all(shadows.values())  # a rerun repairs tables a failed swap left old
                raise

    def _drop_all(self, tables) -> None:
        for t in tables:
            self._send(exp.Drop(tables=[t.copy()], kind="TABLE", exists=True), {})

    def fingerprint_aggregate(self, cols: list[str]) -> str:
        return f"coalesce(sum(CAST(xxhash64({', '.join(cols)}) AS DECIMAL(38, 0))), 0)"


# ---------------------------------------------------------------------------- SparkSession
def local_spark_session(warehouse_dir: str | None = None, app_name: str = "idr", metastore_dir: str | None = None):
    """A local SparkSession tuned for many small statements (tests, single machine);
    ``metastore_dir``: a Hive catalog in an embedded Derby database there, so tables
    outlive the process (else the catalog is in memory)."""
    import tempfile

    from pyspark.sql import SparkSession

    wh = warehouse_dir or tempfile.mkdtemp(prefix="idr-spark-")
    Path(wh).mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder
    if metastore_dir:
        url = f"jdbc:derby:;databaseName={Path(metastore_dir).resolve() / 'metastore_db'};create=true"
        builder = builder.config("spark.hadoop.javax.jdo.option.ConnectionURL", url).enableHiveSupport()
    spark = (
        builder.master("local[2]")
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.warehouse.dir", wh)
        .config("spark.sql.catalogImplementation", "hive" if metastore_dir else "in-memory")
        .config("spark.sql.legacy.createHiveTableByDefault", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.codegen.wholeStage", "false")  # compile time dominates tiny queries
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def spark_session_factory(
    master: str | None = None, warehouse_dir: str | None = None, metastore_dir: str | None = None
) -> Callable[[], Any]:
    """The active SparkSession (spark-submit / a Databricks cluster), or a new one on
    ``master`` (``local[2]`` on one machine)."""

    def connect() -> Any:
        from pyspark.sql import SparkSession

        active = SparkSession.getActiveSession()
        if active is not None and master is None:
            return active
        if master is None or master.startswith("local"):
            return local_spark_session(warehouse_dir, metastore_dir=metastore_dir)
        builder = SparkSession.builder.master(master).appName("idr")
        if warehouse_dir:
            builder = builder.config("spark.sql.warehouse.dir", warehouse_dir)
        return builder.getOrCreate()

    return connect


def reset_spark_schemas(spark, schemas) -> None:
    for s in schemas:
        spark.sql(f"DROP DATABASE IF EXISTS `{s}` CASCADE")


class SparkSessionAdapter(SparkSQLAdapter):
    """Spark SQL through a SparkSession; plain (non-Delta) tables."""

    platform = "databricks"
    native_dml = False
    keep_not_null = False

    def _run(self, stmt: Bound, fetch: bool) -> tuple[list[str], list[tuple]]:
        self.count_round_trip()
        spark = self.conn
        # Every job this adapter starts is in its own job group, so interrupt() cancels
        # exactly them (other runs share the SparkContext).
        spark.sparkContext.setJobGroup(self._job_group, "idr run", interruptOnCancel=True)
        df = spark.sql(stmt.sql, args=stmt.params or None)
        if not fetch:
            return [], []
        return list(df.columns), [tuple(r) for r in df.collect()]

    @property
    def _job_group(self) -> str:
        group = getattr(self, "_group", None)
        if group is None:
            import secrets

            group = self._group = f"idr-{secrets.token_hex(6)}"
        return group

    def interrupt(self) -> bool:
        """Cancel the Spark jobs of the running statement (its job group)."""
        if self._conn is None:
            return False
        self._conn.sparkContext.cancelJobGroup(self._job_group)
        return True

    def close(self) -> None:
        self._conn = None  # the session belongs to whoever built the factory

    def columns(self, schema: str, table: str) -> list[str]:
        # Inside a run (batched block) a table's columns are asked once: its own DDL
        # forgets them (``plan``), and another process's DDL during a run is not expected.
        key = (schema.lower(), table.lower())
        seen: dict[tuple[str, str], list[str]] | None = self.__dict__.get("_cols_seen") if self._batch_depth else None
        if seen is not None and seen.get(key):
            return list(seen[key])
        self._flush_for(schema, table, exact=True)  # the catalog answers after held DDL ran
        spark = self.conn
        name = f"`{schema.replace('`', '``')}`.`{table.replace('`', '``')}`"
        # One catalog call (a statement on a remote Spark Connect / SQL warehouse session);
        # a missing schema or table is its error, not two more calls to ask first.
        self.count_round_trip()
        try:
            cols = [c.name.lower() for c in spark.catalog.listColumns(name)]
        except Exception as e:  # noqa: BLE001 - AnalysisException, or Spark Connect's own class
            if _not_found(e):
                return []
            raise
        if self._batch_depth:
            self.__dict__.setdefault("_cols_seen", {})[key] = cols
        return list(cols)

    def list_tables(self, schema: str, prefix: str = "", views: bool = False) -> list[str]:
        return [n for n, is_view in self.list_relations(schema, prefix) if is_view == views]

    def list_relations(self, schema: str, prefix: str = "") -> list[tuple[str, bool]]:
        self._flush_for(schema, prefix)
        spark = self.conn
        self.count_round_trip()
        try:
            tables = spark.catalog.listTables(schema)
        except Exception as e:  # noqa: BLE001 - see columns()
            if _not_found(e):
                return []
            raise
        return sorted(
            (t.name.lower(), t.tableType == "VIEW")
            for t in tables
            if not t.isTemporary and t.name.lower().startswith(prefix.lower())
        )


def _not_found(e: Exception) -> bool:
    """A catalog error that says the schema or table does not exist."""
    text = f"{getattr(e, 'getErrorClass', lambda: '')() or ''} {e}"
    return any(
        m in text for m in ("TABLE_OR_VIEW_NOT_FOUND", "SCHEMA_NOT_FOUND", "NoSuchTable", "NoSuchDatabase", "not found")
    )


# ---------------------------------------------------------------------------- SQL warehouse
def databricks_connector(params: dict[str, Any]) -> Callable[[], Any]:
    """Connection factory for databricks-sql-connector (server_hostname, http_path,
    access_token, catalog, schema...)."""

    def connect() -> Any:
        from databricks import sql as dbsql

        return dbsql.connect(**{k: v for k, v in params.items() if v not in (None, "")})

    return connect


class DatabricksSQLAdapter(SparkSQLAdapter):
    """A Databricks SQL warehouse through databricks-sql-connector (Delta tables: native
    DELETE/UPDATE; transactions as shadow tables, see the module docstring)."""

    platform = "databricks"
    native_dml = True

    def _run(self, stmt: Bound, fetch: bool) -> tuple[list[str], list[tuple]]:
        cur = self.conn.cursor()
        try:
            self.count_round_trip()
            cur.execute(stmt.sql, stmt.params)  # native named parameters (:name)
            if not fetch:
                return [], []
            cols = [d[0] for d in cur.description] if cur.description else []
            return cols, [tuple(r) for r in cur.fetchall()]
        finally:
            cur.close()

    def columns(self, schema: str, table: str) -> list[str]:
        rows = self.fetchall(
            "SELECT lower(column_name) FROM information_schema.columns WHERE table_schema = $s AND table_name = $t "
            "ORDER BY ordinal_position",
            {"s": schema.lower(), "t": table.lower()},
        )
        return [r[0] for r in rows]

    def list_tables(self, schema: str, prefix: str = "", views: bool = False) -> list[str]:
        rows = self.fetchall(
            "SELECT lower(table_name), table_type FROM information_schema.tables WHERE table_schema = $s ORDER BY 1",
            {"s": schema.lower()},
        )
        return [n for n, kind in rows if (str(kind).upper() == "VIEW") == views and n.startswith(prefix.lower())]
