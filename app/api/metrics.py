"""/metrics: the warehouse metrics collector (idr_out.metrics_export) plus service metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.api.deps import Reader, problems
from app.services.observability import render_all

router = APIRouter(tags=["metrics"])

_TEXT = {"text/plain": {"schema": {"type": "string"}}}


def _metrics(request: Request) -> Response:
    body, ctype = render_all(request.app.state.runtime)
    return Response(content=body, media_type=ctype)


@router.get("/metrics", response_class=Response, responses={200: {"content": _TEXT}, **problems()})
def metrics(request: Request, _: Reader) -> Response:
    """Prometheus text exposition. Needs scope read (IDR_METRICS_REQUIRE_AUTH=false lifts it)."""
    return _metrics(request)


public_router = APIRouter(tags=["metrics"])


@public_router.get("/metrics", response_class=Response, responses={200: {"content": _TEXT}})
def metrics_public(request: Request) -> Response:
    return _metrics(request)
