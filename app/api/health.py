"""/healthz (the process is up) and /readyz (state DB, broker and warehouse answer).

Unauthenticated on purpose: orchestrator probes carry no API key, and neither answer
reveals data.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.api.deps import Rt, problems
from app.api.errors import problem
from app.api.schemas import Health, Ready
from app.services.warehouse import is_lock_error, target_names, warehouse

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
        def check() -> None:
            with warehouse(rt.settings, name, wait=0.5) as a:
                a.scalar("SELECT 1")

        return check

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
