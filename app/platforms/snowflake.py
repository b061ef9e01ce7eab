"""Snowflake through snowflake-connector-python (4.x).

What differs from the canonical SQL, all declared as flags of ``TranspilingAdapter``:
- identifiers: every name is upper-cased and quoted, which is what an unquoted name
  means in Snowflake, so ``idr_out.identity_clusters_current`` created by idr and the
  same name typed by a user in a worksheet are one table;
- parameters: ``qmark`` with server-side binding (no client-side interpolation);
- ``regexp_replace(x, p, r, 'g')``: Snowflake replaces every match by default and would
  read DuckDB's ``'g'`` as a position, so the flag is dropped;
- ``ALTER TABLE ... RENAME TO`` needs a qualified target (else it moves the table to
  the session's current schema);
- transactions: ``BEGIN`` / ``COMMIT`` / ``ROLLBACK``. Snowflake commits implicitly
  on DDL, so nothing inside ``transaction()`` may be DDL (publish and config apply
  are DML only); DDL inside a transaction is refused to keep that true;
- several statements per request: inside ``batched()`` (a run), statements whose results
  nobody reads are held and sent with the next read as one multi-statement request
  (``cursor.execute(text, num_statements=N)``: Snowflake runs them in order, stops at the
  first error, and the read's result is the last statement's, fetched by its query id).
  ``BEGIN`` and ``COMMIT`` travel with the statements held before them. Values of held
  statements are inlined as sqlglot-built literals (decision 0014).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlglot import exp

from app.platforms.transpiled import Bound, TranspilingAdapter, statement_kind


def snowflake_connector(params: dict[str, Any]) -> Callable[[], Any]:
    """Connection factory. ``params`` are snowflake.connector.connect keyword arguments
    (account, user, password or private_key_file, database, warehouse, role, host...)."""

    def connect() -> Any:
        import snowflake.connector  # looked up at call time: fakesnow patches it

        kwargs = {k: v for k, v in params.items() if v not in (None, "")}
        kwargs["paramstyle"] = "qmark"
        kwargs.setdefault("autocommit", True)
        return snowflake.connector.connect(**kwargs)

    return connect


class SnowflakeAdapter(TranspilingAdapter):
    platform = "snowflake"
    dialect = "snowflake"
    param_style = "qmark"
    upper_identifiers = True
    qualify_rename_target = True
    # Multi-statement requests (MULTI_STATEMENT_COUNT / num_statements): one round trip
    # carries the statements held since the last read.
    batch_statements = True

    def __init__(self, connect: Callable[[], Any]) -> None:
        super().__init__(connect)
        self._tx_depth = 0

    def _rewrite_node(self, node: exp.Expression) -> exp.Expression:
        node = super()._rewrite_node(node)
        if isinstance(node, exp.RegexpReplace) and node.args.get("single_replace") and not node.args.get("modifiers"):
            # DuckDB's single-replace default no longer applies once 'g' was dropped.
            node.set("single_replace", None)
        return node

    def _refuse_ddl_in_transaction(self, stmt: Bound) -> None:
        if self._tx_depth and stmt.kind == "ddl":
            raise RuntimeError("DDL inside a Snowflake transaction would commit it implicitly")

    def _join_script(self, texts: list[str]) -> str:
        return ";\n".join(texts)

    def _dispatch(self, e: exp.Expression, params: Mapping[str, Any], fetch: bool) -> tuple[list[str], list[tuple]]:
        # A held statement reaches _run only inside a joined request: check it here.
        if self._tx_depth and statement_kind(e) == "ddl":
            raise RuntimeError("DDL inside a Snowflake transaction would commit it implicitly")
        return super()._dispatch(e, params, fetch)

    def _run(self, stmt: Bound, fetch: bool) -> tuple[list[str], list[tuple]]:
        self._refuse_ddl_in_transaction(stmt)
        cur = self.conn.cursor()
        self._running = cur
        try:
            self.count_round_trip()
            if stmt.statements > 1:
                # The exact count: a request split differently than intended fails instead
                # of running something else.
                cur.execute(stmt.sql, stmt.params, num_statements=stmt.statements)
                if fetch:  # the cursor holds the first statement's result; ours is the last's
                    cur.query_result(cur.multi_statement_savedIds[-1])
            else:
                cur.execute(stmt.sql, stmt.params)
            if not fetch:
                return [], []
            cols = [d[0] for d in cur.description] if cur.description else []
            return cols, cur.fetchall()
        finally:
            self._running = None
            cur.close()

    def interrupt(self) -> bool:
        """Abort the running query (SYSTEM$CANCEL_QUERY on its query id, from a second cursor)."""
        cur = getattr(self, "_running", None)
        qid = getattr(cur, "sfqid", None) if cur is not None else None
        if not qid or self._conn is None:
            return False
        try:
            # Bound the way this adapter's connections bind (paramstyle qmark, snowflake_connector):
            # a pyformat '%(q)s' reached the server unbound, failed, and cancelled nothing.
            self._conn.cursor().execute("SELECT SYSTEM$CANCEL_QUERY(?)", [qid])
        except Exception:  # noqa: BLE001 - e.g. the query just ended; the stage boundary still stops the run
            return False
        return True

    def _send_with_held(self, text: str) -> None:
        """``text`` (BEGIN / COMMIT) as one request with the statements held before it."""
        texts = [*self._take_pending(), text]
        self._run(Bound(self._join_script(texts), None, "other", statements=len(texts)), False)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN ... COMMIT in this session; nested use joins the outer transaction. Inside a
        run's ``batched`` block the block's writes are held and travel with its reads or its
        COMMIT; if the block raises they are dropped unsent and the transaction rolls back."""
        with self._lock:
            if self._tx_depth:
                with self._join_open_transaction():
                    yield
                return
            # Held, BEGIN travels with the block's first read (or its COMMIT).
            held, mark, sent = self._holding(), len(self._pending), self.round_trips
            if held:
                self._pending.append("BEGIN")
            else:
                self._send_with_held("BEGIN")
            self._tx_depth = 1
            try:
                yield
                self._tx_depth = 0
                self._send_with_held("COMMIT")
            except BaseException:
                self._tx_depth = 0
                if held and self.round_trips == sent:
                    # Nothing of the block was sent: drop its statements, keep those before it.
                    del self._pending[mark:]
                    raise
                self._take_pending()  # dropped: the transaction they belong to rolls back
                self._rollback(lambda sql: self.conn.cursor().execute(sql))
                raise

    # ------------------------------------------------------------ catalog
    def columns(self, schema: str, table: str) -> list[str]:
        rows = self.fetchall(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = $s AND table_name = $t "
            "ORDER BY ordinal_position",
            {"s": schema.upper(), "t": table.upper()},
        )
        return [str(r[0]).lower() for r in rows]

    def list_tables(self, schema: str, prefix: str = "", views: bool = False) -> list[str]:
        return [n for n, is_view in self.list_relations(schema, prefix) if is_view == views]

    def list_relations(self, schema: str, prefix: str = "") -> list[tuple[str, bool]]:
        rows = self.fetchall(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = $s ORDER BY table_name",
            {"s": schema.upper()},
        )
        kinds = {"VIEW": True, "BASE TABLE": False}
        return [
            (str(n).lower(), kinds[str(k).upper()])
            for n, k in rows
            if str(k).upper() in kinds and str(n).lower().startswith(prefix.lower())
        ]


class SnowparkAdapter(SnowflakeAdapter):
    """Snowflake through a Snowpark session: inside a stored procedure, the session the
    procedure is called with (``app.inwarehouse.snowflake``). The SQL is the Snowflake
    adapter's; only how a statement is sent differs (``session.sql(text, params).collect()``,
    qmark values bound by Snowflake). ``session.sql`` takes one statement: nothing is held."""

    batch_statements = False

    def _run(self, stmt: Bound, fetch: bool) -> tuple[list[str], list[tuple]]:
        self._refuse_ddl_in_transaction(stmt)
        self.count_round_trip()
        rows = self.conn.sql(stmt.sql, params=stmt.params).collect()
        if not fetch:
            return [], []
        # snowflake.snowpark.Row is a tuple carrying its column names in _fields.
        cols = list(getattr(rows[0], "_fields", None) or []) if rows else []
        return cols, [tuple(r) for r in rows]

    def interrupt(self) -> bool:
        return False  # the caller cancels the CALL; the run stops at its end or rolls back

    def transaction(self):
        return self._session_transaction(lambda sql: self.conn.sql(sql).collect(), "BEGIN")

    def close(self) -> None:
        self._conn = None  # the session belongs to the procedure
