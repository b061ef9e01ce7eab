"""The Celery worker: a leaf over app.services, built from the settings it is given.

Start a worker:  celery -A workers.celery_app worker --pool threads --concurrency 4
Start beat:      celery -A workers.celery_app beat

``make_celery(settings)`` builds an app whose tasks are app.services.tasks (the same table
the embedded worker runs) and whose worker installs the runtime from those settings when it
starts (``InstallRuntime``). Importing this module builds nothing: the ``app`` the celery
command line asks for is made from the environment's settings only then.

Why the threads pool: a DuckDB file can be open in one process only, and all of a worker's
threads share that process's database instance, so a dry run can run beside a real run.
Warehouses without that lock (Snowflake, BigQuery, Databricks) work with any pool.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery, bootsteps
from celery.signals import worker_process_init

from app.core.settings import Settings
from app.services import runtime
from app.services.dispatch import CeleryDispatcher, broker_app
from app.services.tasks import TASKS

log = logging.getLogger(__name__)

# Tasks take ids and are idempotent, so redelivery after a lost worker is safe.
TASK_OPTS = {"acks_late": True, "reject_on_worker_lost": True}


def install_runtime(settings: Settings, app: Celery) -> runtime.Runtime:
    """A worker's start: refuse unusable settings in one line (exit 2), then install the
    runtime the tasks use, built from ``settings``."""
    from app.services.execution import refuse_bad_exporters

    refuse_bad_exporters(settings)
    rt = runtime.build_runtime(settings, CeleryDispatcher(app))
    _refuse_without_webhook_keys(rt)
    runtime.set_runtime(rt)
    return rt


def _refuse_without_webhook_keys(rt: runtime.Runtime) -> None:
    """Stored webhooks need the key their secrets are encrypted under (app.services.secretbox)."""
    from sqlalchemy.exc import SQLAlchemyError

    from app.core.errors import ConfigError
    from app.services.secretbox import check_at_start

    try:
        with rt.session() as s:
            check_at_start(rt.settings, s)
    except ConfigError as e:
        rt.close()
        log.critical("refusing to start: %s", e.message)
        raise SystemExit(2) from None
    except SQLAlchemyError:  # not migrated yet: the API migrates it; no webhooks then
        log.debug("state DB not ready at worker start", exc_info=True)


def _runtime_step(settings: Settings) -> type[bootsteps.StartStopStep]:
    class InstallRuntime(bootsteps.StartStopStep):
        """Installs the runtime before the pool starts or any task is consumed, and closes it
        when the worker stops."""

        def __init__(self, worker: Any, **kwargs: Any) -> None:
            super().__init__(worker, **kwargs)
            self.rt = install_runtime(settings, worker.app)

        def stop(self, worker: Any) -> None:
            runtime.set_runtime(None)
            self.rt.close()

    return InstallRuntime


@worker_process_init.connect
def _after_fork(**_: object) -> None:
    """A prefork child must not share its parent's state-DB connections (the threads pool,
    the default here, has no children)."""
    try:
        rt = runtime.get_runtime()
    except RuntimeError:
        return
    rt.engine.dispose(close=False)


def make_celery(settings: Settings) -> Celery:
    """The worker's app: the broker app every process builds (app.services.dispatch), the
    tasks, and the runtime installed from ``settings`` when a worker starts."""
    app = broker_app(settings)
    for name, fn in TASKS.items():
        app.task(name=name, **TASK_OPTS)(fn)
    app.steps["worker"].add(_runtime_step(settings))
    return app


_cli_app: Celery | None = None
_cli_lock = threading.Lock()


def __getattr__(name: str) -> Celery:
    """``celery -A workers.celery_app`` looks up ``app``: built here, on that lookup, from the
    environment's settings (a worker process's configuration), once."""
    global _cli_app
    if name not in ("app", "celery_app"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _cli_lock:
        if _cli_app is None:
            _cli_app = make_celery(Settings())
        return _cli_app
