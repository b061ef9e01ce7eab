"""Opening a warehouse target from the service and the CLI, with DuckDB's one-process lock in mind.

A DuckDB file can be open read-write in one process only (others cannot even read it).
Within one process many connections share one database instance. So that the user's own
tools and the CLI can use the file while the service runs, nobody here holds it longer
than a run or a request needs: every caller opens a short-lived adapter, retries with
backoff while another process holds the file, and then gives up with
``UnavailableError`` (503 + Retry-After in the API, one line and exit 1 in the CLI).
The API process keeps a file open for ``duckdb_keep_open_seconds`` after its last use, so
a burst of requests opens it once; workers and CLI commands let go at once. Other
warehouses have no such lock and never wait.
"""

from __future__ import annotations

import atexit
import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import duckdb

from app.core.errors import IdrError, UnavailableError
from app.core.settings import Settings
from app.platforms import DuckDBAdapter, duckdb_file, open_adapter
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


def target_file(settings: Settings, target: str = DEFAULT_TARGET) -> str | None:
    """The DuckDB file behind a service target (None for other platforms)."""
    return duckdb_file(settings=settings, target=None if target == DEFAULT_TARGET else target)


def is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set lock" in text or "locked" in text)


_HOLDER = re.compile(r"held in (?P<prog>.+?) \(PID (?P<pid>\d+)\)")


def lock_holder(exc: BaseException) -> str:
    """'PID 123 (python3.11)' from DuckDB's lock message, or 'another process'."""
    m = _HOLDER.search(str(exc))
    if not m:
        return "another process"
    return f"process {m['pid']} ({m['prog'].rsplit('/', 1)[-1]})"


def busy_error(path: str | None, exc: BaseException, retry_after: int = 5) -> UnavailableError:
    what = f"the DuckDB file {path}" if path else "the warehouse"
    return UnavailableError(
        f"{what} is in use by {lock_holder(exc)}; it is free again when that process's run or request ends "
        "(the idr service releases it within seconds): retry shortly",
        retry_after=retry_after,
    )


def connect(
    open_fn: Callable[[], Adapter],
    *,
    wait: float,
    path: str | None = None,
    on_wait: Callable[[BaseException], None] | None = None,
) -> Adapter:
    """A connected adapter from ``open_fn``; a held DuckDB lock is retried with backoff for
    ``wait`` seconds (``on_wait`` is told once), then ``UnavailableError``."""
    deadline = time.monotonic() + wait
    delay = 0.05
    told = False
    while True:
        adapter = open_fn()
        try:
            adapter.conn  # noqa: B018 - connect now, so a held lock shows up here
            return adapter
        except Exception as e:
            adapter.close()
            if not is_lock_error(e):
                raise
            if time.monotonic() >= deadline:
                raise busy_error(path, e) from e
            if on_wait is not None and not told:
                on_wait(e)
                told = True
            time.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
            delay = min(delay * 2, 1.0)


class _KeepOpen:
    """Keeps a DuckDB database instance loaded for a short while after its last use.

    An extra connection to the same file holds the instance (a cursor would not: DuckDB's
    instance cache forgets a database once its last connection closes, and reopening is
    what a burst of requests must not pay each time; docs/decisions/0003); a timer thread
    closes it once the file has been idle for ``seconds``, which releases the file to other
    processes. It is only a cache: every user has its own connection, and the extra one is
    opened while the user's is still open, so it only attaches.

    While a file is held, read-only requests also hand their configured connection back
    (``give``) for the next request to ``take``: opening and configuring a connection costs
    as much as a point lookup's queries. The idle connections close with the file.
    """

    # Idle connections kept per file: about one per concurrent reader.
    max_idle = 8

    def __init__(self) -> None:
        # Set by the API process (create_app): a worker or a CLI command holding a file after
        # its task would only keep the API and the user's tools out.
        self.seconds = 0.0
        self._lock = threading.Lock()
        self._held: dict[str, tuple[object, float]] = {}
        self._idle: dict[str, list[object]] = {}
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    def touch(self, path: str, adapter: Adapter) -> None:
        seconds = self.seconds
        if seconds <= 0 or not isinstance(adapter, DuckDBAdapter) or adapter._conn is None:
            return
        with self._lock:
            held = self._held.get(path)
            conn = held[0] if held else duckdb.connect(path)
            self._held[path] = (conn, time.monotonic() + seconds)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="idr-duckdb-release", daemon=True)
                self._thread.start()
            elif held is None:
                # Only a newly held file can be due before what the thread waits for; a later
                # deadline is seen when it wakes (waking it per request cost thread switches).
                self._wake.notify()

    def _loop(self) -> None:
        with self._lock:
            while self._held:
                now = time.monotonic()
                for path, (conn, until) in list(self._held.items()):
                    if until <= now:
                        del self._held[path]
                        self._close_idle(path)
                        _close(conn)
                if self._held:
                    self._wake.wait(max(min(u for _, u in self._held.values()) - now, 0.01))
            self._thread = None

    def release(self, path: str | None = None) -> None:
        """Close now (all files, or one): at shutdown, or before handing the file to someone else."""
        with self._lock:
            for p in [path] if path else list(self._held):
                held = self._held.pop(p, None) if p else None
                if p:
                    self._close_idle(p)
                if held:
                    _close(held[0])
            self._wake.notify()

    def take(self, path: str) -> object | None:
        """An idle configured connection to ``path``, or None."""
        with self._lock:
            idle = self._idle.get(path) if path in self._held else None
            return idle.pop() if idle else None

    def give(self, path: str, conn: object) -> bool:
        """Keep ``conn`` (no open transaction, scratch-free) for the next ``take``; False
        when the file is not held or enough are idle (the caller closes it then)."""
        with self._lock:
            if self.seconds <= 0 or path not in self._held:
                return False
            idle = self._idle.setdefault(path, [])
            if len(idle) >= self.max_idle:
                return False
            idle.append(conn)
            return True

    def _close_idle(self, path: str) -> None:
        for conn in self._idle.pop(path, []):
            _close(conn)

    def holding(self, path: str) -> bool:
        with self._lock:
            return path in self._held


def _close(conn: object) -> None:
    with contextlib.suppress(Exception):  # a connection that is already gone
        conn.close()  # type: ignore[attr-defined]


keep_open = _KeepOpen()
# Close held files from the main thread at exit: a daemon thread still inside DuckDB when
# the interpreter tears down aborts the process.
atexit.register(keep_open.release)


def open_target(settings: Settings, target: str = DEFAULT_TARGET, *, wait: float | None = None) -> Adapter:
    """A connected adapter for a service target (the caller closes it)."""
    wait = settings.warehouse_busy_wait_seconds if wait is None else wait
    return connect(lambda: _open(settings, target), wait=wait, path=target_file(settings, target))


@contextmanager
def warehouse(
    settings: Settings, target: str = DEFAULT_TARGET, *, wait: float | None = None, reuse: bool = False
) -> Iterator[Adapter]:
    """A connected adapter for ``target``, closed on exit (one adapter per request/task).

    ``reuse``: the caller only reads (no scratch tables, no settings changed), so in the API
    process its DuckDB connection may come from and go back to ``keep_open``'s idle ones."""
    path = target_file(settings, target)
    pooled = keep_open.take(path) if reuse and path is not None else None
    if pooled is not None:
        adapter = _open(settings, target)
        adapter.adopt(pooled)
    else:
        adapter = open_target(settings, target, wait=wait)
    clean = False
    try:
        yield adapter
        clean = True
    except IdrError:  # an answer (404, 422), not a broken connection
        clean = True
        raise
    finally:
        if path is not None:
            keep_open.touch(path, adapter)
            conn = adapter.detach() if reuse and clean else None
            if conn is not None and not keep_open.give(path, conn):
                _close(conn)
        adapter.close()


def service_target(settings: Settings, db: str | None, target: str | None) -> str | None:
    """The service's name for the warehouse a command opens, or None when the service does
    not serve it (a --db file other than the configured one)."""
    if target:
        return target
    if db is None:
        return DEFAULT_TARGET
    wanted = duckdb_file(db, settings)
    return DEFAULT_TARGET if wanted is not None and _same_file(wanted, target_file(settings)) else None


def _same_file(a: str | None, b: str | None) -> bool:
    from pathlib import Path

    return a is not None and b is not None and Path(a).resolve() == Path(b).resolve()
