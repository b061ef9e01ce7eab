"""Dry-run review over HTTP: summary, entity changes, cluster changes, apply, delete."""

from __future__ import annotations

from typing import Any

from app.core.errors import ConflictError
from app.core.vocabulary import ACTIVE_STATUSES
from app.db.models import Run
from app.pipeline import dryrun
from app.services.auth import Principal
from app.services.runs import create_run
from app.services.runtime import Runtime
from app.services.warehouse import DEFAULT_TARGET, warehouse


def _target(rt: Runtime, run_id: str) -> str:
    # Dry runs started by the CLI have no service row: they live on the default target.
    with rt.session() as s:
        run = s.get(Run, run_id)
        return run.target if run is not None else DEFAULT_TARGET


def summary(rt: Runtime, run_id: str) -> dict[str, Any]:
    with warehouse(rt.settings, _target(rt, run_id)) as a:
        info = dryrun.get_dry_run(a, run_id)
        s = dryrun.get_summary(a, run_id)
        # The summary's own column holds whole seconds; the run's history the exact duration.
        seconds = a.scalar("SELECT duration_seconds FROM idr_out.run_history WHERE run_id = $r", {"r": run_id})
    return {
        **s,
        "run_id": run_id,
        "status": info.status,
        "mode": info.mode,
        "affected_entities": dryrun.affected_entities(s),
        "execution_time_seconds": float(seconds) if seconds is not None else s.get("execution_time_seconds"),
    }


def changes(
    rt: Runtime, run_id: str, change_type: str | None, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    with warehouse(rt.settings, _target(rt, run_id)) as a:
        return dryrun.list_changes(a, run_id, change_type, cursor, limit)


def cluster_changes(
    rt: Runtime, run_id: str, change_type: str | None, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    with warehouse(rt.settings, _target(rt, run_id)) as a:
        return dryrun.page_cluster_changes(a, run_id, change_type, cursor, limit)


def apply(rt: Runtime, principal: Principal, run_id: str, idempotency_key: str | None) -> tuple[Run, bool]:
    """Queue a real run that publishes exactly the reviewed proposal; 409 with the reason
    when the dry run cannot be applied or its inputs changed (checked again before publish)."""
    target = _target(rt, run_id)
    mode: dict[str, str] = {}

    def precheck() -> None:
        with warehouse(rt.settings, target) as a:
            mode["mode"] = dryrun.check_applicable(a, run_id).mode

    # The mode is part of the idempotent request only through the dry run's id.
    with warehouse(rt.settings, target) as a:
        mode["mode"] = dryrun.get_dry_run(a, run_id).mode  # 404 for unknown ids and real runs
    return create_run(
        rt,
        principal,
        target=target,
        mode=mode["mode"],
        dry_run=False,
        idempotency_key=idempotency_key,
        apply_of=run_id,
        precheck=precheck,
    )


def delete(rt: Runtime, run_id: str) -> bool:
    with rt.session() as s:
        run = s.get(Run, run_id)
        if run is not None and run.status in ACTIVE_STATUSES:
            raise ConflictError(f"dry run {run_id} is {run.status}; cancel it first")
    with warehouse(rt.settings, _target(rt, run_id)) as a:
        return dryrun.delete_dry_run(a, run_id)
