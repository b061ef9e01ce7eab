"""Opening a warehouse target from the service, with DuckDB's one-process lock in mind.

A DuckDB file can be open read-write in one process only (others cannot even read it).
Within one process many connections share one database instance, so embedded mode (API +
worker threads in one process) never waits. With separate worker processes, whoever holds
the file blocks the others: every caller here opens a short-lived adapter, retries for a
bounded time while the file is locked, and then gives up with ``UnavailableError`` (503 +
Retry-After in the API). Other warehouses have no such lock and never wait here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from app.core.errors import IdrError, UnavailableError
from app.core.settings import Settings
from app.platforms import open_adapter
from app.platforms.base import Adapter

DEFAULT_TARGET = "default"


def target_names(settings: Settings) -> list[str]:
    """'default' (settings.default_target, else the embedded DuckDB) plus every named target."""
    return [DEFAULT_TARGET, *sorted(n for n in settings.targets if n.lower() != DEFAULT_TARGET)]


def check_target(settings: Settings, target: str) -> str:
    names = target_names(settings)
    if target not in names:
        raise IdrError(f"unknown target {target!r}; known: {', '.join(names)}", field="target")
    return target


def _open(settings: Settings, target: str) -> Adapter:
    if target != DEFAULT_TARGET:
        return open_adapter(target=target, settings=settings)
    return open_adapter(settings=settings)


def is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set lock" in text or "locked" in text)


@contextmanager
def warehouse(settings: Settings, target: str = DEFAULT_TARGET, *, wait: float | None = None) -> Iterator[Adapter]:
    """A connected adapter for ``target``, closed on exit (one adapter per request/task)."""
    wait = settings.warehouse_busy_wait_seconds if wait is None else wait
    deadline = time.monotonic() + wait
    delay = 0.05
    while True:
        adapter = _open(settings, target)
        try:
            adapter.conn  # noqa: B018 - connect now, so a held lock shows up here
            break
        except Exception as e:
            adapter.close()
            if not is_lock_error(e):
                raise
            if time.monotonic() >= deadline:
                raise UnavailableError(
                    "the warehouse is busy: another process (a worker running a pipeline) holds the DuckDB file; "
                    "retry shortly",
                    retry_after=5,
                ) from e
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    try:
        yield adapter
    finally:
        adapter.close()
