"""Runs started inside the warehouse (a Databricks notebook, a Snowflake stored procedure)
rather than over HTTP or the CLI: the same pipeline (``run_pipeline``), on an adapter over
the session the warehouse hands the runner.

Both runners take the design's two parameters, ``mode`` (FULL or INCR) and ``dry_run``,
as the strings or values their platform passes, refuse anything else naming the
parameter, and return a JSON-able summary; a failed run raises (so the scheduling job or
task fails) with the run id, stage and message in the error.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.core.errors import ConfigError, PipelineError
from app.core.run_record import RunResult
from app.core.vocabulary import RUN_MODES
from app.platforms.base import Adapter

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")


def parse_mode(value: Any, name: str = "mode") -> str:
    mode = str(value if value is not None else "").strip().upper()
    if mode not in RUN_MODES:
        raise ConfigError(f"{name} must be one of {', '.join(RUN_MODES)}, not {value!r}", field=name)
    return mode


def parse_flag(value: Any, name: str = "dry_run") -> bool:
    if isinstance(value, bool):
        return value
    text = str(value if value is not None else "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}", field=name)


def summary(adapter: Adapter, r: RunResult) -> dict[str, Any]:
    """What a runner hands back: the run's outcome and counts (and a dry run's impact)."""
    out: dict[str, Any] = {
        "run_id": r.run_id,
        "status": r.status,
        "mode": r.mode,
        "dry_run": r.dry_run,
        "platform": r.platform,
        "duration_seconds": round(r.duration_seconds, 3),
        "round_trips": r.statements,
        "entities_processed": r.entities_processed,
        "edges_created": r.edges_created,
        "clusters_impacted": r.clusters_impacted,
        "warnings": list(r.warnings),
    }
    if r.dry_run and r.ok:
        from app.pipeline.dryrun import get_summary, render_summary

        counts = get_summary(adapter, r.run_id).items()  # NUMBER comes back as Decimal on Snowflake
        out["dry_run_summary"] = {k: int(v) for k, v in counts if isinstance(v, int | Decimal) and v is not True}
        out["report"] = render_summary(adapter, r)
    return out


def run_here(adapter: Adapter, mode: Any, dry_run: Any = False) -> dict[str, Any]:
    """Validate the parameters, run the pipeline on ``adapter``, return its summary; raise
    ``PipelineError`` if the run failed (production tables are then untouched)."""
    from app.pipeline.runner import run_pipeline

    mode, dry = parse_mode(mode), parse_flag(dry_run)
    if not adapter.table_exists("idr_out", "run_history"):
        from app.schema import init_schema

        init_schema(adapter)  # the first run from the warehouse sets idr up there (idempotent)
    r = run_pipeline(adapter, mode, dry_run=dry)
    if not r.ok:
        raise PipelineError(f"idr run {r.run_id} {r.status} in stage {r.error_stage}: {r.error_message}",
                            stage=r.error_stage)  # fmt: skip
    return summary(adapter, r)
