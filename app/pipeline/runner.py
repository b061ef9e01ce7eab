"""Runs a plan of steps (app.pipeline.steps): stage by stage, timed into stage_metrics,
into run_history; each scratch table is dropped after its last reader.

FULL re-derives everything from the sources. INCR reads each source's delta (watermark
minus lookback) and recomputes only the clusters the delta reaches, ending with exactly
the partition and ids a FULL run would give. A dry run executes the same steps but the
golden profile (which its diff does not compare) and writes a diff instead of publishing.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from datetime import datetime

from app.config.store import read_config
from app.core import faults
from app.core.errors import ConflictError, IdrError, PipelineError
from app.core.run_record import RunResult, StageResult
from app.core.settings import Settings, get_settings
from app.core.vocabulary import RUN_MODES
from app.pipeline import components, erasure, history, publish
from app.pipeline.context import Fence, ProgressFn, RunContext, new_run_id, utcnow
from app.pipeline.dryrun import check_applicable, get_dry_run
from app.pipeline.fingerprint import config_fingerprint, input_fingerprint
from app.pipeline.plan import Plan, RunKind, Step
from app.pipeline.steps import plan_for
from app.platforms.base import Adapter
from app.schema import entity_lookup
from app.schema.golden import sync_golden_columns

log = logging.getLogger(__name__)

# Called after every step with (step, scratch tables that exist now): tests check that
# no table outlives its last reader.
StepObserver = Callable[[Step, list[str]], None]


def stages_total(dry_run: bool, apply: bool = False) -> int:
    """How many stages a run reports (progress); the same for FULL and INCR."""
    return len(plan_for(RunKind(full=False, dry_run=dry_run, apply=apply)).stages)


_MISSING = "the idr schema is missing or out of date: run `idr init` first"


def _require_schema(adapter: Adapter) -> set[str]:
    """run_history's columns (an older install may lack the newest until `idr init`)."""
    history_cols = set(adapter.columns("idr_out", "run_history"))
    if not history_cols:
        raise PipelineError(_MISSING, stage="init")
    return history_cols


# Everything a run reads from the stored state before it starts, in one read (a round
# trip each on a warehouse): the last published run and its configuration fingerprint,
# whether any entity is stored, the id sequence and counters.
_STATE_SQL = f"""SELECT
    ({history.LAST_PUBLISHED_SQL}) AS last_published,
    (SELECT config_fingerprint FROM idr_out.run_history WHERE run_id = ({history.LAST_PUBLISHED_SQL})) AS fingerprint,
    (SELECT count(*) FROM (SELECT 1 FROM idr_state.entities LIMIT 1) AS t) AS has_entities,
    (SELECT next_value FROM idr_meta.resolved_id_sequence WHERE sequence_name = 'resolved_id') AS next_rid,
    (SELECT next_value FROM idr_state.counters WHERE counter_name = 'eid') AS next_eid,
    (SELECT next_value FROM idr_state.counters WHERE counter_name = 'vid') AS next_vid"""


def _stored_state(adapter: Adapter) -> dict[str, object]:
    try:
        cols, rows = adapter.fetch_with_columns(_STATE_SQL)
    except Exception as e:  # a table of the state is missing
        raise PipelineError(f"{_MISSING} ({type(e).__name__})", stage="init") from e
    return dict(zip(cols, rows[0], strict=True))


def _read_state(ctx: RunContext, stored: dict[str, object]) -> None:
    st = ctx.state
    a = ctx.adapter
    st.watermarks_before, st.reconciled_before = history.run_state(a)
    st.suppression = erasure.read(a)
    # Optimistic concurrency: publish re-checks this inside its transaction.
    st.last_published = stored["last_published"]  # type: ignore[assignment]
    st.next_rid = int(stored["next_rid"] or 1)  # type: ignore[call-overload]
    st.next_eid = int(stored["next_eid"] or 0)  # type: ignore[call-overload]
    st.next_vid = int(stored["next_vid"] or 0)  # type: ignore[call-overload]


def plan(mode: str, dry_run: bool = False, apply: bool = False, fresh: bool = False) -> Plan:
    """The plan of a run (``idr plan``)."""
    mode = mode.upper()
    return plan_for(RunKind(full=mode == "FULL", dry_run=dry_run, apply=apply, fresh=fresh and mode == "FULL"))


def run_pipeline(
    adapter: Adapter,
    mode: str = "FULL",
    dry_run: bool = False,
    progress: ProgressFn | None = None,
    settings: Settings | None = None,
    run_id: str | None = None,
    apply_of: str | None = None,
    observe: StepObserver | None = None,
    fence: Fence | None = None,
) -> RunResult:
    """Run FULL or INCR (optionally dry). Never raises for a pipeline failure: the
    returned result has status FAILED with the stage and message; production tables are
    untouched in that case. ``fence`` is checked inside the publish transaction.

    Statements whose results the run does not read travel together with the next read
    where the platform can send several at once (``Adapter.batched``): a remote run's
    cost is its round trips."""
    with adapter.batched():
        result = _run_pipeline(adapter, mode, dry_run, progress, settings, run_id, apply_of, observe, fence)
        try:
            adapter.flush()  # the run's last writes (history, scratch drops, metrics)
        except Exception:  # noqa: BLE001 - the outcome is decided; cleanup must not mask it
            log.exception("could not send the last statements of %s", result.run_id)
    return result


def _run_pipeline(
    adapter: Adapter,
    mode: str,
    dry_run: bool,
    progress: ProgressFn | None,
    settings: Settings | None,
    run_id: str | None,
    apply_of: str | None,
    observe: StepObserver | None,
    fence: Fence | None,
) -> RunResult:
    settings = settings or get_settings()
    faults.arm(settings.fault_stop_at)
    mode = mode.upper()
    if mode not in RUN_MODES:
        raise PipelineError(f"mode must be FULL or INCR, not {mode!r}", stage="init")
    rt0 = adapter.round_trips
    history_cols = frozenset(_require_schema(adapter))
    has_statements = "statements" in history_cols
    stored = _stored_state(adapter)
    now = utcnow()
    result = RunResult(
        run_id=run_id or new_run_id(dry_run, now),
        mode=mode,  # type: ignore[arg-type]
        dry_run=dry_run,
        platform=adapter.platform,
        started_at=now,
    )
    config = read_config(adapter)
    fingerprint = config_fingerprint(config)
    full = mode == "FULL"
    if not full:
        last = stored["fingerprint"]
        if last is not None and last != fingerprint:
            # INCR == FULL must hold: a changed rule/mapping/exclusion affects old records too.
            full = True
            result.warnings.append("configuration changed since the last run: INCR ran as FULL")
    fresh = full and not stored["has_entities"]
    kind = RunKind(full=full, dry_run=dry_run, apply=apply_of is not None, fresh=bool(fresh))
    ctx = RunContext(
        round_trips_at_start=rt0,
        history_columns=history_cols,
        adapter=adapter,
        config=config,
        settings=settings,
        result=result,
        tag=f"w{secrets.token_hex(5)}",
        now=now,
        kind=kind,
        progress=progress,
        fence=fence or Fence(),
    )
    _read_state(ctx, stored)
    if apply_of:
        ctx.state.apply_of = apply_of
        ctx.state.expected_fingerprint = get_dry_run(adapter, apply_of).fingerprint
    # The golden columns and views follow the configuration; publish reuses the mapping.
    _, ctx.state.golden_columns = sync_golden_columns(adapter, config)
    if not dry_run:
        entity_lookup.ensure_current(adapter)  # publish adds rows with this engine's hash
    try:
        history.sweep_orphan_work_tables(adapter)
    except Exception:  # noqa: BLE001 - a concurrent run may drop the same table first
        log.debug("work-table sweep skipped", exc_info=True)
    # After the sweep's catalog call (which sends held statements first): the history
    # row then travels with the run's first read where the platform batches.
    history.insert(adapter, result, fingerprint, ctx.tag)
    if dry_run or apply_of:
        ctx.state.input_fingerprint = input_fingerprint(adapter, fingerprint)
        adapter.execute(
            "UPDATE idr_out.run_history SET input_fingerprint = $fp, applied_dry_run_id = $d WHERE run_id = $r",
            {"fp": json.dumps(ctx.state.input_fingerprint), "d": apply_of, "r": result.run_id},
        )
    if isinstance(components.solver_for(adapter, settings.cc_engine), components.UnionFind):
        components.preload()
    t0 = time.perf_counter()
    stage = "init"
    try:
        if not [s for s in config.sources if s.is_active]:
            raise PipelineError("no active source tables are configured (idr config apply FILE)", stage="init")
        if not [r for r in config.rules if r.is_active]:
            raise PipelineError("no active rules are configured", stage="init")
        the_plan = plan_for(kind, lambda c: _publish(c, t0))
        _execute(ctx, the_plan, t0, observe)
        adapter.flush()  # a held statement's error fails the run here, not after it
        if dry_run:
            result.status = "DRY_RUN_COMPLETE"
            result.ended_at = utcnow()
            result.duration_seconds = time.perf_counter() - t0
            ctx.count_statements()
            history.finish(adapter, result, history_cols)
        else:
            # Duration covers publish too; the row was committed with the earlier figures.
            result.duration_seconds = time.perf_counter() - t0
            result.ended_at = utcnow()
            ctx.count_statements()
            stmts = ", statements = $n" if has_statements else ""
            try:
                adapter.execute(
                    f"UPDATE idr_out.run_history SET duration_seconds = $d, ended_at = $e{stmts} WHERE run_id = $id",
                    {"d": result.duration_seconds, "e": result.ended_at, "n": result.statements, "id": result.run_id},
                )
            except Exception:  # noqa: BLE001 - published: the figures are cosmetic, the outcome is not
                log.warning("run %s published; its final duration was not recorded", result.run_id, exc_info=True)
    except Exception as e:  # noqa: BLE001 - every failure ends as a FAILED run
        stage = getattr(e, "stage", None) or ctx.state.current_stage or stage
        result.status = "FAILED"
        result.error_stage = stage
        result.error_message = e.message if isinstance(e, IdrError) else f"{type(e).__name__}: {e}"
        result.ended_at = utcnow()
        result.duration_seconds = time.perf_counter() - t0
        log.warning("run %s failed in %s: %s", result.run_id, result.error_stage, result.error_message)
        ctx.count_statements()
        try:
            history.finish(adapter, result, history_cols)
        except Exception:  # noqa: BLE001 - e.g. the interrupt that stopped the run (cancel) came late
            history.finish(adapter, result, history_cols)
    finally:
        try:
            ctx.drop_work_tables()
        except Exception:  # noqa: BLE001 - cleanup must not mask the run's outcome
            log.exception("could not drop work tables of %s", result.run_id)
    _record_metrics(adapter, result)
    return result


def _publish(ctx: RunContext, t0: float) -> None:
    r = ctx.result
    r.status = "SUCCESS_WITH_WARNINGS" if r.warnings else "SUCCESS"
    r.ended_at = utcnow()
    r.duration_seconds = time.perf_counter() - t0
    ctx.count_statements()
    publish.publish(ctx, lambda: history.finish_statement(r, ctx.history_columns))


def _execute(ctx: RunContext, plan: Plan, t0: float, observe: StepObserver | None) -> None:
    stages = plan.stages
    current: tuple[str, datetime, float] | None = None
    for i, step in enumerate(plan.steps):
        if current is None or current[0] != step.stage:
            if current is not None:
                _end_stage(ctx, stages, *current)
            current = (step.stage, utcnow(), time.perf_counter())
            ctx.state.current_stage = step.stage
            if ctx.progress:
                ctx.progress(step.stage, "start")
            faults.reached(f"stage:{step.stage}")
        _run_step(ctx, step)
        for name in plan.drops(i):
            _drop(ctx, plan, name)
        if observe is not None:
            observe(step, ctx.adapter.list_work_tables(ctx.tag))
    if current is not None:
        _end_stage(ctx, stages, *current)


def _run_step(ctx: RunContext, step: Step) -> None:
    if step.when is not None and not step.when(ctx):
        return
    try:
        if step.sql is not None:
            ctx.run(step.sql, step.params(ctx) if step.params else None)
        else:
            step.build(ctx)  # type: ignore[misc]
    except IdrError as e:
        if isinstance(e, PipelineError) and not e.stage:
            e.stage = step.stage
        if isinstance(e, ConflictError):
            e.stage = step.stage  # type: ignore[attr-defined]
        raise
    except Exception as e:
        raise PipelineError(f"{type(e).__name__}: {e}", stage=step.stage) from e


def _drop(ctx: RunContext, plan: Plan, name: str) -> None:
    a = ctx.adapter
    if name == "sources":
        for t in ctx.state.entity_tables:
            a.drop_relation(t, view=ctx.kind.fresh)  # a view over its source table on a first run
        for t in ctx.state.source_tables:
            a.drop_table(t)
        return
    a.drop_relation(ctx.w(name), view=plan.is_view(name))


def _end_stage(ctx: RunContext, stages: list[str], name: str, started: datetime, t: float) -> None:
    counts = ctx.state.stage_counts.get(name)
    s = StageResult(
        name=name,
        order=stages.index(name) + 1,
        started_at=started,
        ended_at=utcnow(),
        seconds=time.perf_counter() - t,
        rows_in=counts.rows_in if counts else 0,
        rows_out=counts.rows_out if counts else 0,
    )
    ctx.result.stages.append(s)
    history.record_stage(ctx.adapter, ctx.run_id, s)
    if ctx.progress:
        ctx.progress(name, "end")


def apply_dry_run(adapter: Adapter, run_id: str, progress: ProgressFn | None = None) -> RunResult:
    """Publish exactly the reviewed proposal as a real run, or refuse (409) when its
    inputs changed. The real run recomputes deterministically from identical inputs and
    is checked against the stored proposal before anything is published."""
    info = check_applicable(adapter, run_id)
    result = run_pipeline(adapter, info.mode, dry_run=False, progress=progress, apply_of=run_id)
    if result.status == "FAILED" and result.error_stage == "apply_check":
        raise ConflictError(result.error_message or "inputs changed")
    return result


def _record_metrics(adapter: Adapter, result: RunResult) -> None:
    try:
        from app.metrics.recorder import record_run_metrics
    except ImportError:  # metrics package not installed in this build
        return
    try:
        record_run_metrics(adapter, result)
    except Exception:  # noqa: BLE001 - metrics never fail a run
        log.exception("could not record metrics for %s", result.run_id)
