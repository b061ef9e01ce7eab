"""Table names as the warehouse reads them: a platform concern (the config layer calls
it to check ``table_fqn``; adapters call it to read a table they are given)."""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import TokenType

from app.core.errors import ConfigError

READ_DIALECT = "duckdb"  # canonical SQL (app.platforms.base.Adapter.canonical_dialect)


def has_semicolon(text: str) -> bool:
    """Whether ``text`` holds a statement separator outside quotes."""
    try:
        tokens = sqlglot.Dialect.get_or_raise(READ_DIALECT).tokenize(text)
    except TokenError:
        return False  # the parser reports the real problem
    return any(t.token_type == TokenType.SEMICOLON for t in tokens)


def short_error(e: Exception) -> str:
    return str(e).strip().splitlines()[0][:200]


def parse_table_fqn(fqn: str) -> exp.Table:
    """Parse ``[catalog.][schema.]table`` into a plain table reference, or raise ConfigError."""
    msg = "must be a plain table name: table, schema.table or db.schema.table"
    if not fqn or not fqn.strip() or has_semicolon(fqn):
        raise ConfigError(msg, field="table_fqn")
    try:
        table = sqlglot.parse_one(fqn, into=exp.Table, read=READ_DIALECT)
    except (ParseError, TokenError) as e:
        raise ConfigError(f"{msg} ({short_error(e)})", field="table_fqn") from e
    if not isinstance(table, exp.Table):
        raise ConfigError(msg, field="table_fqn")
    # Only the name parts may be set: no alias, sample, joins, function call, ...
    extra = [k for k, v in table.args.items() if v and k not in ("this", "db", "catalog")]
    parts = [table.args.get(k) for k in ("this", "db", "catalog")]
    if extra or not all(p is None or isinstance(p, exp.Identifier) for p in parts):
        raise ConfigError(msg, field="table_fqn")
    for node in table.walk():
        node.comments = None
    return table
