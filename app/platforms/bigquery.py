"""BigQuery through google-cloud-bigquery.

What differs, as flags of ``TranspilingAdapter`` plus a few overrides here:
- schemas are datasets (``CREATE SCHEMA`` creates one); types STRING / INT64 / FLOAT64 /
  DATETIME (canonical TIMESTAMP columns hold naive UTC, which is DATETIME here, so
  ``CURRENT_TIMESTAMP`` becomes ``CAST(CURRENT_TIMESTAMP() AS DATETIME)``); PRIMARY KEY would need
  ``NOT ENFORCED`` and buys nothing, so it is dropped;
- ``DELETE`` / ``UPDATE`` must have a WHERE clause (``WHERE TRUE`` is added);
- parameters: ``@name`` query parameters, typed from the Python value; a NULL value is
  sent as a NULL literal (a typed NULL parameter would have to guess the column type);
- transactions exist only inside one script: ``transaction()`` collects the block's
  statements and sends ``BEGIN TRANSACTION; ...; COMMIT TRANSACTION;`` as one job when
  the block ends (nothing is sent if it raises). Reads inside the block see the state
  before it, so a read of a table the block already wrote is refused, not answered
  wrongly. A publish's change set is rendered as that script explicitly
  (``apply_changes``).
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlglot import exp

from app.platforms.base import Params
from app.platforms.changes import Applied, ChangeSet, OrderedInsert, Rows, Statement, Write
from app.platforms.transpiled import Bound, TranspilingAdapter, dml_target, table_key


def bigquery_connector(
    project: str, *, location: str | None = None, endpoint: str | None = None, credentials_file: str | None = None
) -> Callable[[], Any]:
    """Connection factory: a ``bigquery.Client``. ``endpoint`` points the real client at
    another server (the local emulator in tests); credentials come from
    ``credentials_file`` (service-account JSON) or Application Default Credentials."""

    def connect() -> Any:
        from google.cloud import bigquery

        kwargs: dict[str, Any] = {"project": project, "location": location}
        if endpoint:
            from google.api_core.client_options import ClientOptions
            from google.auth.credentials import AnonymousCredentials

            kwargs["client_options"] = ClientOptions(api_endpoint=endpoint)
            kwargs["credentials"] = AnonymousCredentials()
        elif credentials_file:
            from google.oauth2 import service_account

            kwargs["credentials"] = service_account.Credentials.from_service_account_file(credentials_file)
        return bigquery.Client(**kwargs)

    return connect


_TYPES: list[tuple[type, str]] = [
    (bool, "BOOL"),
    (int, "INT64"),
    (float, "FLOAT64"),
    (decimal.Decimal, "NUMERIC"),
    (dt.datetime, "DATETIME"),
    (dt.date, "DATE"),
    (str, "STRING"),
    (bytes, "BYTES"),
]


class BigQueryAdapter(TranspilingAdapter):
    platform = "bigquery"

    def sha256_hex_sql(self, expr: str) -> str:
        # BigQuery's SHA256 returns BYTES.
        return f"lower(to_hex(sha256({expr})))"

    dialect = "bigquery"
    param_style = "named"
    reads_in_transaction = False  # transaction(): one script, sent when the block ends
    delete_needs_where = True
    timestamp_now = "DATETIME"
    keep_primary_keys = False
    # A multi-statement query (script) is one job; its result is the last statement's.
    batch_statements = True
    # Scripting: DECLARE / SET / WHILE (the emulator runs them too).
    server_loops = True
    script_int_type = "INT64"

    def __init__(self, connect: Callable[[], Any]) -> None:
        super().__init__(connect)
        self._script: list[tuple[str, dict[str, Any]]] | None = None
        self._written: set[tuple[str, str]] = set()

    # ------------------------------------------------------------ execution
    def _join_script(self, texts: list[str]) -> str:
        return ";\n".join(texts)

    def _holding(self) -> bool:
        return super()._holding() and self._script is None

    def convert_param(self, value: Any) -> Any:
        return value  # typed when the job is built (_query_parameters)

    @staticmethod
    def _query_parameters(params: Mapping[str, Any] | None) -> list[Any]:
        from google.cloud import bigquery

        out = []
        for name, value in (params or {}).items():
            kind = next((t for cls, t in _TYPES if isinstance(value, cls)), None)
            if kind is None:
                raise TypeError(f"cannot bind {type(value).__name__} as a BigQuery parameter ({name})")
            out.append(bigquery.ScalarQueryParameter(name, kind, value))
        return out

    def _run(self, stmt: Bound, fetch: bool) -> tuple[list[str], list[tuple]]:
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(query_parameters=self._query_parameters(stmt.params))
        self.count_round_trip()
        job = self.conn.query(stmt.sql, job_config=config)
        self._job = job
        try:
            result = job.result()
        finally:
            self._job = None
        if not fetch:
            return [], []
        cols = [f.name for f in (result.schema or [])]
        return cols, [tuple(r.values()) for r in result]

    def interrupt(self) -> bool:
        """Cancel the running query job (jobs.cancel)."""
        job = getattr(self, "_job", None)
        if job is None:
            return False
        try:
            job.cancel()
        except Exception:  # noqa: BLE001 - e.g. the job just finished; the stage boundary still stops the run
            return False
        return True

    def execute(self, sql: str, params: Params = None) -> None:
        if self._script is None:
            return super().execute(sql, params)
        with self._lock:
            for e in self.statements(sql):
                self._buffer(e, dict(params or {}))

    def _execute_ast(self, e: exp.Expression, params: Mapping[str, Any]) -> None:
        if self._script is None:
            return super()._execute_ast(e, params)
        self._buffer(e, dict(params))

    def _buffer(self, e: exp.Expression, params: dict[str, Any]) -> None:
        """Queue a statement of the open transaction. Values are inlined as literals built
        by sqlglot: the emulator's script runner binds no query parameters."""
        assert self._script is not None
        if not isinstance(e, exp.Insert | exp.Update | exp.Delete | exp.Merge):
            raise RuntimeError(f"only DML may run inside a BigQuery transaction, not: {e.sql()[:60]}")

        def inline(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Placeholder) and node.name:
                return self.literal(params[node.name])
            return node

        self._script.append((e.transform(inline, copy=True).sql(dialect=self.dialect), {}))
        target = dml_target(e)
        if target is not None:
            self._written.add(table_key(target))

    def fetch_with_columns(self, sql: str, params: Params = None) -> tuple[list[str], list[tuple]]:
        if self._script is not None and self._written:
            touched = {table_key(t) for e in self.statements(sql) for t in e.find_all(exp.Table)}
            if touched & self._written:
                raise RuntimeError("a BigQuery transaction cannot read a table it has written (script semantics)")
        return super().fetch_with_columns(sql, params)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            if self._script is not None:  # nested: part of the outer script
                yield
                return
            self.flush()  # held statements come first (the transaction reads their results)
            self._script, self._written = [], set()
            try:
                yield
            except BaseException:
                self._script, self._written = None, set()
                raise
            script, self._script, self._written = self._script, None, set()
            if not script:
                return
            body = ";\n".join(s for s, _ in script)
            params: dict[str, Any] = {}
            for _, p in script:
                params.update(p)
            self._run(Bound(f"BEGIN TRANSACTION;\n{body};\nCOMMIT TRANSACTION;", params or None, "dml"), False)

    def apply_changes(self, changes: ChangeSet) -> Applied:
        """One multi-statement script, ``BEGIN TRANSACTION; ...; COMMIT TRANSACTION``: one job,
        every write or none. A script cannot call back into Python, so the checks read and
        the fence is checked just before it is sent (the fence stays held until it ends)."""
        applied = Applied(atomic=True, how="one script")
        with self._lock:
            for check in changes.checks:  # (held statements travel with their reads)
                check()
            texts = [t for w in [*changes.writes, *changes.closing(applied)] for t in self.script_of(w)]
            self.flush()
            changes.fence()
            if texts:
                body = ";\n".join(texts)
                self._run(Bound(f"BEGIN TRANSACTION;\n{body};\nCOMMIT TRANSACTION;", None, "dml"), False)
        return applied

    def script_of(self, w: Write) -> list[str]:
        """A change set's write as script statements, values inlined as literals built by
        sqlglot (the emulator binds no query parameters in a script)."""
        match w:
            case Statement():
                return [self.inline(e, dict(w.params or {})) for e in self.statements(w.sql)]
            case Rows():
                return [self.inline(e, dict(r)) for r in w.rows for e in self.statements(w.sql)]
            case OrderedInsert():  # no insertion order to keep
                return [self.inline(e, {}) for e in self.statements(f"INSERT INTO {w.table} {w.select}")]

    # ------------------------------------------------------------ catalog
    def _ref(self, schema: str, table: str | None = None) -> str:
        project = self.conn.project
        return f"{project}.{schema}" + (f".{table}" if table else "")

    def columns(self, schema: str, table: str) -> list[str]:
        from google.api_core.exceptions import NotFound

        self._flush_for(schema, table, exact=True)  # the catalog answers after held DDL ran
        self.count_round_trip()
        try:
            t = self.conn.get_table(self._ref(schema, table))
        except NotFound:
            return []
        return [f.name.lower() for f in t.schema]

    def list_tables(self, schema: str, prefix: str = "", views: bool = False) -> list[str]:
        return [n for n, is_view in self.list_relations(schema, prefix) if is_view == views]

    def list_relations(self, schema: str, prefix: str = "") -> list[tuple[str, bool]]:
        from google.api_core.exceptions import NotFound

        self._flush_for(schema, prefix)
        self.count_round_trip()
        try:
            tables = list(self.conn.list_tables(self._ref(schema)))
        except NotFound:
            return []
        return sorted(
            (t.table_id.lower(), t.table_type == "VIEW")
            for t in tables
            if t.table_id.lower().startswith(prefix.lower())
        )

    def fingerprint_aggregate(self, cols: list[str]) -> str:
        row = f"to_json_string(struct({', '.join(cols)}))"
        # Sum of hashes, reduced to avoid INT64 overflow: order-independent.
        return f"coalesce(sum(mod(farm_fingerprint({row}), 1000000007)), 0)"
