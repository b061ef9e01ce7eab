"""/healthz (the process is up) and /readyz (state DB, broker and warehouse answer).

Unauthenticated on purpose: orchestrator probes carry no API key, and neither answer
reveals data. Readiness is probed every few seconds, so it is cheap and takes no lock: a
DuckDB file is looked at (there, readable and writable), never opened (opening it would
keep a Celery worker from it, as a DuckDB file has one process at a time); a remote
warehouse's connection check is reused for IDR_READYZ_WAREHOUSE_CHECK_SECONDS.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.api.deps import Rt, problems
from app.api.errors import problem
from app.api.schemas import Health, Ready
from app.core.settings import Settings
from app.services.warehouse import is_lock_error, target_file, target_names, warehouse

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    return Health(status="ok")


def _check(fn) -> str:
    try:
        fn()
        return "ok"
    except Exception as e:  # noqa: BLE001 - reported, not raised
        if is_lock_error(e) or getattr(e, "status", None) == 503:
            return "busy"
        return f"error: {type(e).__name__}"


def _duckdb_file_ready(path: str) -> None:
    """The file can be opened when a request or run needs it (or created, if new)."""
    p = Path(path)
    if p.exists():
        if not p.is_file():
            raise IsADirectoryError(f"{path} is not a file")
        if not os.access(p, os.R_OK | os.W_OK):
            raise PermissionError(f"{path} is not readable and writable by this process")
    elif not os.access(p.parent if str(p.parent) else Path("."), os.W_OK):
        raise FileNotFoundError(f"{path} does not exist and its directory is not writable")


_checked: dict[str, float] = {}  # remote target -> when its connection check last passed
_checked_lock = threading.Lock()


def _warehouse_ready(settings: Settings, name: str) -> None:
    path = target_file(settings, name)
    if path is not None:
        _duckdb_file_ready(path)
        return
    with _checked_lock:
        fresh = time.monotonic() - _checked.get(name, float("-inf")) < settings.readyz_warehouse_check_seconds
    if fresh:
        return
    with warehouse(settings, name, wait=0.5) as a:
        a.scalar("SELECT 1")
    with _checked_lock:
        _checked[name] = time.monotonic()


@router.get("/readyz", response_model=Ready, responses={503: problems(503)[503]})
def readyz(request: Request, rt: Rt):
    def state_db() -> None:
        with rt.engine.connect() as c:
            c.execute(text("SELECT 1"))

    def broker() -> None:
        if rt.dispatcher is None:
            raise RuntimeError("no dispatcher")
        rt.dispatcher.ping()

    def wh(name: str):
        return lambda: _warehouse_ready(rt.settings, name)

    checks = {"state_db": _check(state_db), "broker": _check(broker)}
    for name in target_names(rt.settings):
        # "busy" is ready: in production a worker process may hold the DuckDB file during a run.
        checks[f"warehouse:{name}"] = _check(wh(name))
    mode = rt.dispatcher.kind if rt.dispatcher else "embedded"
    if all(v in ("ok", "busy") for v in checks.values()):
        return Ready(status="ready", mode=mode, checks=checks)  # type: ignore[arg-type]
    failed = ", ".join(k for k, v in checks.items() if v not in ("ok", "busy"))
    resp: JSONResponse = problem(request, 503, f"not ready: {failed}", code="not_ready", checks=checks)
    resp.headers["Retry-After"] = "5"
    return resp
