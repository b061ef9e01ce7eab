"""Sending tasks through a broker: the Celery app every process builds from its settings.

The API sends with a bare app (it runs no tasks); a worker (workers/) builds on the same app
and registers app.services.tasks on it. Both read their queue, visibility timeout and beat
schedule from here, so a sender and a worker with the same settings always meet.
"""

from __future__ import annotations

from celery import Celery

from app.core.settings import Settings


def broker_app(settings: Settings) -> Celery:
    # set_as_current=False: nothing may pick this app up as a process-wide default.
    app = Celery("idr", broker=settings.broker_url or "memory://", set_as_current=False)
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
