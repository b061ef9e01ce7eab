"""Task bodies: execute a run, reap runs whose worker died, push metrics, clean up dry runs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.errors import IdrError
from app.core.redact import redact_values
from app.core.run_record import RunResult
from app.core.timefmt import rfc3339
from app.core.vocabulary import PUBLISHED_STATUSES, REMOVAL_COLUMNS
from app.db.models import Run, RunErasure, now_utc
from app.pipeline.context import Fence
from app.services import runs, webhooks
from app.services.runs import TERMINAL
from app.services.runtime import Runtime, get_runtime
from app.services.warehouse import warehouse

log = logging.getLogger(__name__)


class RunCancelled(Exception):
    """Raised from the progress callback: the runner aborts before publish."""


class RunTimedOut(IdrError):
    """The run ran past IDR_RUN_TIMEOUT_SECONDS: stopped like a cancel, ends FAILED."""


def _timeout_message(rt: Runtime) -> str:
    return (
        f"the run exceeded IDR_RUN_TIMEOUT_SECONDS ({rt.settings.run_timeout_seconds:g} s) and was stopped; "
        "production tables untouched"
    )


def _events(run: Run) -> list[str]:
    out = []
    if run.status == "DRY_RUN_COMPLETE":
        out.append("dry_run.completed")
    elif run.status in PUBLISHED_STATUSES:
        out.append("run.succeeded")
    elif run.status == "FAILED":
        out.append("run.failed")
    if int((run.counts or {}).get("large_clusters") or 0) > 0 and run.status != "FAILED":
        out.append("cluster.large_detected")
    return out


def event_deliveries(s: Session, run: Run) -> list[str]:
    """The run's events, and one erasure.completed per erasure request it applied."""
    out = [d for e in _events(run) for d in webhooks.create_deliveries(s, e, run_payload(run))]
    if run.status in PUBLISHED_STATUSES and not run.dry_run:
        for er in run.erasures:
            if not er.applied:
                continue
            data = {
                "erasure_id": er.erasure_id,
                "run_id": run.id,
                "target": run.target,
                "entities_removed": int(er.entities_removed),
                "took_effect_at": rfc3339(run.ended_at),
            }
            out += webhooks.create_deliveries(s, "erasure.completed", data)
    return out


def run_erasures(run_id: str, r: RunResult) -> list[RunErasure]:
    """The erasure requests a run applied or lifted, as the service keeps them."""
    ids = sorted({*r.erasures_applied, *r.erasures_lifted})
    return [
        RunErasure(
            run_id=run_id, erasure_id=e, applied=e in r.erasures_applied,
            entities_removed=int(r.erasures_applied.get(e, 0)), lifted=e in r.erasures_lifted,
        )
        for e in ids
    ]  # fmt: skip


def _audit_lifted(s: Session, run: Run) -> None:
    from app.services import audit

    for er in run.erasures:
        if er.lifted:
            audit.record(
                s, kind="erasure", action="erasure.lifted", actor=run.requested_by or "worker", target=run.target,
                subject=er.erasure_id, diff={"run_id": run.id, "lifted_at": rfc3339(run.ended_at)},
            )  # fmt: skip


def run_payload(run: Run) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "target": run.target,
        "mode": run.mode,
        "dry_run": run.dry_run,
        "apply_of": run.apply_of,
        "status": run.status,
        "started_at": rfc3339(run.started_at),
        "ended_at": rfc3339(run.ended_at),
        "error_message": redact_values(run.error_message),  # receivers are outside: no data values
        "error_stage": run.error_stage,
        "warnings": run.warnings or [],
        "counts": run.counts or {},
    }


def _finish(
    rt: Runtime, run_id: str, generation: int | None, erasures: list[RunErasure] | None = None, **values: Any
) -> bool:
    """Record the outcome, free the target, and queue webhook events (sent after commit) --
    only while the run still holds its lease: a run the reaper gave up on stays as the
    reaper left it, and its subscribers hear of it once. ``erasures``: the requests the run
    applied or lifted (app.services.execution.run_erasures)."""
    status = values.pop("status")
    with rt.session() as s:
        if not runs.transition(s, run_id, frm=("RUNNING",), to=status, generation=generation, **values):
            log.warning("run %s lost its lease; its outcome %s is not recorded", run_id, status)
            return False
        run = s.get(Run, run_id)
        if erasures and status in PUBLISHED_STATUSES:
            run.erasures = erasures
            s.flush()
        deliveries = event_deliveries(s, run)
        if run.status in PUBLISHED_STATUSES and not run.dry_run:
            _audit_lifted(s, run)
    for d in deliveries:
        rt.send("idr.deliver_webhook", [d])
    return True


class LeaseLost(IdrError):
    """This worker's run was given up (reaped) and its lease taken: it stops, writes nothing."""

    status = 409


class _Lease(Fence):
    """The service's fence of a run (app.pipeline.context.Fence): ``check`` renews the lease
    in a state-DB transaction that stays open until the warehouse's publish transaction
    ended, so the reaper cannot take the lease between the check and the commit (PostgreSQL
    holds the row lock; SQLite the write lock)."""

    def __init__(self, rt: Runtime, run_id: str, generation: int) -> None:
        self.rt, self.run_id, self.generation = rt, run_id, generation
        self.lost = threading.Event()
        self.published = threading.Event()  # the publish transaction committed
        self._session: Session | None = None

    def holds(self, s: Session, **values: Any) -> bool:
        """Renew the lease (heartbeat) in ``s``; False once it was taken."""
        res = s.execute(
            update(Run)
            .where(Run.id == self.run_id, Run.status == "RUNNING", Run.lease_generation == self.generation)
            .values(heartbeat_at=now_utc(), **values)
            .execution_options(synchronize_session=False)
        )
        if res.rowcount != 1:
            self.lost.set()
        return not self.lost.is_set()

    def raise_if_lost(self) -> None:
        if self.lost.is_set():
            raise LeaseLost(f"run {self.run_id} was given up as lost and its lease taken; it stops without writing")

    def check(self) -> None:
        s = self.rt.sessions()
        try:
            ok = self.holds(s, published_at=now_utc())
        except BaseException:
            s.rollback()
            s.close()
            raise
        if not ok:
            s.rollback()
            s.close()
            self.raise_if_lost()
        self._session = s

    def __exit__(self, exc_type: object, *rest: object) -> None:
        s, self._session = self._session, None
        if s is None:
            return
        try:
            if exc_type is None:
                s.commit()
                self.published.set()
            else:
                s.rollback()
        finally:
            s.close()


def _result_values(r: RunResult, cancelled: bool) -> dict[str, Any]:
    counts = {
        k: getattr(r, k)
        for k in (
            "entities_processed",
            "edges_created",
            "edges_updated",
            "edges_removed",
            "clusters_impacted",
            "lp_iterations",
            "source_tables_processed",
            "groups_skipped",
            "values_excluded",
            "large_clusters",
        )
    }
    # Removed records by reason, as run_history's columns (the erasures: run_erasures rows).
    counts.update({col: int(r.entities_removed.get(reason, 0)) for reason, col in REMOVAL_COLUMNS.items()})
    return {
        "status": "CANCELLED" if cancelled else r.status,
        "stages": [
            {
                "name": st.name,
                "order": st.order,
                "started_at": rfc3339(st.started_at),
                "ended_at": rfc3339(st.ended_at),
                "seconds": round(st.seconds, 6),
                "rows_in": st.rows_in,
                "rows_out": st.rows_out,
            }
            for st in r.stages
        ],
        "stages_done": len(r.stages),
        "warnings": list(r.warnings),
        "counts": counts,
        "error_message": "cancelled; production tables untouched" if cancelled else r.error_message,
        "error_stage": r.error_stage,
    }


class _Heartbeat:
    """While a run executes: records that the worker is alive (the reaper watches it), and
    interrupts the running statement (``Adapter.interrupt``) as soon as the run is
    cancelled, runs past IDR_RUN_TIMEOUT_SECONDS or loses its lease -- a slow stage is
    stopped where it is, not at its end. An interrupted statement fails the run before
    publish, or rolls the publish transaction back: production stays as it was."""

    def __init__(self, rt: Runtime, lease: _Lease) -> None:
        self.rt, self.lease = rt, lease
        self.adapter: Any = None  # set once the warehouse is open
        self.deadline = time.monotonic() + rt.settings.run_timeout_seconds
        self.cancelled = threading.Event()
        self.timed_out = threading.Event()
        self._interrupted = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{lease.run_id}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def stop_reason(self) -> str | None:
        if self.lease.lost.is_set():
            return "lease"
        if self.cancelled.is_set():
            return "cancel"
        if self.timed_out.is_set():
            return "timeout"
        return None

    def _interrupt(self) -> None:
        if self._interrupted or self.adapter is None or self.lease.published.is_set():
            return  # after publish there is nothing left to stop
        self._interrupted = True  # once: the run's own cleanup statements must still run
        try:
            if not self.adapter.interrupt():
                log.info("run %s: no interrupt on this platform; it stops at a stage boundary", self.lease.run_id)
        except Exception:  # noqa: BLE001 - the stage boundary still stops the run
            log.warning("could not interrupt run %s", self.lease.run_id, exc_info=True)

    def _loop(self) -> None:
        st = self.rt.settings
        while not self._stop.wait(min(st.run_heartbeat_seconds, 1.0)):
            try:
                with self.rt.session() as s:
                    if self.lease.holds(s) and s.scalar(
                        select(Run.cancel_requested).where(Run.id == self.lease.run_id)
                    ):
                        self.cancelled.set()
            except Exception:  # a missed beat is tolerated; the timeout is many beats long
                log.warning("heartbeat of %s failed", self.lease.run_id, exc_info=True)
            if time.monotonic() > self.deadline:
                self.timed_out.set()
            if self.stop_reason() is not None:
                self._interrupt()


def execute_run(run_id: str) -> str:
    """The body of task ``idr.run``. Idempotent: only a QUEUED run is executed."""
    return execute(run_id)[0]


def execute(
    run_id: str, observer: Callable[[str, str], None] | None = None
) -> tuple[str, RunResult | None]:
    """Execute a QUEUED run: (final status, the pipeline's result when it ran). ``observer``
    sees each stage boundary too (the CLI's progress display)."""
    from app.pipeline.runner import run_pipeline
    from app.services.runs import claim

    rt = get_runtime()
    with rt.session() as s:
        run = s.get(Run, run_id)
        if run is None:
            log.warning("run %s does not exist; task dropped", run_id)
            return "missing", None
        if run.status != "QUEUED":
            # Redelivered (acks_late) or duplicate: a finished run stays finished; one still
            # RUNNING belongs to a live worker or is failed by the reaper when its beat stops.
            return run.status, None
        if run.cancel_requested:
            return "CANCELLED", None
        target, mode, dry_run, apply_of = run.target, run.mode, run.dry_run, run.apply_of
    generation = claim(rt, run_id)
    if generation is None:
        return "claimed-elsewhere", None
    lease = _Lease(rt, run_id, generation)

    cancelled = False
    delay = rt.settings.run_stage_delay_seconds
    stage_log: list[dict[str, Any]] = []
    beat = _Heartbeat(rt, lease)

    def progress(stage: str, event: str) -> None:
        nonlocal cancelled
        lease.raise_if_lost()
        if beat.timed_out.is_set() and event == "start":
            raise RunTimedOut(_timeout_message(rt))
        now = now_utc()
        with rt.session() as s:
            run = s.get(Run, run_id)
            if run is None or run.status != "RUNNING" or run.lease_generation != generation:
                lease.lost.set()
                lease.raise_if_lost()
            if event == "start":
                stage_log.append({"name": stage, "started_at": rfc3339(now), "ended_at": None})
                run.current_stage = stage
            else:
                if stage_log:
                    stage_log[-1]["ended_at"] = rfc3339(now)
                run.stages_done = sum(1 for x in stage_log if x["ended_at"])
            run.stages = [dict(x) for x in stage_log]
            run.heartbeat_at = now
            want_cancel = run.cancel_requested
        if want_cancel and event == "start":
            cancelled = True
            raise RunCancelled(f"run {run_id} cancelled")
        if observer is not None:
            observer(stage, event)
        if delay and event == "start":
            time.sleep(delay)

    try:
        with (
            beat,
            warehouse(rt.settings, target, wait=rt.settings.worker_warehouse_wait_seconds) as a,
        ):
            beat.adapter = a
            result = run_pipeline(
                a, mode, dry_run=dry_run, progress=progress, run_id=run_id, apply_of=apply_of, fence=lease
            )
    except Exception as e:  # noqa: BLE001 - e.g. schema missing, warehouse unreachable
        log.warning("run %s could not execute", run_id, exc_info=not isinstance(e, IdrError))
        _finish(
            rt,
            run_id,
            generation,
            status="FAILED",
            error_message=getattr(e, "message", None) or f"{type(e).__name__}: {e}",
            error_stage=getattr(e, "stage", None) or "init",
        )
        return "FAILED", None
    except KeyboardInterrupt:  # Ctrl-C in the CLI: nothing is published unless publish had committed
        _finish(rt, run_id, generation, status="FAILED", error_message="interrupted", error_stage="interrupted")
        raise
    stopped = result.status == "FAILED"
    values = _result_values(result, stopped and (cancelled or beat.stop_reason() == "cancel"))
    if stopped and beat.stop_reason() == "timeout":
        values["error_message"] = _timeout_message(rt)
    if not _finish(rt, run_id, generation, run_erasures(run_id, result), **values):
        return _status(rt, run_id), result
    if result.ok and rt.settings.metrics_push_exporters.strip():
        rt.send("idr.push_metrics", [target, run_id])
    return values["status"], result


def _status(rt: Runtime, run_id: str) -> str:
    with rt.session() as s:
        return s.scalar(select(Run.status).where(Run.id == run_id)) or "missing"


def reap_stale_runs() -> list[str]:
    """Give up RUNNING runs whose worker stopped beating (killed, OOM, host lost, paused).

    Taking the run's lease (a new generation) fences the old worker: should it wake up, it
    can neither change the run's status nor publish. A run whose worker died before
    publish ends FAILED with production untouched; one that died after its publish
    committed (but before recording the outcome) ends SUCCESS_WITH_WARNINGS.
    """
    rt = get_runtime()
    cutoff = now_utc() - timedelta(seconds=rt.settings.run_stale_after_seconds)
    reaped: list[str] = []
    with rt.session() as s:
        # SKIP LOCKED: a run inside its publish commit holds its row (PostgreSQL); not stale.
        stale = s.execute(
            select(Run.id, Run.target, Run.current_stage, Run.lease_generation, Run.published_at, Run.warnings)
            .where(Run.status == "RUNNING", Run.heartbeat_at < cutoff)
            .with_for_update(skip_locked=True)
        ).all()
    for rid, target, stage, generation, published_at, warnings in stale:
        lost = f"no heartbeat for {rt.settings.run_stale_after_seconds:.0f}s"
        if published_at is None:
            # Warehouse first (whoever sees FAILED in the API sees it in run_history too);
            # it also fences the old worker inside the warehouse: publish refuses a run
            # whose history row is no longer RUNNING.
            _fail_warehouse_history(rt, target, rid)
        still_stale = Run.heartbeat_at < cutoff
        with rt.session() as s:
            if published_at is not None:
                ok = runs.transition(
                    s, rid, frm=("RUNNING",), to="SUCCESS_WITH_WARNINGS", generation=generation,
                    where=still_stale, lease_generation=generation + 1,
                    warnings=[*(warnings or []), f"worker lost after publish ({lost}); counts were not recorded"],
                )  # fmt: skip
            else:
                ok = runs.transition(
                    s, rid, frm=("RUNNING",), to="FAILED", generation=generation, where=still_stale,
                    lease_generation=generation + 1,
                    error_stage=stage or "unknown",
                    error_message=(
                        f"worker lost during stage {stage or 'unknown'} ({lost}); production tables are untouched; "
                        "start a new run"
                    ),
                )  # fmt: skip
            if not ok:
                continue  # it beat, finished or was reaped meanwhile
            run = s.get(Run, rid)
            deliveries = event_deliveries(s, run)
        reaped.append(rid)
        for d in deliveries:
            rt.send("idr.deliver_webhook", [d])
    return reaped


def _fail_warehouse_history(rt: Runtime, target: str, run_id: str) -> None:
    """Best effort: the dead worker's run_history row must not say RUNNING forever either."""
    try:
        with warehouse(rt.settings, target, wait=0) as a:
            a.execute(
                "UPDATE idr_out.run_history SET status = 'FAILED', ended_at = CURRENT_TIMESTAMP, "
                "error_message = 'worker lost' WHERE run_id = $r AND status = 'RUNNING'",
                {"r": run_id},
            )
    except Exception:  # noqa: BLE001 - the state DB already tells the truth
        log.warning("could not mark %s FAILED in the warehouse", run_id, exc_info=True)


def push_metrics(target: str = "default", run_id: str | None = None) -> dict[str, Any]:
    """Feed every configured push exporter what it has not exported yet. A failure is
    recorded (idr_metrics_export_failures_total, and a warning on the run that triggered
    the push) and logged in one line; the rows stay pending for the next push."""
    from app.metrics.exporters.base import export_pending, load_exporter

    rt = get_runtime()
    out: dict[str, Any] = {}
    names = exporter_names(rt.settings)
    with warehouse(rt.settings, target, wait=rt.settings.worker_warehouse_wait_seconds) as a:
        for name in names:
            try:
                report = export_pending(a, load_exporter(name, {}))
                out[name] = {"exported": report.exported, "error": report.error}
            except Exception as e:  # noqa: BLE001 - e.g. settings changed since start-up
                out[name] = {"exported": 0, "error": getattr(e, "message", None) or f"{type(e).__name__}: {e}"}
    failed = {n: r["error"] for n, r in out.items() if r["error"]}
    if failed:
        _record_export_failures(rt, target, run_id, failed)
    return out


def exporter_names(settings: Any) -> list[str]:
    return [n.strip() for n in settings.metrics_push_exporters.split(",") if n.strip()]


def _record_export_failures(rt: Runtime, target: str, run_id: str | None, failed: dict[str, str]) -> None:
    from app.db.models import MetricsExportFailure

    with rt.session() as s:
        for name, error in failed.items():
            first = error.splitlines()[0] if error else "failed"
            log.warning("metrics export to %s failed (rows stay pending): %s", name, first)
            s.add(MetricsExportFailure(provider=name, target=target, run_id=run_id, error=error[:2000]))
        run = s.get(Run, run_id) if run_id else None
        if run is not None:
            run.warnings = [
                *(run.warnings or []),
                *(f"metrics export to {n} failed (rows stay pending): {e.splitlines()[0]}" for n, e in failed.items()),
            ]


def refuse_bad_exporters(settings: Any) -> None:
    """API and worker start-up: exporter settings are checked once, not after every run; a
    process that could not push its metrics says so in one line and does not start."""
    from app.core.errors import ConfigError

    try:
        check_push_exporters(settings)
    except ConfigError as e:
        log.critical("refusing to start: %s", e.message)
        raise SystemExit(2) from None


def check_push_exporters(settings: Any) -> None:
    """At start-up (API, worker, `idr serve`): every exporter in IDR_METRICS_PUSH_EXPORTERS
    exists and has what it needs (URL, secret, key), else ConfigError naming the setting."""
    from app.core.errors import ConfigError
    from app.metrics.exporters.base import load_exporter

    for name in exporter_names(settings):
        try:
            load_exporter(name, {}).close()
        except ConfigError as e:
            raise ConfigError(
                f"IDR_METRICS_PUSH_EXPORTERS names {name!r}, which cannot start: {e.message}",
                field="metrics_push_exporters",
            ) from None


def cleanup_dry_runs(target: str = "default") -> list[str]:
    from app.pipeline.dryrun import cleanup

    rt = get_runtime()
    with warehouse(rt.settings, target, wait=rt.settings.worker_warehouse_wait_seconds) as a:
        return cleanup(a)


def recover_on_start(rt: Runtime) -> None:
    """Embedded mode keeps its queue in memory: re-send what a previous process left queued."""
    with rt.session() as s:
        queued = list(s.scalars(select(Run.id).where(Run.status == "QUEUED").order_by(Run.created_at)))
    for rid in queued:
        rt.send("idr.run", [rid])
    webhooks.redispatch_overdue(rt, min_age_seconds=0)


__all__ = [
    "TERMINAL",
    "cleanup_dry_runs",
    "execute",
    "execute_run",
    "push_metrics",
    "reap_stale_runs",
    "recover_on_start",
]
