"""Runs the CLI (and `idr serve --demo` at start-up) executes in its own process, recorded in
the service state DB like an API run: the API lists them with their stage progress, can
cancel them, webhooks fire for them, and one writing run per target holds across CLI and
API. The same task code runs them (``execution.execute``), only on the caller's thread.
"""

from __future__ import annotations

import getpass
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.core.errors import ConflictError
from app.core.run_record import RunResult
from app.core.settings import Settings
from app.db.models import Run
from app.services.auth import Principal
from app.services.runtime import Runtime, build_runtime, get_runtime, set_runtime

log = logging.getLogger(__name__)


class InlineDispatcher:
    """Tasks of a process without a worker: webhook deliveries and metrics pushes run at
    once on the caller's thread; a delivery's retry (a countdown) is left PENDING in the
    state DB, where the service's redispatch picks it up. The run itself is executed by
    the caller, so ``idr.run`` is only noted."""

    kind = "inline"

    def __init__(self) -> None:
        self.queued_runs: list[str] = []

    def send(self, task: str, args: list[Any], countdown: float | None = None) -> None:
        if task == "idr.run":
            self.queued_runs.extend(args)
            return
        if countdown:
            return
        from app.services.tasks import TASKS

        try:
            TASKS[task](*args)
        except Exception as e:  # noqa: BLE001 - a side task must not fail the command
            log.warning("%s failed: %s", task, str(e).splitlines()[0] if str(e) else type(e).__name__)

    def ping(self) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class LocalRun:
    """What a recorded local run reports back: the service's status and the pipeline's result."""

    run_id: str
    status: str
    result: RunResult | None
    error_message: str | None
    error_stage: str | None


def open_runtime(settings: Settings) -> Runtime:
    """The state DB as the service sees it, with tasks run inline; installed process-wide
    (the task code asks ``get_runtime()``)."""
    from app.db.session import upgrade

    if settings.state_db_auto_migrate:
        upgrade(settings.state_db_url)
    # A command waits for a busy DuckDB file as long as a CLI command does, not a worker.
    settings = settings.model_copy(update={"worker_warehouse_wait_seconds": settings.cli_warehouse_wait_seconds})
    rt = build_runtime(settings, InlineDispatcher())
    set_runtime(rt)
    return rt


def run_recorded(
    rt: Runtime,
    target: str,
    mode: str | None,
    *,
    dry_run: bool = False,
    apply_of: str | None = None,
    requested_by: str | None = None,
    observer: Callable[[str, str], None] | None = None,
) -> LocalRun:
    """Record a run (ConflictError when a writing run holds the target), execute it here,
    and return its outcome. A dry run being applied is checked for staleness first."""
    from app.services.execution import execute, reap_stale_runs
    from app.services.runs import create_run

    assert get_runtime() is rt
    reap_stale_runs()  # a CLI run that was killed must not hold the target forever
    precheck = None
    if apply_of is not None:
        from app.pipeline import dryrun
        from app.services.warehouse import warehouse

        def precheck() -> None:
            with warehouse(rt.settings, target, wait=rt.settings.cli_warehouse_wait_seconds) as a:
                dryrun.check_applicable(a, apply_of)

        with warehouse(rt.settings, target, wait=rt.settings.cli_warehouse_wait_seconds) as a:
            mode = dryrun.get_dry_run(a, apply_of).mode  # an apply runs in its dry run's mode
    if mode is None:
        raise ValueError("mode is required unless a dry run is applied")

    who = requested_by or f"cli:{_user()}"
    principal = Principal(key_id="cli", name=who[:64], scopes=frozenset({"admin"}))
    run, _ = create_run(rt, principal, target=target, mode=mode, dry_run=dry_run, apply_of=apply_of, precheck=precheck)
    status, result = execute(run.id, observer)
    with rt.session() as s:
        row = s.get(Run, run.id)
        if row is None:  # pragma: no cover - deleted under us
            raise ConflictError(f"run {run.id} vanished from the state database")
        return LocalRun(run.id, row.status, result, row.error_message, row.error_stage)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "unknown"
