"""The background tasks by name: what the API sends and what every worker runs.

One table for both workers: the embedded one (app.services.embedded, threads in the API
process) and Celery (workers/, which registers these very functions). Each task takes ids
only and is idempotent (safe to redeliver: acks_late), and asks ``get_runtime()`` for the
settings and state DB the process installed at start.

The imports are inside the functions so that importing this table stays cheap (the CLI).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def run(run_id: str) -> str:
    from app.services.execution import execute_run

    return execute_run(run_id)


def deliver_webhook(delivery_id: str) -> str:
    from app.services.webhooks import deliver

    return deliver(delivery_id)


def push_metrics(target: str = "default", run_id: str | None = None) -> dict:
    from app.services.execution import push_metrics as push

    return push(target, run_id)


def cleanup_dry_runs(target: str = "default") -> list[str]:
    from app.services.execution import cleanup_dry_runs as cleanup

    return cleanup(target)


def reap_stale_runs() -> list[str]:
    from app.services.execution import reap_stale_runs as reap

    return reap()


def redispatch_webhooks() -> int:
    from app.services.webhooks import redispatch_overdue

    return redispatch_overdue()


TASKS: dict[str, Callable[..., Any]] = {
    "idr.run": run,
    "idr.deliver_webhook": deliver_webhook,
    "idr.push_metrics": push_metrics,
    "idr.cleanup_dry_runs": cleanup_dry_runs,
    "idr.reap_stale_runs": reap_stale_runs,
    "idr.redispatch_webhooks": redispatch_webhooks,
}
