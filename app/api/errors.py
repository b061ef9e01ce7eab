"""One error shape for every 4xx/5xx: RFC 9457 problem details (application/problem+json)."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.errors import ConfigError, IdrError, UnavailableError

log = logging.getLogger(__name__)
MEDIA = "application/problem+json"


def problem(
    request: Request,
    status: int,
    detail: str | None,
    *,
    code: str | None = None,
    field: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "code": code,
    }
    if field is not None:
        body["field"] = field
    if errors is not None:
        body["errors"] = errors
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=MEDIA, headers=headers)


def _loc(loc: tuple[Any, ...]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _json_error(err: dict[str, Any], body: Any) -> str:
    """'the request body is not valid JSON: Expecting ',' delimiter at line 1, column 16'."""
    reason = str((err.get("ctx") or {}).get("error") or "syntax error")
    loc = err.get("loc") or ()
    pos = loc[-1] if loc and isinstance(loc[-1], int) else None
    where = ""
    if pos is not None and isinstance(body, str | bytes):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        before = text[:pos]
        line = before.count("\n") + 1
        where = f" at line {line}, column {pos - (before.rfind(chr(10)) + 1) + 1}"
    return f"the request body is not valid JSON: {reason}{where}"


def _allowed_methods(request: Request) -> list[str]:
    from starlette.routing import Match

    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE and getattr(route, "methods", None):
            methods |= set(route.methods)
        match, _ = route.matches(request.scope)
        if match == Match.PARTIAL and getattr(route, "methods", None):
            methods |= set(route.methods)
    methods.discard("HEAD")
    return sorted(methods)


def install(app: FastAPI) -> None:
    @app.exception_handler(IdrError)
    async def idr_error(request: Request, exc: IdrError) -> JSONResponse:
        status = exc.status
        if type(exc) is IdrError:  # a bare IdrError is raised for bad input, not a server fault
            status = 422 if exc.field else 400
        errors = exc.errors if isinstance(exc, ConfigError) else None
        if errors is None and isinstance(exc.details, list):
            errors = exc.details
        run_id = exc.details.get("run_id") if isinstance(exc.details, dict) else None
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, UnavailableError) else None
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
        return problem(
            request,
            status,
            exc.message,
            code=exc.code if type(exc) is not IdrError else "invalid_request",
            field=exc.field,
            errors=errors,
            headers=headers,
            run_id=run_id,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        bad_json = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
        if bad_json is not None:
            return problem(request, 400, _json_error(bad_json, exc.body), code="invalid_json", field="")
        errors = [{"field": _loc(tuple(e.get("loc", ()))), "message": str(e.get("msg", ""))} for e in exc.errors()]
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        detail = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        return problem(request, 422, detail, code="invalid_request", field=first["field"], errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # FastAPI has one route per method, so Starlette's Allow names only the first match.
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return problem(request, exc.status_code, str(exc.detail), code="http_error", headers=headers or None)

    @app.exception_handler(Exception)
    async def unhandled(request: Request, exc: Exception) -> JSONResponse:
        # Never echo internals (they may hold connection strings); the log has the trace.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(request, 500, "internal error; see the service log", code="internal_error")
