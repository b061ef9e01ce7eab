"""Dependencies: the runtime, the caller's API key and its scope, common error responses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.api.schemas import TARGET_DESCRIPTION, Problem
from app.services import auth
from app.services.runtime import Runtime

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key in X-API-Key.")


# The `target` query parameter of every route that reads or writes one warehouse.
Target = Annotated[str, Query(min_length=1, max_length=64, description=TARGET_DESCRIPTION)]


# Dependencies that do no I/O are coroutines: a plain function would cost a worker-thread
# hand-off per request each.
async def get_rt(request: Request) -> Runtime:
    return request.app.state.runtime


Rt = Annotated[Runtime, Depends(get_rt)]


def _principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header: Annotated[str | None, Security(_header)],
) -> auth.Principal:
    key = header or (bearer.credentials if bearer else None)
    rt: Runtime = request.app.state.runtime
    with rt.engine.begin() as c:
        principal = auth.authenticate(c, key)
    request.state.principal = principal
    return principal


def scope(name: str) -> Callable[..., auth.Principal]:
    async def dep(principal: Annotated[auth.Principal, Depends(_principal)]) -> auth.Principal:
        auth.require(principal, name)
        return principal

    dep.__name__ = f"require_{name}"
    return dep


Reader = Annotated[auth.Principal, Depends(scope("read"))]
Runner = Annotated[auth.Principal, Depends(scope("run"))]
Admin = Annotated[auth.Principal, Depends(scope("admin"))]


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route can give (all problem+json)."""
    text = {
        400: "Bad request",
        401: "No or unknown API key",
        403: "The API key lacks the scope",
        404: "Not found",
        409: "Conflict with the current state",
        412: "If-Match does not match the resource's current ETag; nothing was written",
        415: "Unsupported media type",
        422: "Invalid input (names the field), including an unknown `target`",
        500: "Internal error",
        503: "A dependency is busy or down (Retry-After)",
    }
    out: dict[int | str, dict[str, Any]] = {}
    for c in sorted({400, 401, 403, 422, 500, 503, *codes}):
        out[c] = {
            "description": text[c],
            "content": {"application/problem+json": {"schema": {"$ref": f"#/components/schemas/{Problem.__name__}"}}},
        }
    return out
