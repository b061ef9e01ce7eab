"""What every console page shares: templates, the signed-in principal, CSRF, flash messages.

A session is Starlette's signed cookie (``HttpOnly``, ``SameSite=Strict``, path ``/ui``)
holding the API key's *id*, a CSRF token and pending flash messages, never the key: each
request looks the key up again, so revoking it ends its sessions. Every form that changes
something carries the session's CSRF token and is refused (403) without it or from another
origin.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.core.errors import ForbiddenError, IdrError
from app.core.timefmt import as_utc
from app.services import auth
from app.services.runtime import Runtime

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
COOKIE = "idr_console"
# Everything a page loads comes from this app: a browser refuses anything else, so a page that
# would need the network to work cannot pass the browser tests.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
PAGE_SIZE = 25


class SignInRequired(Exception):
    """No session, or its key was revoked: the page sends the browser to the sign-in form."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or "")
        self.message = message


def rt_of(request: Request) -> Runtime:
    return request.app.state.runtime


def session(request: Request) -> dict[str, Any]:
    return request.session


def csrf_token(request: Request) -> str:
    s = session(request)
    if not s.get("csrf"):
        s["csrf"] = secrets.token_urlsafe(24)
    return s["csrf"]


def flash(request: Request, message: str, kind: str = "info") -> None:
    s = session(request)
    s["flash"] = [*s.get("flash", []), [kind, message]][-5:]


def take_flashes(request: Request) -> list[tuple[str, str]]:
    return [tuple(x) for x in session(request).pop("flash", [])]  # type: ignore[misc]


def principal(request: Request) -> auth.Principal:
    key_id = session(request).get("kid")
    if not key_id:
        raise SignInRequired()
    try:
        with rt_of(request).session() as s:
            p = auth.principal_by_id(s, key_id)
    except IdrError as e:
        session(request).pop("kid", None)
        raise SignInRequired(e.message) from None
    request.state.principal = p
    return p


Viewer = Annotated[auth.Principal, Depends(principal)]


async def checked_form(request: Request) -> dict[str, str]:
    """The posted form, once its CSRF token and origin are checked (403 otherwise)."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        o, own = urlsplit(origin), request.base_url
        if (o.scheme, o.netloc) != (own.scheme, own.netloc):
            raise ForbiddenError(f"cross-origin form post from {origin} refused", field="origin")
    form = await request.form()
    sent = str(form.get("csrf") or "")
    want = session(request).get("csrf") or ""
    if not sent or not want or not hmac.compare_digest(sent, want):
        raise ForbiddenError("this form's CSRF token is missing or stale; reload the page and try again", field="csrf")
    return {k: str(v) for k, v in form.items() if k != "csrf"}


Form = Annotated[dict[str, str], Depends(checked_form)]


def require(p: auth.Principal, scope: str) -> None:
    auth.require(p, scope)


def safe_next(value: str | None) -> str:
    """Only a path of this console: never an open redirect."""
    if value and value.startswith("/ui/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ui/runs"


# ------------------------------------------------------------------ formatting
def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "–"
    v = float(value)
    if v < 1:
        return f"{v * 1000:.0f} ms"
    if v < 60:
        return f"{v:.1f} s"
    if v < 3600:
        return f"{int(v // 60)} min {int(v % 60)} s"
    return f"{int(v // 3600)} h {int(v % 3600 // 60)} min"


def fmt_time(value: datetime | str | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    dt = as_utc(value)
    assert dt is not None
    return dt.strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_int(value: Any) -> str:
    if value is None:
        return "–"
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


def duration(start: datetime | None, end: datetime | None) -> float | None:
    if start is None:
        return None
    end = end or datetime.now(UTC)
    return (as_utc(end) - as_utc(start)).total_seconds()  # type: ignore[operator]


def query(request: Request, **changes: Any) -> str:
    """This page's URL with some query parameters changed (None removes one)."""
    params = dict(request.query_params)
    for k, v in changes.items():
        if v is None:
            params.pop(k, None)
        else:
            params[k] = str(v)
    return request.url.path + ("?" + urlencode(params) if params else "")


templates.env.filters.update(seconds=fmt_seconds, when=fmt_time, num=fmt_int)
templates.env.globals.update(duration=duration)


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    p: auth.Principal | None = getattr(request.state, "principal", None)
    ctx: dict[str, Any] = {
        "principal": p,
        "can": (lambda scope: p is not None and p.allows(scope)),
        "csrf": csrf_token(request),
        "flashes": take_flashes(request),
        "query": lambda **kw: query(request, **kw),
        "path": request.url.path,
    }
    ctx.update(context or {})
    resp = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    resp.headers.update(SECURITY_HEADERS)
    return resp
