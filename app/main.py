"""The HTTP service: ``create_app()`` wires settings, state DB, task dispatch and routers.

Embedded (no IDR_BROKER_URL): tasks run on worker threads inside this process, the same
task functions (app.services.tasks) a Celery worker runs. With a broker: tasks go to Celery
workers (workers/), started with the same settings.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from prometheus_client import CollectorRegistry

from app.api import audit, dry_runs, erasures, errors, health, lookups, metrics, runs, webhooks
from app.api import config as config_api
from app.api.media import BodyLimitMiddleware, MediaTypeMiddleware
from app.core.settings import Settings, get_settings
from app.services.runtime import Runtime, build_runtime, set_runtime
from app.services.warehouse import keep_open

log = logging.getLogger(__name__)

VERSION = "1.0.0"


class _Periodic:
    """Reaper (and, embedded, the dry-run cleanup schedule) on a daemon thread."""

    def __init__(self, jobs: list[tuple[float, Callable[[], Any]]]) -> None:
        self._jobs = jobs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="idr-periodic", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        due = [time.monotonic() + every for every, _ in self._jobs]
        while not self._stop.wait(0.5):
            now = time.monotonic()
            for i, (every, fn) in enumerate(self._jobs):
                if now >= due[i]:
                    due[i] = now + every
                    try:
                        fn()
                    except Exception:  # keep the loop alive
                        log.exception("periodic job %s failed", getattr(fn, "__name__", fn))


def _dispatcher(settings: Settings):
    if settings.broker_url:
        from app.services.dispatch import CeleryDispatcher, broker_app

        # The API only sends: the tasks run in workers (workers/), which nothing here imports.
        return CeleryDispatcher(broker_app(settings))
    from app.services.embedded import EmbeddedDispatcher

    return EmbeddedDispatcher(settings.embedded_workers)


def _warehouse_registry(settings: Settings, rt: Runtime) -> CollectorRegistry:
    from app.metrics.collector import file_state_key, make_registry
    from app.services.observability import StateSnapshotStore
    from app.services.warehouse import DEFAULT_TARGET, open_target, target_file

    path = target_file(settings, DEFAULT_TARGET)
    # A scrape never waits for a DuckDB file another process holds: it serves the values it
    # read last. The file's stat tells whether anything changed since, without opening it.
    key = file_state_key(path, f"{path}.wal") if path and path != ":memory:" else None
    return make_registry(
        lambda: open_target(settings, DEFAULT_TARGET, wait=0),
        cache_key=key,
        store=StateSnapshotStore(rt, DEFAULT_TARGET),
    )


def _mount_console(app: FastAPI, rt: Runtime) -> None:
    """The web console under /ui (app.ui), and / sends a browser there."""
    from fastapi.responses import RedirectResponse

    from app.ui import create_console

    app.mount("/ui", create_console(rt), name="console")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)


def _prune_audit(rt: Runtime) -> int:
    """Audit events older than IDR_AUDIT_RETENTION_DAYS go (every API process may do it)."""
    from app.services.audit import prune

    with rt.session() as s:
        return prune(s, rt.settings.audit_retention_days)


def _check_webhook_keys(rt: Runtime) -> None:
    """Stored webhooks need the key their secrets are encrypted under: refuse to start without it."""
    from sqlalchemy.exc import SQLAlchemyError

    from app.core.errors import ConfigError
    from app.services.secretbox import require_key

    try:
        with rt.session() as s:
            require_key(rt.settings, s)
    except SQLAlchemyError:  # a new state DB (migrated at start-up): no webhooks yet
        return
    except ConfigError as e:
        log.critical("refusing to start: %s", e.message)
        raise SystemExit(2) from None


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    from app.services.execution import refuse_bad_exporters

    if settings.webhook_secret_keys is not None:
        from app.services.secretbox import _box

        _box(settings)  # malformed keys: refused before anything starts

    refuse_bad_exporters(settings)
    rt: Runtime = build_runtime(settings)
    _check_webhook_keys(rt)

    from app.services.observability import HttpMetrics, MetricsMiddleware, StateCollector

    service_registry = CollectorRegistry(auto_describe=False)
    service_registry.register(StateCollector(rt))
    http_metrics = HttpMetrics(service_registry)
    rt.registries = [_warehouse_registry(settings, rt), service_registry]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.state_db_auto_migrate:
            from app.db.session import upgrade

            upgrade(settings.state_db_url)
        from app.services.secretbox import encrypt_plaintext

        with rt.session() as s:
            encrypt_plaintext(settings, s)
        rt.dispatcher = _dispatcher(settings)
        set_runtime(rt)
        keep_open.seconds = settings.duckdb_keep_open_seconds
        if settings.bootstrap_api_key is not None:
            from app.services.auth import ensure_key

            with rt.session() as s:
                ensure_key(s, "bootstrap", settings.bootstrap_api_key.get_secret_value(), "admin")
        from app.services import webhooks
        from app.services.execution import reap_stale_runs, recover_on_start

        jobs: list[tuple[float, Callable[[], Any]]] = [
            (settings.reaper_interval_seconds, reap_stale_runs),
            (3600.0, lambda: _prune_audit(rt)),
        ]
        if rt.dispatcher.kind == "embedded":
            # No connection is held between requests and runs: the DuckDB file stays free for
            # the user's own tools and the CLI (app.services.warehouse).
            recover_on_start(rt)
            jobs.append(
                (settings.dry_run_cleanup_interval_seconds, lambda: rt.send("idr.cleanup_dry_runs", ["default"]))
            )
            # Deliveries whose retry nobody scheduled here: runs the CLI recorded (their first
            # attempt went out from the CLI process), or retries a previous process lost.
            jobs.append((30.0, lambda: webhooks.redispatch_overdue(rt, min_age_seconds=30.0)))
        periodic = _Periodic(jobs)
        periodic.start()
        try:
            yield
        finally:
            periodic.stop()
            rt.close()
            keep_open.seconds = 0.0
            keep_open.release()
            set_runtime(None)

    app = FastAPI(
        title="idr",
        version=VERSION,
        description=(
            "Identity resolution inside your warehouse: runs and dry runs, review and apply, "
            "configuration, lookups, webhooks. Errors are RFC 9457 problem details."
        ),
        lifespan=lifespan,
    )
    app.state.runtime = rt
    app.add_middleware(MediaTypeMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=http_metrics)
    app.add_middleware(BodyLimitMiddleware, limit=settings.api_max_body_bytes)
    errors.install(app)
    for r in (
        runs.router,
        dry_runs.router,
        config_api.router,
        lookups.router,
        erasures.router,
        webhooks.router,
        audit.router,
        health.router,
    ):
        app.include_router(r)
    app.include_router(metrics.router if settings.metrics_require_auth else metrics.public_router)
    _mount_console(app, rt)

    def custom_openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        comps = schema.setdefault("components", {}).setdefault("schemas", {})
        # Config bodies are validated by app.config.validate, not by FastAPI; their schemas
        # are still published so clients (and schemathesis) know the shape.
        from app.api.schemas import Problem

        for model in [Problem, *config_api.EXTRA_SCHEMAS]:
            js = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in js.pop("$defs", {}).items():
                comps.setdefault(name, sub)
            comps.setdefault(model.__name__, js)
        app.openapi_schema = schema
        return schema

    app.openapi = custom_openapi  # type: ignore[method-assign]
    return app
