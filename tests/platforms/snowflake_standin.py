"""fakesnow, taking multi-statement requests the way Snowflake does.

fakesnow 0.12 runs one statement per ``cursor.execute`` (it parses exactly one). Real
Snowflake takes several, separated by ``;``, in one request when the statement count is
given (``execute(text, num_statements=N)``, or the session parameter
``MULTI_STATEMENT_COUNT``; 0 = any number): it runs them in order, stops at the first
error (earlier ones stay done), and the connector hands back the child statements' query
ids (``multi_statement_savedIds``) with the first one's result current; ``nextset()`` and
``query_result(qid)`` move to another's. A request with more statements than the count
allows (default 1) is refused with Snowflake's message.

``patch()`` is ``fakesnow.patch()`` plus that: the connection's cursors split a
multi-statement text with sqlglot's Snowflake tokenizer (a ``;`` inside a string or a
``$$`` block is not a separator) and run the parts on fakesnow, one after the other, as
ONE ``execute`` call, which is what the adapter counts and the bench delays: the round
trips measured here are the ones real Snowflake would see. Test and bench layer only.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

from sqlglot.dialects.dialect import Dialect
from sqlglot.tokens import TokenType

_SNOWFLAKE = Dialect.get_or_raise("snowflake")


def split_statements(text: str) -> list[str]:
    """The statements of a multi-statement text, as written (sqlglot's tokenizer finds the
    separators; nothing is re-rendered)."""
    if ";" not in text:
        return [text] if text.strip() else []
    parts, start = [], 0
    for tok in _SNOWFLAKE.tokenize(text):
        if tok.token_type == TokenType.SEMICOLON:
            parts.append(text[start : tok.start])
            start = tok.end + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _count_error(actual: int, desired: int) -> Exception:
    import snowflake.connector.errors

    return snowflake.connector.errors.ProgrammingError(
        msg=f"Actual statement count {actual} did not match the desired statement count {desired}.",
        errno=8,
        sqlstate="0A000",
    )


class MultiStatementCursor:
    """A fakesnow cursor that runs a multi-statement request as one call. Each child runs
    on its own fakesnow cursor (same connection, so the same session and transaction), so
    every child's result stays readable, as Snowflake keeps it by query id."""

    def __init__(self, conn: MultiStatementConnection, args: tuple, kwargs: dict) -> None:
        self._conn, self._args, self._kwargs = conn, args, kwargs
        self._cur = conn.inner.cursor(*args, **kwargs)
        self._children: dict[str, Any] = {}
        self._next: deque[str] = deque()
        self.multi_statement_savedIds: list[str] = []

    def execute(self, command: str, params: Any = None, *args: Any, num_statements: int | None = None, **kwargs: Any):
        desired = self._conn.multi_statement_count if num_statements is None else num_statements
        parts = split_statements(command) if ";" in command else [command]
        if len(parts) <= 1:
            self._children, self._next, self.multi_statement_savedIds = {}, deque(), []
            self._cur.execute(command, params, *args, **kwargs)
            return self
        if desired == 1 or (desired and desired != len(parts)):
            raise _count_error(len(parts), desired or 1)
        if params:
            raise NotImplementedError("bound parameters in a multi-statement request (idr inlines literals)")
        children: dict[str, Any] = {}
        for part in parts:  # stops at the first error, as Snowflake does
            cur = self._conn.inner.cursor(*self._args, **self._kwargs)
            cur.execute(part, *args, **kwargs)
            children[cur.sfqid or str(uuid.uuid4())] = cur
        self._children = children
        self.multi_statement_savedIds = list(children)
        self._next = deque(self.multi_statement_savedIds)
        self.nextset()  # the connector makes the first statement's result current
        return self

    def nextset(self) -> MultiStatementCursor | None:
        if not self._next:
            return None
        self.query_result(self._next.popleft())
        return self

    def query_result(self, qid: str) -> MultiStatementCursor:
        self._cur = self._children[qid]
        return self

    def close(self) -> None:
        for cur in self._children.values():
            cur.close()
        self._cur.close()

    def __enter__(self) -> MultiStatementCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:  # description, fetchall, sfqid, rowcount...
        return getattr(self._cur, name)


class MultiStatementConnection:
    def __init__(self, inner: Any, multi_statement_count: int) -> None:
        self.inner = inner
        self.multi_statement_count = multi_statement_count

    def cursor(self, *args: Any, **kwargs: Any) -> MultiStatementCursor:
        return MultiStatementCursor(self, args, kwargs)

    def __enter__(self) -> MultiStatementConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.inner.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@contextmanager
def patch(**fakesnow_kwargs: Any) -> Iterator[None]:
    """``fakesnow.patch(**fakesnow_kwargs)`` whose connections take multi-statement requests."""
    import fakesnow
    import snowflake.connector

    with ExitStack() as stack:
        stack.enter_context(fakesnow.patch(**fakesnow_kwargs))
        fake_connect = snowflake.connector.connect

        def connect(*args: Any, **kwargs: Any) -> MultiStatementConnection:
            count = int((kwargs.get("session_parameters") or {}).get("MULTI_STATEMENT_COUNT", 1))
            return MultiStatementConnection(fake_connect(*args, **kwargs), count)

        stack.enter_context(mock.patch.object(snowflake.connector, "connect", connect))
        yield
