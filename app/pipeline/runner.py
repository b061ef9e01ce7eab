"""Runs the pipeline: stage by stage, timed into stage_metrics, into run_history.

FULL re-derives everything from the sources. INCR reads each source's delta (watermark
minus lookback) and recomputes only the clusters the delta reaches, ending with exactly
the partition and ids a FULL run would give. A dry run executes the same stages but the
golden profile (which its diff does not compare) and replaces publish by a diff against
production (app.pipeline.dryrun).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from datetime import datetime

from app.config.store import read_config
from app.core.errors import IdrError, PipelineError
from app.core.settings import Settings, get_settings
from app.pipeline import extract, golden, publish, stages
from app.pipeline.context import ProgressFn, RunContext, new_run_id, utcnow
from app.pipeline.result import RunResult, StageResult
from app.platforms.base import Adapter

log = logging.getLogger(__name__)

# (name, function) in order; publish / dry-run diff is appended by the runner.
STAGES: list[tuple[str, Callable[[RunContext], tuple[int, int]]]] = [
    ("extract_entities", lambda ctx: extract.extract(ctx)),
    ("identifiers", stages.identifiers),
    ("group_guard", stages.groups),
    ("edges", stages.edges),
    ("components", lambda ctx: _release_after_components(ctx, stages.connected_components(ctx))),
    ("resolve_ids", lambda ctx: _release_after_resolve(ctx, stages.resolve_ids(ctx))),
    ("golden_profile", lambda ctx: (ctx.count(ctx.w("membership")), golden.build_golden(ctx))),
]

# Scratch tables no later step reads are dropped as soon as a stage is done: at 10M the
# groups alone hold ~15M rows, and what stays alive decides whether DuckDB spills.
# The identifier rows and the INCR diff go with them; views over them stay, never read.
_AFTER_COMPONENTS = (
    "groups_old",
    "members_old",
    "touched",
    "broken",
    "impacted",
    "nodes",
    "cc_labels",
    "ident_raw",
    "lost",
    "gained",
    "edges_touched",
)
_AFTER_RESOLVE = ("overlap", "comps", "keep", "scope", "old_ident")
# A dry run's diff reads only the membership, the removed entities and the cluster ids:
# it builds no golden profile (see pipeline_stages), so that profile's inputs go too.
_AFTER_RESOLVE_DRY = ("edges_new", "edges_old")


def pipeline_stages(dry_run: bool) -> list[tuple[str, Callable[[RunContext], tuple[int, int]]]]:
    """The stages before publish / the dry-run diff. The golden profile is not part of a
    dry run's diff (dry_run_results compares memberships), so a dry run skips it: at 10M
    records that is a fifth of the run."""
    return [st for st in STAGES if not (dry_run and st[0] == "golden_profile")]


def _then_release(ctx: RunContext, out: tuple[int, int], names: tuple[str, ...]) -> tuple[int, int]:
    ctx.drop(*names)
    return out


def _release_after_components(ctx: RunContext, out: tuple[int, int]) -> tuple[int, int]:
    # A real run's publish stores the values no edge links from the groups.
    names = (*_AFTER_COMPONENTS, *stages.identifier_tables(ctx), *(("groups",) if ctx.dry_run else ()))
    return _then_release(ctx, out, names)


def _release_after_resolve(ctx: RunContext, out: tuple[int, int]) -> tuple[int, int]:
    if not ctx.dry_run:
        return _then_release(ctx, out, _AFTER_RESOLVE)
    golden.drop_inputs(ctx)  # no golden profile will read its inputs
    return _then_release(ctx, out, _AFTER_RESOLVE + _AFTER_RESOLVE_DRY)


def config_fingerprint(ctx_config) -> str:
    """What the partition depends on: everything but run-time settings."""
    doc = ctx_config.model_dump(mode="json", exclude={"settings"})
    for x in doc.get("exclusions", []):
        x.pop("created_at", None)
        x.pop("created_by", None)
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _require_schema(adapter: Adapter) -> None:
    if not adapter.table_exists("idr_out", "run_history"):
        raise PipelineError("the idr schema is missing: run `idr init` first", stage="init")


def _last_fingerprint(adapter: Adapter) -> str | None:
    return adapter.scalar(
        "SELECT config_fingerprint FROM idr_out.run_history WHERE NOT dry_run "
        "AND status IN ('SUCCESS', 'SUCCESS_WITH_WARNINGS') ORDER BY started_at DESC LIMIT 1"
    )


LAST_PUBLISHED_SQL = (
    "SELECT run_id FROM idr_out.run_history WHERE NOT dry_run "
    "AND status IN ('SUCCESS', 'SUCCESS_WITH_WARNINGS') ORDER BY ended_at DESC, run_id DESC LIMIT 1"
)


def _insert_history(adapter: Adapter, r: RunResult, fingerprint: str, tag: str) -> None:
    adapter.execute(
        "INSERT INTO idr_out.run_history (run_id, run_mode, status, started_at, dry_run, platform, "
        "config_fingerprint, created_at, work_tag) "
        "VALUES ($id, $mode, 'RUNNING', $ts, $dry, $platform, $fp, $ts, $tag)",
        {
            "id": r.run_id,
            "mode": r.mode,
            "ts": r.started_at,
            "dry": r.dry_run,
            "platform": r.platform,
            "fp": fingerprint,
            "tag": tag,
        },
    )


_TAG = re.compile(r"^(w[0-9a-f]{10})_")


def sweep_orphan_work_tables(adapter: Adapter) -> list[str]:
    """Drop scratch tables left by runs that died (killed worker, lost machine): any
    tag whose run is not RUNNING. Returns the tags swept."""
    views = adapter.list_tables("idr_work", views=True)
    tables = adapter.list_tables("idr_work")
    tags = {m.group(1) for n in views + tables if (m := _TAG.match(n))}
    if not tags:
        return []
    live = {r[0] for r in adapter.fetchall("SELECT work_tag FROM idr_out.run_history WHERE status = 'RUNNING'")}
    dead = tags - live
    for kind, names in (("VIEW", views), ("TABLE", tables)):
        for n in names:
            m = _TAG.match(n)
            if m and m.group(1) in dead:
                adapter.execute(f"DROP {kind} IF EXISTS {adapter.table('idr_work', n)}")
    return sorted(dead)


def _finish_history(adapter: Adapter, r: RunResult) -> None:
    adapter.execute(
        """UPDATE idr_out.run_history SET status = $status, ended_at = $ended, duration_seconds = $dur,
           entities_processed = $entities, edges_created = $ec, edges_updated = $eu,
           clusters_impacted = $ci, lp_iterations = $lp, source_tables_processed = $st,
           groups_skipped = $gs, values_excluded = $ve, large_clusters = $lc, warnings = $warn,
           watermarks_json = $wm, error_message = $err, error_stage = $estage
           WHERE run_id = $id""",
        {
            "status": r.status,
            "ended": r.ended_at,
            "dur": r.duration_seconds,
            "entities": r.entities_processed,
            "ec": r.edges_created,
            "eu": r.edges_updated,
            "ci": r.clusters_impacted,
            "lp": r.lp_iterations,
            "st": r.source_tables_processed,
            "gs": r.groups_skipped,
            "ve": r.values_excluded,
            "lc": r.large_clusters,
            "warn": json.dumps(r.warnings) if r.warnings else None,
            "wm": json.dumps(r.watermarks),
            "err": r.error_message,
            "estage": r.error_stage,
            "id": r.run_id,
        },
    )


def _record_stage(adapter: Adapter, run_id: str, s: StageResult) -> None:
    adapter.execute(
        "INSERT INTO idr_out.stage_metrics (run_id, stage_name, stage_order, started_at, ended_at, "
        "duration_seconds, rows_in, rows_out, notes) VALUES ($r, $n, $o, $s, $e, $d, $i, $out, $notes)",
        {
            "r": run_id,
            "n": s.name,
            "o": s.order,
            "s": s.started_at,
            "e": s.ended_at,
            "d": s.seconds,
            "i": s.rows_in,
            "out": s.rows_out,
            "notes": s.notes,
        },
    )


def _run_state(adapter: Adapter) -> dict[str, datetime]:
    return {
        t: wm
        for t, wm in adapter.fetchall("SELECT table_id, last_watermark_value FROM idr_meta.run_state")
        if wm is not None
    }


def run_pipeline(
    adapter: Adapter,
    mode: str = "FULL",
    dry_run: bool = False,
    progress: ProgressFn | None = None,
    settings: Settings | None = None,
    run_id: str | None = None,
    apply_of: str | None = None,
) -> RunResult:
    """Run FULL or INCR (optionally dry). Never raises for a pipeline failure: the
    returned result has status FAILED with the stage and message; production tables are
    untouched in that case."""
    settings = settings or get_settings()
    mode = mode.upper()
    if mode not in ("FULL", "INCR"):
        raise PipelineError(f"mode must be FULL or INCR, not {mode!r}", stage="init")
    _require_schema(adapter)
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
        last = _last_fingerprint(adapter)
        if last is not None and last != fingerprint:
            # INCR == FULL must hold: a changed rule/mapping/exclusion affects old records too.
            full = True
            result.warnings.append("configuration changed since the last run: INCR ran as FULL")
    ctx = RunContext(
        adapter=adapter,
        config=config,
        settings=settings,
        result=result,
        tag=f"w{secrets.token_hex(5)}",
        now=now,
        full=full,
        progress=progress,
    )
    ctx.facts["run_state"] = _run_state(adapter)
    # Optimistic concurrency: publish re-checks this inside its transaction.
    ctx.facts["last_published"] = adapter.scalar(LAST_PUBLISHED_SQL)
    expected_fp = None
    if apply_of:
        from app.pipeline.dryrun import get_dry_run

        expected_fp = get_dry_run(adapter, apply_of).fingerprint
    _insert_history(adapter, result, fingerprint, ctx.tag)
    try:
        sweep_orphan_work_tables(adapter)
    except Exception:  # noqa: BLE001 - a concurrent run may drop the same table first
        log.debug("work-table sweep skipped", exc_info=True)
    if dry_run or apply_of:
        from app.pipeline.dryrun import input_fingerprint

        ctx.facts["input_fingerprint"] = input_fingerprint(adapter, fingerprint)
        adapter.execute(
            "UPDATE idr_out.run_history SET input_fingerprint = $fp, applied_dry_run_id = $d WHERE run_id = $r",
            {"fp": json.dumps(ctx.facts["input_fingerprint"]), "d": apply_of, "r": result.run_id},
        )
    t0 = time.perf_counter()
    stage_name = "init"
    try:
        if not [s for s in config.sources if s.is_active]:
            raise PipelineError("no active source tables are configured (idr config apply FILE)", stage="init")
        if not [r for r in config.rules if r.is_active]:
            raise PipelineError("no active rules are configured", stage="init")
        steps = pipeline_stages(dry_run)
        if dry_run:
            from app.pipeline import dryrun

            steps.append(("dry_run_diff", dryrun.write_diff))
        else:
            if apply_of:
                from app.pipeline.dryrun import verify_proposal

                steps.append(
                    ("apply_check", lambda c: (verify_proposal(c, apply_of, expected_fp), (0, 0))[1])
                )
            steps.append(("publish_prepare", lambda c: (0, publish.prepare(c) or 0)))
        for order, (stage_name, fn) in enumerate(steps, start=1):
            _run_stage(ctx, order, stage_name, fn)
        result.ended_at = utcnow()
        result.duration_seconds = time.perf_counter() - t0
        if dry_run:
            result.status = "DRY_RUN_COMPLETE"
            _finish_history(adapter, result)
        else:
            result.status = "SUCCESS_WITH_WARNINGS" if result.warnings else "SUCCESS"
            stage_name = "publish"
            order = len(steps) + 1
            _run_stage(
                ctx, order, "publish", lambda c: (0, publish.publish(c, lambda: _finish_history(adapter, result)))
            )
            # Duration covers publish too; the row was committed with the earlier figure.
            result.duration_seconds = time.perf_counter() - t0
            result.ended_at = utcnow()
            adapter.execute(
                "UPDATE idr_out.run_history SET duration_seconds = $d, ended_at = $e WHERE run_id = $id",
                {"d": result.duration_seconds, "e": result.ended_at, "id": result.run_id},
            )
    except Exception as e:  # noqa: BLE001 - every failure ends as a FAILED run
        result.status = "FAILED"
        result.error_stage = getattr(e, "stage", None) or stage_name
        result.error_message = e.message if isinstance(e, IdrError) else f"{type(e).__name__}: {e}"
        result.ended_at = utcnow()
        result.duration_seconds = time.perf_counter() - t0
        log.warning("run %s failed in %s: %s", result.run_id, result.error_stage, result.error_message)
        _finish_history(adapter, result)
    finally:
        try:
            ctx.drop_work_tables()
        except Exception:  # noqa: BLE001 - cleanup must not mask the run's outcome
            log.exception("could not drop work tables of %s", result.run_id)
    _record_metrics(adapter, result)
    return result


def _run_stage(ctx: RunContext, order: int, name: str, fn: Callable[[RunContext], tuple[int, int]]) -> None:
    if ctx.progress:
        ctx.progress(name, "start")
    started = utcnow()
    t = time.perf_counter()
    try:
        rows_in, rows_out = fn(ctx)
    except IdrError as e:
        if isinstance(e, PipelineError) and not e.stage:
            e.stage = name
        raise
    except Exception as e:
        raise PipelineError(f"{type(e).__name__}: {e}", stage=name) from e
    s = StageResult(
        name=name,
        order=order,
        started_at=started,
        ended_at=utcnow(),
        seconds=time.perf_counter() - t,
        rows_in=int(rows_in),
        rows_out=int(rows_out),
    )
    ctx.result.stages.append(s)
    _record_stage(ctx.adapter, ctx.run_id, s)
    if ctx.progress:
        ctx.progress(name, "end")


def _record_metrics(adapter: Adapter, result: RunResult) -> None:
    try:
        from app.metrics.recorder import record_run_metrics
    except ImportError:  # metrics package not installed in this build
        return
    try:
        record_run_metrics(adapter, result)
    except Exception:  # noqa: BLE001 - metrics never fail a run
        log.exception("could not record metrics for %s", result.run_id)
