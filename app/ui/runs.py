"""Runs: history with a duration trend, a run's stage timings, live progress of a running run."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.api.schemas import RunOut
from app.core.errors import ConflictError, IdrError
from app.core.vocabulary import ACTIVE_STATUSES, RUN_MODES, RUN_STATUSES
from app.services import runs as svc
from app.services.review import applied_by
from app.ui import svg
from app.ui.web import PAGE_SIZE, Form, Viewer, duration, flash, render, require, rt_of

router = APIRouter()

TREND_RUNS = 60


def _view(r: RunOut) -> dict:
    return {"run": r, "seconds": duration(r.started_at, r.ended_at), "entities": r.counts.get("entities_processed")}


@router.get("/runs", response_class=HTMLResponse)
def runs_page(
    request: Request,
    p: Viewer,
    status: Annotated[str | None, Query(max_length=32)] = None,
    mode: Annotated[str | None, Query(max_length=8)] = None,
    kind: Annotated[str | None, Query(max_length=8)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    rt = rt_of(request)
    status = status if status in RUN_STATUSES else None
    mode = mode if mode in RUN_MODES else None
    dry = {"dry": True, "real": False}.get(kind or "")
    items, nxt = svc.list_runs(rt, status=status, mode=mode, dry_run=dry, cursor=cursor, limit=PAGE_SIZE)
    recent, _ = svc.list_runs(rt, limit=TREND_RUNS)
    redact = not p.allows("admin")  # error messages without the data values they quote
    views = [_view(RunOut.of(r, redact)) for r in items]
    trend = [_view(RunOut.of(r, redact)) for r in reversed(recent)]
    active = [v for v in (_view(RunOut.of(r, redact)) for r in recent) if v["run"].status in ACTIVE_STATUSES]
    return render(
        request,
        "runs.html",
        {
            "runs": views,
            "next_cursor": nxt,
            "first_page": cursor is None,
            "filters": {"status": status, "mode": mode, "kind": kind if dry is not None else None},
            "statuses": RUN_STATUSES,
            "modes": RUN_MODES,
            "trend_svg": svg.duration_trend([(v["run"], v["seconds"]) for v in trend if v["seconds"] is not None]),
            "active": active,
        },
    )


@router.get("/runs/live", response_class=HTMLResponse)
def live_fragment(request: Request, p: Viewer) -> Response:
    """The active runs panel, polled by console.js while runs are active."""
    recent, _ = svc.list_runs(rt_of(request), limit=TREND_RUNS)
    active = [_view(RunOut.of(r, not p.allows("admin"))) for r in recent if r.status in ACTIVE_STATUSES]
    resp = render(request, "_active_runs.html", {"active": active})
    if not active:
        resp.headers["X-Idr-Done"] = "1"
    return resp


@router.post("/runs")
def start_run(request: Request, p: Viewer, form: Form) -> Response:
    require(p, "run")
    mode = form.get("mode", "INCR")
    if mode not in RUN_MODES:
        raise IdrError(f"mode must be one of {', '.join(RUN_MODES)}", field="mode")
    dry = form.get("dry_run") == "on"
    try:
        run, _ = svc.create_run(rt_of(request), p, target="default", mode=mode, dry_run=dry)
    except ConflictError as e:
        flash(request, f"Not started: {e.message}", "error")
        return RedirectResponse("/ui/runs", status_code=303)
    flash(request, f"{'Dry run' if dry else 'Run'} {run.id} queued.")
    return RedirectResponse(f"/ui/runs/{run.id}", status_code=303)


def _run_context(request: Request, run_id: str, redact: bool = True) -> dict:
    r = RunOut.of(svc.get_run(rt_of(request), run_id), redact)
    stages = [s for s in r.stages if s.seconds is not None]
    return {
        **_view(r),
        "stage_svg": svg.stage_bars([(s.name, float(s.seconds or 0), s.rows_in, s.rows_out) for s in stages]),
        "stages": stages,
        "active": r.status in ACTIVE_STATUSES,
    }


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str, p: Viewer) -> Response:
    ctx = _run_context(request, run_id, not p.allows("admin"))
    r = ctx["run"]
    ctx["applied_by"] = applied_by(rt_of(request), r.id) if r.dry_run else []
    return render(request, "run.html", ctx)


@router.get("/runs/{run_id}/progress", response_class=HTMLResponse)
def run_progress(request: Request, run_id: str, p: Viewer) -> Response:
    """The live part of a run's page, polled by console.js until the run ends."""
    ctx = _run_context(request, run_id, not p.allows("admin"))
    resp = render(request, "_run_progress.html", ctx)
    if not ctx["active"]:
        resp.headers["X-Idr-Done"] = "1"
    return resp


@router.post("/runs/{run_id}/cancel")
def cancel(request: Request, run_id: str, p: Viewer, form: Form) -> Response:
    require(p, "run")
    try:
        svc.cancel_run(rt_of(request), run_id)
        flash(request, f"Cancel requested: run {run_id} stops at its next stage, before publish.")
    except ConflictError as e:
        flash(request, e.message, "error")
    return RedirectResponse(f"/ui/runs/{run_id}", status_code=303)
