"""/v1/dry-runs/{id}: review a dry run's proposal, apply it, or delete it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.api.deps import Reader, Rt, Runner, problems
from app.api.links import DRY_RUN_REVIEWED, RUN_CREATED, links
from app.api.runs import IdemKey
from app.api.schemas import ChangePage, ChangeType, ClusterChangeList, DryRunSummary, RunOut
from app.services import dry_runs

router = APIRouter(prefix="/v1/dry-runs", tags=["dry-runs"], responses=problems(404))


@router.get("/{run_id}/summary", response_model=DryRunSummary, responses=links(200, DRY_RUN_REVIEWED))
def summary(run_id: str, rt: Rt, _: Reader) -> DryRunSummary:
    return DryRunSummary(**dry_runs.summary(rt, run_id))


@router.get("/{run_id}/changes", response_model=ChangePage)
def changes(
    run_id: str,
    rt: Rt,
    _: Reader,
    change_type: ChangeType | None = None,
    cursor: Annotated[str | None, Query(max_length=1024, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ChangePage:
    """Entity-level changes, ordered by entity_key."""
    rows, nxt = dry_runs.changes(rt, run_id, change_type, cursor, limit)
    return ChangePage(items=rows, next_cursor=nxt)  # type: ignore[arg-type]


@router.get("/{run_id}/clusters", response_model=ClusterChangeList)
def clusters(
    run_id: str,
    rt: Rt,
    _: Reader,
    change_type: ChangeType | None = None,
    cursor: Annotated[str | None, Query(max_length=1024, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ClusterChangeList:
    """The cluster-level diff: each flow of members from a current cluster into a proposed
    one (merges, splits, moves, new and removed records), ordered by proposed then current id."""
    rows, nxt = dry_runs.cluster_changes(rt, run_id, change_type, cursor, limit)
    return ClusterChangeList(items=rows, next_cursor=nxt)  # type: ignore[arg-type]


@router.post(
    "/{run_id}/apply", status_code=202, response_model=RunOut, responses={**problems(409), **links(202, RUN_CREATED)}
)
def apply(run_id: str, rt: Rt, principal: Runner, response: Response, idempotency_key: IdemKey = None) -> RunOut:
    """Publish exactly the reviewed proposal as a real run; 409 with the reason when its inputs changed."""
    run, _ = dry_runs.apply(rt, principal, run_id, idempotency_key)
    response.headers["Location"] = f"/v1/runs/{run.id}"
    return RunOut.of(run)


@router.delete("/{run_id}", status_code=204, responses=problems(409))
def delete(run_id: str, rt: Rt, _: Runner) -> Response:
    """Delete the dry run's results (its run history stays as the audit trail)."""
    dry_runs.delete(rt, run_id)
    return Response(status_code=204)
