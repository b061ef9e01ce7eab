"""Celery tasks. Each takes ids only, is idempotent (safe to redeliver: acks_late) and
delegates to app.services; embedded mode calls these very functions on threads.

Retries are explicit re-sends with a countdown (webhooks), so the same code paths work
with a broker and embedded.
"""

from __future__ import annotations

from workers.celery_app import celery_app

TASK_OPTS = {"acks_late": True, "reject_on_worker_lost": True}


@celery_app.task(name="idr.run", **TASK_OPTS)
def run(run_id: str) -> str:
    from app.services.execution import execute_run

    return execute_run(run_id)


@celery_app.task(name="idr.deliver_webhook", **TASK_OPTS)
def deliver_webhook(delivery_id: str) -> str:
    from app.services.webhooks import deliver

    return deliver(delivery_id)


@celery_app.task(name="idr.push_metrics", **TASK_OPTS)
def push_metrics(target: str = "default", run_id: str | None = None) -> dict:
    from app.services.execution import push_metrics as push

    return push(target, run_id)


@celery_app.task(name="idr.cleanup_dry_runs", **TASK_OPTS)
def cleanup_dry_runs(target: str = "default") -> list[str]:
    from app.services.execution import cleanup_dry_runs as cleanup

    return cleanup(target)


@celery_app.task(name="idr.reap_stale_runs", **TASK_OPTS)
def reap_stale_runs() -> list[str]:
    from app.services.execution import reap_stale_runs as reap

    return reap()


@celery_app.task(name="idr.redispatch_webhooks", **TASK_OPTS)
def redispatch_webhooks() -> int:
    from app.services.webhooks import redispatch_overdue

    return redispatch_overdue()
