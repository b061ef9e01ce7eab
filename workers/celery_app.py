"""The Celery application: Redis broker in production, the same tasks run embedded without one.

Start a worker:  celery -A workers.celery_app worker --pool threads --concurrency 4
Start beat:      celery -A workers.celery_app beat

Why the threads pool: a DuckDB file can be open in one process only, and all of a worker's
threads share that process's database instance, so a dry run can run beside a real run.
Warehouses without that lock (Snowflake, BigQuery, Databricks) work with any pool.
"""

from __future__ import annotations

import logging
import threading

from celery import Celery
from celery.signals import worker_init

from app.core.settings import Settings, get_settings

log = logging.getLogger(__name__)


def make_celery(settings: Settings) -> Celery:
    app = Celery("idr", broker=settings.broker_url or "memory://", include=["workers.tasks"])
    app.conf.update(
        # Tasks take ids and are idempotent, so redelivery after a lost worker is safe.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=settings.celery_queue,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": settings.celery_visibility_timeout_seconds},
        enable_utc=True,
        timezone="UTC",
        beat_schedule={
            "dry-run-retention-cleanup": {
                "task": "idr.cleanup_dry_runs",
                "schedule": settings.dry_run_cleanup_interval_seconds,
            },
            "reap-stale-runs": {"task": "idr.reap_stale_runs", "schedule": settings.reaper_interval_seconds},
            "redispatch-webhooks": {"task": "idr.redispatch_webhooks", "schedule": 300.0},
        },
    )
    return app


celery_app = make_celery(get_settings())


@worker_init.connect
def _check_settings(**_: object) -> None:
    """A worker with unusable exporter settings refuses to start (one clear line) instead
    of failing the push after every run."""
    from app.services.execution import refuse_bad_exporters

    refuse_bad_exporters(get_settings())
    _refuse_without_webhook_keys()


def _refuse_without_webhook_keys() -> None:
    """Stored webhooks need the key their secrets are encrypted under (app.services.secretbox)."""
    from sqlalchemy.exc import SQLAlchemyError

    from app.core.errors import ConfigError
    from app.services.secretbox import check_at_start

    try:
        with init_worker_runtime().session() as s:
            check_at_start(get_settings(), s)
    except ConfigError as e:
        log.critical("refusing to start: %s", e.message)
        raise SystemExit(2) from None
    except SQLAlchemyError:  # not migrated yet: the API migrates it; no webhooks then
        log.debug("state DB not ready at worker start", exc_info=True)

_init_lock = threading.Lock()


class CeleryDispatcher:
    """Sends tasks through the broker (production)."""

    kind = "celery"

    def __init__(self, app: Celery) -> None:
        self.app = app

    def send(self, task: str, args: list, countdown: float | None = None) -> None:
        self.app.send_task(task, args=args, countdown=countdown)

    def ping(self) -> None:
        with self.app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)

    def close(self) -> None:
        pass


def init_worker_runtime():
    """Wire a worker process (or any process using the broker) from settings, once."""
    from app.services import runtime

    with _init_lock:
        if runtime._runtime is not None:
            return runtime._runtime
        rt = runtime.build_runtime(get_settings(), CeleryDispatcher(celery_app))
        runtime.set_runtime(rt)
        return rt
