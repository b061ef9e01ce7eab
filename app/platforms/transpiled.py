"""Shared machinery of every adapter whose warehouse does not speak DuckDB SQL.

A canonical statement is parsed once (sqlglot, DuckDB dialect), rewritten by the
adapter's flags and small overrides (``rewrite``), rendered in the platform's dialect
and cached; parameters are bound in the driver's own style at execution time. Subclasses
implement the driver calls (``_run``) and the catalog.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import sqlglot
from sqlglot import exp

from app.platforms.base import Adapter, Assign, Params, Script, ScriptStep, While

_CACHE_MAX = 4096


@dataclass(frozen=True)
class Bound:
    """One platform statement ready for the driver: text plus parameters in driver style."""

    sql: str
    params: Any  # dict (named styles), list (qmark) or None
    kind: str  # "select" | "dml" | "ddl" | "other"
    target: exp.Table | None = None  # written table, for DML
    # Statements joined into ``sql`` by ``_join_script`` (a driver that must be told how
    # many a request carries, Snowflake's num_statements, reads it).
    statements: int = 1


def statement_kind(e: exp.Expression) -> str:
    if isinstance(e, exp.Query):
        return "select"
    if isinstance(e, exp.Insert | exp.Update | exp.Delete | exp.Merge):
        return "dml"
    if isinstance(e, exp.Create | exp.Drop | exp.Alter | exp.TruncateTable):
        return "ddl"
    return "other"


def dml_target(e: exp.Expression) -> exp.Table | None:
    if isinstance(e, exp.Insert):
        t = e.this
        return t.this if isinstance(t, exp.Schema) else t
    if isinstance(e, exp.Update | exp.Delete):
        return e.this if isinstance(e.this, exp.Table) else None
    return None


def table_key(t: exp.Table) -> tuple[str, str]:
    """(schema, table), lower-cased: how statements name the same table."""
    return (t.db or "").lower(), t.name.lower()


ANYWHERE = ("*", "")  # a DDL target that could not be told: the catalog may change anywhere


def ddl_targets(e: exp.Expression) -> set[tuple[str, str]]:
    """The tables and views whose catalog entry (existence, columns) ``e`` changes: none
    for a query or DML; ``ANYWHERE`` for DDL whose target cannot be told (a schema)."""
    if isinstance(e, exp.Create):
        t = e.this.this if isinstance(e.this, exp.Schema) else e.this
        kind = str(e.args.get("kind") or "").upper()
        ok = kind in ("TABLE", "VIEW") and isinstance(t, exp.Table) and t.db
        return {table_key(t)} if ok else {ANYWHERE}
    if isinstance(e, exp.Drop):
        tables = [t for t in (e.args.get("tables") or [e.this]) if isinstance(t, exp.Table)]
        kind = str(e.args.get("kind") or "").upper()
        ok = kind in ("TABLE", "VIEW") and tables and all(t.db for t in tables)
        return {table_key(t) for t in tables} if ok else {ANYWHERE}
    if isinstance(e, exp.Alter):
        src = e.this
        if not (isinstance(src, exp.Table) and src.db):
            return {ANYWHERE}
        # The altered table, and a rename's new name (unqualified: the same schema).
        return {(table_key(t)[0] or src.db.lower(), t.name.lower()) for t in e.find_all(exp.Table)}
    return set()


class TranspilingAdapter(Adapter):
    # ---- flags (what differs, declared, not coded) --------------------------
    param_style: ClassVar[str] = "named"  # "named": the dialect's :name / @name; "qmark": ?
    upper_identifiers: ClassVar[bool] = False  # Snowflake: unquoted names fold to upper case
    qualify_rename_target: ClassVar[bool] = False  # RENAME TO needs schema.name
    regexp_replace_all_by_default: ClassVar[bool] = True  # drop DuckDB's 'g' flag
    delete_needs_where: ClassVar[bool] = False  # BigQuery: DELETE/UPDATE require WHERE
    timestamp_now: ClassVar[str | None] = None  # type CURRENT_TIMESTAMP is cast to (naive columns)
    keep_primary_keys: ClassVar[bool] = True
    keep_not_null: ClassVar[bool] = True
    sort_ordered_aggregates: ClassVar[bool] = False  # ARRAY_AGG(x ORDER BY x) -> sort(agg(x))
    window_needs_order: ClassVar[bool] = False  # row_number() OVER () needs an ORDER BY

    def __init__(self, connect) -> None:
        super().__init__(connect)
        self._lock = threading.RLock()
        self._parsed: dict[str, tuple[exp.Expression, ...]] = {}
        self._rendered: dict[tuple[int, frozenset[str]], tuple[str, tuple[str, ...]]] = {}
        self._pending: list[str] = []  # platform text of held statements (values inlined)
        self._pending_ddl: set[tuple[str, str]] = set()  # what held DDL changes in the catalog
        self._batch_depth = 0

    # ------------------------------------------------------------ translation
    def statements(self, sql: str) -> tuple[exp.Expression, ...]:
        """Canonical text -> rewritten ASTs (cached; treat as read-only)."""
        hit = self._parsed.get(sql)
        if hit is None:
            out: list[exp.Expression] = []
            for e in sqlglot.parse(sql, read=self.canonical_dialect):
                if e is not None:
                    out.extend(self.rewrite(e))
            hit = tuple(out)
            if len(self._parsed) > _CACHE_MAX:
                self._parsed.clear()
                self._rendered.clear()
            self._parsed[sql] = hit
        return hit

    def to_platform(self, sql: str) -> list[str]:
        return [self._render(e, frozenset())[0] for e in self.statements(sql)]

    def rewrite(self, e: exp.Expression) -> list[exp.Expression]:
        """Flag-driven rewrites; subclasses extend (may expand one statement into several)."""
        e = e.transform(self._rewrite_node, copy=True)
        if self.qualify_rename_target and isinstance(e, exp.Alter):
            src = e.this
            for action in e.args.get("actions") or []:
                if isinstance(action, exp.AlterRename) and isinstance(action.this, exp.Table):
                    new = action.this
                    if not new.db and src.db:
                        new.set("db", exp.to_identifier(src.db, quoted=True))
        if self.delete_needs_where and isinstance(e, exp.Delete | exp.Update) and not e.args.get("where"):
            e.set("where", exp.Where(this=exp.true()))
        if isinstance(e, exp.Create) and isinstance(e.this, exp.Schema):
            self._rewrite_ddl(e)
        if self.upper_identifiers:
            for ident in e.find_all(exp.Identifier):
                ident.set("this", ident.name.upper())
                ident.set("quoted", True)
        return [e]

    def _rewrite_node(self, node: exp.Expression) -> exp.Expression:
        if self.regexp_replace_all_by_default and isinstance(node, exp.RegexpReplace):
            mods = node.args.get("modifiers")
            if isinstance(mods, exp.Literal) and mods.this == "g":
                node = node.copy()
                node.set("modifiers", None)
        if self.timestamp_now and isinstance(node, exp.CurrentTimestamp):
            # Anonymous: not a CurrentTimestamp node, so the rewrite cannot recurse.
            return exp.cast(exp.Anonymous(this="CURRENT_TIMESTAMP", expressions=[]), self.timestamp_now)
        if self.sort_ordered_aggregates and isinstance(node, exp.GroupConcat | exp.ArrayAgg):
            node = self._sorted_aggregate(node)
        if (
            self.window_needs_order
            and isinstance(node, exp.Window)
            and isinstance(node.this, exp.RowNumber)
            and not node.args.get("order")
        ):
            # Any numbering will do where canonical SQL leaves the order open.
            node = node.copy()
            node.set("order", exp.Order(expressions=[exp.Ordered(this=exp.Literal.number(1))]))
        return node

    def _sorted_aggregate(self, node: exp.Expression) -> exp.Expression:
        """``agg(x ORDER BY x)`` keeps no order on Spark/Databricks: sort the collected
        array instead (only ascending order by the aggregated value itself is portable)."""
        inner = node.this
        if not isinstance(inner, exp.Order):
            return node
        keys = inner.expressions
        if len(keys) != 1 or keys[0].args.get("desc") or keys[0].this != inner.this:
            raise ValueError(f"unsupported ordered aggregate on {self.platform}: {node.sql()}")
        arr = exp.Anonymous(
            this="ARRAY_SORT", expressions=[exp.Anonymous(this="COLLECT_LIST", expressions=[inner.this.copy()])]
        )
        if isinstance(node, exp.ArrayAgg):
            return arr
        sep = node.args.get("separator") or exp.Literal.string(",")
        return exp.Anonymous(this="ARRAY_JOIN", expressions=[arr, sep.copy()])

    def _rewrite_ddl(self, e: exp.Create) -> None:
        schema = e.this
        keep = []
        for col in schema.expressions:
            if isinstance(col, exp.PrimaryKey) and not self.keep_primary_keys:
                continue
            if isinstance(col, exp.ColumnDef):
                cons = []
                for c in col.args.get("constraints") or []:
                    if isinstance(c.kind, exp.PrimaryKeyColumnConstraint) and not self.keep_primary_keys:
                        continue
                    if isinstance(c.kind, exp.NotNullColumnConstraint) and not self.keep_not_null:
                        continue
                    cons.append(c)
                col.set("constraints", cons)
            keep.append(col)
        schema.set("expressions", keep)

    def _render(self, e: exp.Expression, nulls: frozenset[str], cache: bool = True) -> tuple[str, tuple[str, ...]]:
        """Platform text of ``e``; parameters named in ``nulls`` become NULL literals
        (a typed driver parameter cannot express an untyped NULL on every platform).
        Returns (text, parameter names in textual order for qmark)."""
        key = (id(e), nulls)
        hit = self._rendered.get(key) if cache else None
        if hit is not None:
            return hit
        nonce = f"idrp{secrets.token_hex(4)}x"
        order: list[str] = []

        def bind(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Placeholder) and node.name:
                if node.name in nulls:
                    return exp.Null()
                if self.param_style == "qmark":
                    return exp.Placeholder(this=f"{nonce}{node.name}")
            return node

        text = e.transform(bind, copy=True).sql(dialect=self.dialect)
        if self.param_style == "qmark":
            pat = re.compile(r"[:@$]?" + nonce + r"(\w+)")
            order = [m.group(1) for m in pat.finditer(text)]
            text = pat.sub("?", text)
        hit = (text, tuple(order))
        if cache:  # keyed by id(): only for ASTs that live in the statement cache
            self._rendered[key] = hit
        return hit

    def bind(self, sql: str, params: Params = None) -> list[Bound]:
        """Canonical text + ``$name`` values -> driver-ready statements."""
        out = []
        params = dict(params or {})
        for e in self.statements(sql):
            used = {p.name for p in e.find_all(exp.Placeholder) if p.name}
            missing = used - params.keys()
            if missing:
                raise KeyError(f"missing SQL parameter(s): {', '.join(sorted(missing))}")
            nulls = frozenset(n for n in used if params[n] is None)
            text, order = self._render(e, nulls)
            values = {n: self.convert_param(params[n]) for n in used if n not in nulls}
            out.append(Bound(text, self._pack(values, order), statement_kind(e), dml_target(e)))
        return out

    def _pack(self, values: dict[str, Any], order: tuple[str, ...]) -> Any:
        if self.param_style == "qmark":
            return [values[n] for n in order] or None
        return values or None

    def convert_param(self, value: Any) -> Any:
        return value

    # ------------------------------------------------------------ execution
    def _run(self, stmt: Bound, fetch: bool) -> tuple[list[str], list[tuple]]:
        """Send one statement; return (column names, rows) when ``fetch``."""
        raise NotImplementedError

    def _join_script(self, texts: list[str]) -> str:
        """Several platform statements as one request whose result is the last one's."""
        raise NotImplementedError

    @contextmanager
    def batched(self) -> Iterator[None]:
        if not self.batch_statements:
            yield
            return
        with self._lock:
            self._batch_depth += 1
            try:
                yield
            finally:
                self._batch_depth -= 1
                if not self._batch_depth:
                    self._end_batch()
                    self.flush()

    def _end_batch(self) -> None:
        """The outermost ``batched`` block (one run) ends: forget what it cached."""

    def _flush_for(self, schema: str, prefix: str = "", exact: bool = False) -> None:
        """Send held statements before a catalog call about the relations of ``schema``
        whose name starts with ``prefix`` (is ``prefix``, with ``exact``) when held DDL
        creates, drops or alters one of them; otherwise the catalog's answer cannot depend
        on the held statements (DML changes no catalog entry), and they wait for the next
        read (a round trip saved)."""
        s, p = schema.lower(), prefix.lower()
        with self._lock:
            if ANYWHERE in self._pending_ddl or any(
                d == s and (n == p if exact else n.startswith(p)) for d, n in self._pending_ddl
            ):
                self.flush()

    def _take_pending(self) -> list[str]:
        """The held statements' texts, which the caller sends now."""
        texts, self._pending = self._pending, []
        self._pending_ddl = set()
        return texts

    def _holding(self) -> bool:
        """Whether a statement sent now may be held (a subclass's transaction says no)."""
        return self._batch_depth > 0

    def inline(self, e: exp.Expression, params: Mapping[str, Any]) -> str:
        """Platform text of ``e`` with its values as literals built by sqlglot (a script
        carries no bound parameters on every platform: the BigQuery emulator binds none)."""

        def lit(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Placeholder) and node.name:
                if node.name not in params:
                    raise KeyError(f"missing SQL parameter: {node.name}")
                return self.literal(params[node.name])
            return node

        return e.transform(lit, copy=True).sql(dialect=self.dialect)

    def _dispatch(self, e: exp.Expression, params: Mapping[str, Any], fetch: bool) -> tuple[list[str], list[tuple]]:
        """Hold ``e`` (batched, result unread), send it with the held ones, or alone."""
        if not fetch and self._holding():
            self._pending.append(self.inline(e, params))
            self._pending_ddl |= ddl_targets(e)
            return [], []
        if self._pending:
            texts = [*self._take_pending(), self.inline(e, params)]
            return self._run(Bound(self._join_script(texts), None, "other", statements=len(texts)), fetch)
        used = {p.name for p in e.find_all(exp.Placeholder) if p.name}
        missing = used - params.keys()
        if missing:
            raise KeyError(f"missing SQL parameter(s): {', '.join(sorted(missing))}")
        nulls = frozenset(n for n in used if params[n] is None)
        text, order = self._render(e, nulls, cache=False)
        values = {n: self.convert_param(params[n]) for n in used if n not in nulls}
        return self._run(Bound(text, self._pack(values, order), statement_kind(e), dml_target(e)), fetch)

    # ------------------------------------------------------------ scripts
    script_int_type: ClassVar[str] = "BIGINT"  # type of a script's DECLAREd variables

    def _script_expr(self, expr: str, params: Mapping[str, Any]) -> str:
        """A canonical scalar/boolean expression in the platform's SQL."""
        select = self.statements(f"SELECT {expr}")[0]
        return self.inline(select.expressions[0], params)

    def _script_steps(self, steps: Sequence[ScriptStep], params: Mapping[str, Any], indent: str) -> list[str]:
        out: list[str] = []
        for step in steps:
            if isinstance(step, Assign):
                out.append(f"{indent}SET {step.name} = {self._script_expr(step.expr, params)};")
            elif isinstance(step, While):
                out.append(f"{indent}WHILE {self._script_expr(step.condition, params)} DO")
                out.extend(self._script_steps(step.body, params, indent + "  "))
                out.append(f"{indent}END WHILE;")
            else:
                out.extend(f"{indent}{self.inline(e, params)};" for e in self.statements(step))
        return out

    def render_script(self, script: Script) -> str:
        """The platform text of ``script``: one ``BEGIN ... END`` block (variables are
        declared at its start, as both BigQuery and Spark require), values inlined."""
        lines = ["BEGIN"]
        lines += [f"  DECLARE {n} {self.script_int_type} DEFAULT {int(v)};" for n, v in script.variables]
        lines += self._script_steps(script.steps, script.params, "  ")
        lines += [f"  {self.inline(e, script.params)};" for e in self.statements(script.result)]
        lines.append("END")
        return "\n".join(lines)

    def fetch_script(self, script: Script) -> tuple[Any, ...] | None:
        if not self.server_loops:
            return super().fetch_script(script)
        text = self.render_script(script)
        with self._lock:
            texts = [*self._take_pending(), text]
            body = self._join_script(texts) if len(texts) > 1 else text
            _, rows = self._run(Bound(body, None, "other", statements=len(texts)), True)
        return tuple(rows[0]) if rows else None

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                texts = self._take_pending()
                text = self._join_script(texts) if len(texts) > 1 else texts[0]
                self._run(Bound(text, None, "other", statements=len(texts)), False)

    def execute(self, sql: str, params: Params = None) -> None:
        with self._lock:
            if self._holding() or self._pending:
                for e in self.statements(sql):
                    self._dispatch(e, dict(params or {}), False)
                return
            for stmt in self.bind(sql, params):
                self._run(stmt, False)

    def fetch_with_columns(self, sql: str, params: Params = None) -> tuple[list[str], list[tuple]]:
        with self._lock:
            if self._pending:
                stmts_ = self.statements(sql)
                for e in stmts_[:-1]:
                    self._dispatch(e, dict(params or {}), False)
                cols, rows = self._dispatch(stmts_[-1], dict(params or {}), True)
                return [c.lower() for c in cols], [tuple(r) for r in rows]
            stmts = self.bind(sql, params)
            for stmt in stmts[:-1]:
                self._run(stmt, False)
            cols, rows = self._run(stmts[-1], True)
            return [c.lower() for c in cols], [tuple(r) for r in rows]

    def fetchall(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        return self.fetch_with_columns(sql, params)[1]

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Single-row ``INSERT ... VALUES`` becomes multi-row inserts of up to 200 rows:
        one round trip (and, on Spark, one file) per chunk instead of per row."""
        if not rows:
            return
        stmts = self.statements(sql)
        ins = stmts[0] if len(stmts) == 1 else None
        values = ins.args.get("expression") if isinstance(ins, exp.Insert) else None
        if not isinstance(values, exp.Values) or len(values.expressions) != 1:
            for r in rows:
                self.execute(sql, r)
            return
        for start in range(0, len(rows), 200):
            chunk = rows[start : start + 200]
            tuples, params = [], {}
            for i, r in enumerate(chunk):

                def rename(node: exp.Expression, i: int = i) -> exp.Expression:
                    if isinstance(node, exp.Placeholder) and node.name:
                        return exp.Placeholder(this=f"r{i}_{node.name}")
                    return node

                tuples.append(values.expressions[0].transform(rename, copy=True))
                params.update({f"r{i}_{k}": v for k, v in r.items()})
            multi = ins.copy()
            multi.set("expression", exp.Values(expressions=tuples))
            self._execute_ast(multi, params)

    def _execute_ast(self, e: exp.Expression, params: Mapping[str, Any]) -> None:
        """Execute an already rewritten AST (not cached: one-off shapes)."""
        if self._holding() or self._pending:
            with self._lock:
                self._dispatch(e, params, False)
            return
        used = {p.name for p in e.find_all(exp.Placeholder) if p.name}
        nulls = frozenset(n for n in used if params.get(n) is None)
        text, order = self._render(e, nulls, cache=False)
        values = {n: self.convert_param(params[n]) for n in used if n not in nulls}
        with self._lock:
            self._run(Bound(text, self._pack(values, order), statement_kind(e), dml_target(e)), False)

    # ------------------------------------------------------------ catalog
    def table_fingerprint(self, table_fqn: str) -> str:
        from app.platforms.names import parse_table_fqn

        t = parse_table_fqn(table_fqn)
        cols = [self.ident(c) for c in self.columns(t.db, t.name)]
        fqn = t.sql(dialect=self.canonical_dialect, identify=True)
        n, h = self.fetchone(f"SELECT count(*), {self.fingerprint_aggregate(cols)} FROM {fqn}") or (0, 0)
        return f"{n}:{h}"

    def fingerprint_aggregate(self, cols: list[str]) -> str:
        """Order-independent aggregate of a per-row hash, canonical SQL."""
        return f"coalesce(sum(hash({', '.join(cols)})), 0)"

    # ------------------------------------------------------------ helpers
    @staticmethod
    def literal(value: Any) -> exp.Expression:
        """A value as a SQL literal built by sqlglot (never string formatting)."""
        if value is None:
            return exp.Null()
        if isinstance(value, bool):
            return exp.Boolean(this=value)
        if isinstance(value, int | float):
            return exp.Literal.number(value)
        if isinstance(value, datetime):
            return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "TIMESTAMP")
        return exp.Literal.string(str(value))

    def _names(self, rows: Iterable[tuple]) -> list[str]:
        return [str(r[0]) for r in rows]
