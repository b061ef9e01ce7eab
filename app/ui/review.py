"""Dry-run review: summary cards, merges and splits, one opened side by side, entity changes,
Apply and Discard."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.core.errors import ConflictError
from app.core.vocabulary import CHANGE_TYPES
from app.pipeline.dryrun import get_summary
from app.services import dry_runs, review
from app.ui.web import PAGE_SIZE, Form, Viewer, flash, render, require, rt_of

router = APIRouter()

CHANGED = tuple(t for t in CHANGE_TYPES if t != "UNCHANGED")


@router.get("/dry-runs/{run_id}", response_class=HTMLResponse)
def review_page(
    request: Request,
    run_id: str,
    p: Viewer,
    kind: Annotated[str | None, Query(max_length=8)] = None,
    sort: Annotated[str, Query(max_length=16)] = "size",
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    change: Annotated[str | None, Query(max_length=16)] = None,
    after: Annotated[str | None, Query(max_length=1024)] = None,
) -> Response:
    rt = rt_of(request)
    summary = dry_runs.summary(rt, run_id)
    kind = kind if kind in review.KINDS else None
    sort = sort if sort in review.SORTS else "size"
    types = (change,) if change in CHANGE_TYPES else CHANGED
    with review.open_review(rt, run_id) as a:
        counts = review.unit_counts(a, run_id)
        units, units_next = review.page_units(a, run_id, kind=kind, sort=sort, cursor=cursor, limit=PAGE_SIZE)
    changes, changes_next = dry_runs.changes(rt, run_id, types, after, PAGE_SIZE)  # type: ignore[arg-type]
    return render(
        request,
        "review.html",
        {
            "s": summary,
            "run_id": run_id,
            "counts": counts,
            "units": units,
            "units_next": units_next,
            "units_first": cursor is None,
            "kind": kind,
            "sort": sort,
            "sorts": review.SORTS,
            "changes": changes,
            "changes_next": changes_next,
            "changes_first": after is None,
            "change": change if change in CHANGE_TYPES else None,
            "change_types": CHANGE_TYPES,
            "applied": review.applied_by(rt, run_id),
            # One apply per rendered page: a second click (or a resent form) returns the same run.
            "idem": secrets.token_urlsafe(12),
        },
    )


UnitQuery = Annotated[str | None, Query(max_length=1024)]


def _unit_page(
    request: Request,
    run_id: str,
    kind: review.Kind,
    cluster_id: str,
    cols: int,
    column: str | None,
    after: str | None,
) -> Response:
    rt = rt_of(request)
    with review.open_review(rt, run_id) as a:
        info = get_summary(a, run_id)
        u = review.unit(a, run_id, kind, cluster_id, columns_from=cols, column=column, after=after)
    return render(
        request,
        "unit.html",
        {
            "u": u,
            "s": info,
            "run_id": run_id,
            "per_group": review.RECORDS_PER_GROUP,
            "per_page": review.COLUMNS_PER_PAGE,
        },
    )


@router.get("/dry-runs/{run_id}/merges/{cluster_id}", response_class=HTMLResponse)
def merge_page(
    request: Request,
    run_id: str,
    cluster_id: str,
    p: Viewer,
    cols: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    column: UnitQuery = None,
    after: UnitQuery = None,
) -> Response:
    return _unit_page(request, run_id, "MERGE", cluster_id, cols, column, after)


@router.get("/dry-runs/{run_id}/splits/{cluster_id}", response_class=HTMLResponse)
def split_page(
    request: Request,
    run_id: str,
    cluster_id: str,
    p: Viewer,
    cols: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    column: UnitQuery = None,
    after: UnitQuery = None,
) -> Response:
    return _unit_page(request, run_id, "SPLIT", cluster_id, cols, column, after)


@router.post("/dry-runs/{run_id}/apply")
def apply(request: Request, run_id: str, p: Viewer, form: Form) -> Response:
    require(p, "run")
    try:
        run, created = dry_runs.apply(rt_of(request), p, run_id, form.get("idempotency_key") or None)
    except ConflictError as e:
        flash(request, f"Not applied: {e.message}", "error")
        return RedirectResponse(f"/ui/dry-runs/{run_id}", status_code=303)
    flash(request, f"Applying dry run {run_id}: run {run.id} {'queued' if created else 'was already queued'}.")
    return RedirectResponse(f"/ui/runs/{run.id}", status_code=303)


@router.post("/dry-runs/{run_id}/discard")
def discard(request: Request, run_id: str, p: Viewer, form: Form) -> Response:
    require(p, "run")
    try:
        dry_runs.delete(rt_of(request), run_id)
    except ConflictError as e:
        flash(request, f"Not discarded: {e.message}", "error")
        return RedirectResponse(f"/ui/dry-runs/{run_id}", status_code=303)
    flash(request, f"Dry run {run_id} discarded (its run history stays as the audit trail).")
    return RedirectResponse("/ui/runs?kind=dry", status_code=303)
