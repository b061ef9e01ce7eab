"""Failures as one or two lines and an exit code: 2 for bad input, 1 for a failure.

Tracebacks only with ``idr --debug`` (or ``IDR_DEBUG=1``): a scheduler's log and a person at
a terminal both want to know what failed and what to do, not where in the code.
"""

from __future__ import annotations

import logging
import os
import sys

from pydantic import ValidationError

from app.core.errors import ConfigError, IdrError
from app.services.warehouse import busy_error, is_lock_error

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

# Driver packages whose exceptions mean "the warehouse (or the state DB, or the broker)
# could not be reached or refused the request": the message is worth showing, the stack is not.
_DRIVERS = {
    "snowflake": "Snowflake",
    "google": "BigQuery",
    "databricks": "Databricks",
    "pyspark": "Spark",
    "py4j": "Spark",
    "duckdb": "DuckDB",
    "_duckdb": "DuckDB",
    "sqlalchemy": "state database",
    "psycopg": "state database",
    "sqlite3": "state database",
    "redis": "broker",
    "kombu": "broker",
    "httpx": "HTTP",
}

_debug = False


def set_debug(on: bool) -> None:
    global _debug
    _debug = on


def debug_enabled() -> bool:
    return _debug or os.environ.get("IDR_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def _first_line(text: str, limit: int = 300) -> str:
    line = next((x.strip() for x in str(text).splitlines() if x.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def exit_code_for(e: IdrError) -> int:
    if isinstance(e, ConfigError) or type(e) is IdrError or e.status in (400, 404, 415, 422):
        return EXIT_BAD_INPUT
    return EXIT_FAILURE


def explain(exc: BaseException) -> tuple[list[str], int]:
    """(lines to print, exit code) for any exception a command let through."""
    if isinstance(exc, KeyboardInterrupt):
        return ["interrupted"], EXIT_INTERRUPTED
    if isinstance(exc, ConfigError):
        lines = [exc.message]
        for item in exc.errors:
            msg, field = str(item.get("message") or ""), str(item.get("field") or "")
            if msg and msg != exc.message:  # a single error repeats the message: say it once
                lines.append(f"  - {field}: {msg}" if field else f"  - {msg}")
        return lines, EXIT_BAD_INPUT
    if isinstance(exc, IdrError):
        return [exc.message], exit_code_for(exc)
    if isinstance(exc, ValidationError):  # settings from the environment / .env
        errs = exc.errors()
        first = errs[0] if errs else {"loc": (), "msg": str(exc)}
        name = "IDR_" + "__".join(str(p) for p in first.get("loc", ())).upper()
        more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
        return [f"invalid setting {name}: {first.get('msg')}{more}"], EXIT_BAD_INPUT
    if is_lock_error(exc):
        return [busy_error(None, exc).message], EXIT_FAILURE
    package = type(exc).__module__.split(".")[0]
    text = str(exc)
    if ("idr_out" in text or "idr_meta" in text) and ("does not exist" in text or "not found" in text.lower()):
        return ["the idr schema is missing in this warehouse: run `idr init` first"], EXIT_BAD_INPUT
    if package in _DRIVERS:
        what = _DRIVERS[package]
        hint = {
            "state database": "check IDR_STATE_DB_URL",
            "broker": "check IDR_BROKER_URL",
            "HTTP": "check the URL and that the receiver is up",
        }.get(what, "check the target's connection settings (IDR_TARGETS__<NAME>__...)")
        return [f"{what}: {_first_line(exc) or type(exc).__name__}", f"{hint}; --debug shows the traceback"], 1
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return [f"{exc.strerror or _first_line(exc)}{where}"], EXIT_FAILURE
    return [f"unexpected {type(exc).__name__}: {_first_line(exc)}", "run with --debug for the traceback"], EXIT_FAILURE


class _OneLine(logging.Formatter):
    """Warnings from the service code a command runs, without the traceback (unless --debug)."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname.lower()}: {record.getMessage()}"
        if debug_enabled() and record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class _Stderr(logging.StreamHandler):
    """Writes to the sys.stderr of the moment (a test runner swaps it per invocation)."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging() -> None:
    """Our own code's warnings as one line each on stderr; with --debug every library's
    warnings and the tracebacks too. (A driver's retry chatter is not the user's business.)"""
    handler = _Stderr()
    handler.setFormatter(_OneLine())
    handler.setLevel(logging.WARNING)
    for name in ("", "app", "workers"):
        logger = logging.getLogger(name)
        logger.handlers = [h for h in logger.handlers if not isinstance(h, _Stderr)]
    for name in ("",) if debug_enabled() else ("app", "workers"):
        logging.getLogger(name).addHandler(handler)
