"""The web console: server-rendered pages under /ui, served by the API process itself.

Mounted by ``app.main.create_app`` as a sub-application so that its pages answer in HTML
(errors too) while /v1 keeps answering problem+json. Same API keys and scopes: a person
signs in by pasting a key once. Every script and stylesheet comes from ``static/``; the
pictures (graphs, charts, timing bars) are SVG drawn on the server (docs/decisions/0006).
"""

from __future__ import annotations

import logging
import secrets
from typing import Annotated

from fastapi import FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from app.core.errors import IdrError, UnauthorizedError, UnavailableError
from app.services import auth
from app.services.runtime import Runtime
from app.ui import clusters, config, review, runs
from app.ui.web import COOKIE, HERE, SignInRequired, checked_form, flash, render, rt_of, safe_next, session

log = logging.getLogger(__name__)


def _error_page(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    resp = render(request, "error.html", {"status": status, "message": message}, status_code=status)
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def create_console(rt: Runtime) -> FastAPI:
    settings = rt.settings
    ui = FastAPI(title="idr console", docs_url=None, redoc_url=None, openapi_url=None)
    ui.state.runtime = rt
    secret = settings.ui_session_secret.get_secret_value() if settings.ui_session_secret else secrets.token_urlsafe(32)
    ui.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie=COOKIE,
        max_age=int(settings.ui_session_hours * 3600),
        path="/ui",
        same_site="strict",
    )
    ui.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @ui.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, exc: SignInRequired) -> Response:
        if exc.message:
            flash(request, exc.message, "error")
        if request.method == "GET" and not request.headers.get("x-idr-fragment"):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/ui/sign-in?next={_quote(target)}", status_code=303)
        return _error_page(request, 401, "sign in first")

    @ui.exception_handler(IdrError)
    async def idr_error(request: Request, exc: IdrError) -> Response:
        status = exc.status if type(exc) is not IdrError else 400
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, UnavailableError) else None
        if status >= 500:
            log.error("console %s %s failed: %s", request.method, request.url.path, exc.message)
        return _error_page(request, status, exc.message, headers)

    @ui.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        # A hand-edited URL or form: say which parameter is wrong, on a page, not as JSON.
        parts = [f"{'.'.join(str(x) for x in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}" for e in exc.errors()]
        return _error_page(request, 400, "; ".join(parts))

    @ui.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _error_page(request, exc.status_code, str(exc.detail))

    @ui.exception_handler(Exception)
    async def unhandled(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on console %s %s", request.method, request.url.path)
        return _error_page(request, 500, "internal error; see the service log")

    @ui.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/ui/runs", status_code=303)

    @ui.get("/sign-in", response_class=HTMLResponse)
    def sign_in_form(request: Request, next: str | None = None) -> Response:
        return render(request, "sign_in.html", {"next": safe_next(next)})

    @ui.post("/sign-in", response_class=HTMLResponse)
    async def sign_in(request: Request, api_key: Annotated[str, Form(max_length=512)] = "") -> Response:
        form = await checked_form(request)
        nxt = safe_next(form.get("next"))
        try:
            with rt_of(request).session() as s:
                p = auth.authenticate(s, api_key.strip())
        except UnauthorizedError as e:
            msg = "paste an API key" if not api_key.strip() else e.message
            return render(request, "sign_in.html", {"next": nxt, "error": msg}, status_code=401)
        s = session(request)
        s.clear()  # a fresh session (and CSRF token) for the signed-in user
        s["kid"] = p.key_id
        flash(request, f"Signed in as {p.name} ({', '.join(sorted(p.scopes))}).")
        return RedirectResponse(nxt, status_code=303)

    @ui.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        await checked_form(request)
        session(request).clear()
        flash(request, "Signed out.")
        return RedirectResponse("/ui/sign-in", status_code=303)

    for r in (runs.router, review.router, clusters.router, config.router):
        ui.include_router(r)
    return ui


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")
