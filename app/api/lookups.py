"""/v1/entities and /v1/clusters: resolved ids, golden profiles, members, edges, explanations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import Reader, Rt, Target, problems
from app.api.schemas import ClusterOut, EntityOut, ExplainOut
from app.services import lookups
from app.services.warehouse import DEFAULT_TARGET, check_target, warehouse

router = APIRouter(prefix="/v1", tags=["lookups"], responses=problems(404))



@router.get("/entities/{entity_key}", response_model=EntityOut)
def get_entity(entity_key: str, rt: Rt, _: Reader, target: Target = DEFAULT_TARGET) -> EntityOut:
    """The record's resolved id, its cluster's size and golden profile."""
    with warehouse(rt.settings, check_target(rt.settings, target), reuse=True) as a:
        return EntityOut(**lookups.entity(a, entity_key))


@router.get("/entities/{entity_key}/explain", response_model=ExplainOut, response_model_by_alias=True)
def explain(
    entity_key: str,
    rt: Rt,
    _: Reader,
    to: Annotated[str, Query(min_length=1, max_length=1024, description="The other record's entity_key.")],
    target: Target = DEFAULT_TARGET,
) -> ExplainOut:
    """The shortest chain of records, and the identifiers they share, linking two records of
    one cluster; 404 when they are not in one cluster, 422 (`limit_exceeded`) when the cluster
    has more identifier edges than `IDR_EXPLAIN_MAX_EDGES` (the search holds them in memory)."""
    with warehouse(rt.settings, check_target(rt.settings, target), reuse=True) as a:
        return ExplainOut.model_validate(lookups.explain(a, entity_key, to, rt.settings.explain_max_edges))


@router.get("/clusters/{resolved_id}", response_model=ClusterOut)
def get_cluster(
    resolved_id: str,
    rt: Rt,
    _: Reader,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    target: Target = DEFAULT_TARGET,
) -> ClusterOut:
    """Members (paginated by entity_key) and the edges that link them."""
    with warehouse(rt.settings, check_target(rt.settings, target), reuse=True) as a:
        return ClusterOut(**lookups.cluster(a, resolved_id, cursor, limit))
