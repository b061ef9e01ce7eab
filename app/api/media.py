"""Request media types: JSON bodies everywhere, YAML too where a route reads it itself.

A body of another type answers 415 naming what to send (FastAPI would try to read it as
JSON and answer a puzzling 422). A body without a content type is read as JSON: `curl -d`
users forget the header more often than not.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

JSON_TYPES = ("application/json",)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
# (method, path) -> media types the route accepts besides JSON.
EXTRA_TYPES: dict[tuple[str, str], tuple[str, ...]] = {("PUT", "/v1/config"): YAML_TYPES}
_BODY_METHODS = ("POST", "PUT", "PATCH")


async def send_problem(
    send: Send,
    scope: Scope,
    status: int,
    title: str,
    detail: str,
    *,
    code: str,
    field: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """An RFC 9457 problem answered from ASGI middleware, before any route runs."""
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": scope["path"],
        "code": code,
        "field": field,
    }
    data = json.dumps(body).encode()
    start_headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": start_headers + (headers or [])})
    await send({"type": "http.response.body", "body": data})


def accepted(method: str, path: str) -> tuple[str, ...]:
    return JSON_TYPES + EXTRA_TYPES.get((method, path.rstrip("/") or "/"), ())


def _is_json(ctype: str) -> bool:
    return ctype in JSON_TYPES or (ctype.startswith("application/") and ctype.endswith("+json"))


class MediaTypeMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        raw = headers.get(b"content-type", b"").decode("latin-1")
        ctype = raw.split(";")[0].strip().lower()
        length = headers.get(b"content-length")
        has_body = length is None or length not in (b"0", b"")
        ok = accepted(scope["method"], scope["path"])
        if not ctype:
            if has_body:  # read as JSON
                scope = dict(scope)
                kept = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
                scope["headers"] = [*kept, (b"content-type", b"application/json")]
        elif has_body and not (_is_json(ctype) or ctype in ok):  # an empty body has no type to refuse
            await send_problem(
                send,
                scope,
                415,
                "Unsupported Media Type",
                f"content type {ctype!r} is not supported here; send {' or '.join(ok)}",
                code="unsupported_media_type",
                field="content-type",
                headers=[(b"accept", ", ".join(ok).encode())],
            )
            return
        await self.app(scope, receive, send)


class _TooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Request bodies above IDR_API_MAX_BODY_BYTES are refused with 413 before they are
    read whole (by Content-Length, or while a body without one streams in)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._refuse(scope, send)
            return
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        await send_problem(
            send,
            scope,
            413,
            "Content Too Large",
            f"the request body is larger than {self.limit} bytes (IDR_API_MAX_BODY_BYTES)",
            code="body_too_large",
            field="",
        )
