"""/v1/runs: start (202 + Location), list, inspect, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from app.api.deps import Reader, Rt, Runner, problems
from app.api.links import RUN_CREATED, RUN_POLLED, links
from app.api.schemas import RunCreate, RunOut, RunPage, RunStatus
from app.services import runs

router = APIRouter(prefix="/v1/runs", tags=["runs"], responses=problems())

IdemKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key", max_length=255, description="Repeat a POST safely: the same key returns the same run."
    ),
]


@router.post("", status_code=202, response_model=RunOut, responses={**problems(409), **links(202, RUN_CREATED)})
def create_run(
    body: RunCreate, rt: Rt, principal: Runner, response: Response, idempotency_key: IdemKey = None
) -> RunOut:
    """Queue a FULL or INCR run (or a dry run). One writing run per target: a second gets 409."""
    run, _ = runs.create_run(
        rt, principal, target=body.target, mode=body.mode, dry_run=body.dry_run, idempotency_key=idempotency_key
    )
    response.headers["Location"] = f"/v1/runs/{run.id}"
    return RunOut.of(run, redact=not principal.allows("admin"))


@router.get("", response_model=RunPage)
def list_runs(
    rt: Rt,
    principal: Reader,
    status: RunStatus | None = None,
    mode: Annotated[str | None, Query(pattern="^(FULL|INCR)$")] = None,
    dry_run: bool | None = None,
    target: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> RunPage:
    items, nxt = runs.list_runs(
        rt, status=status, mode=mode, dry_run=dry_run, target=target, cursor=cursor, limit=limit
    )
    redact = not principal.allows("admin")
    return RunPage(items=[RunOut.of(r, redact) for r in items], next_cursor=nxt)


@router.get("/{run_id}", response_model=RunOut, responses={**problems(404), **links(200, RUN_POLLED)})
def get_run(run_id: str, rt: Rt, principal: Reader) -> RunOut:
    """Status, current stage and progress, per-stage timings, warnings, error (without the values
    it quotes unless the key has scope admin)."""
    return RunOut.of(runs.get_run(rt, run_id), redact=not principal.allows("admin"))


@router.post("/{run_id}/cancel", status_code=202, response_model=RunOut, responses=problems(404, 409))
def cancel_run(run_id: str, rt: Rt, principal: Runner) -> RunOut:
    """A queued run is cancelled at once; a running one has its running statement interrupted and
    stops before publish (production tables stay as they were)."""
    return RunOut.of(runs.cancel_run(rt, run_id), redact=not principal.allows("admin"))
