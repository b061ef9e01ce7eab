"""/v1/erasures: "forget this person" -- record an erasure (admin), see when it took effect."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.api.deps import Admin, Rt, Target, problems
from app.api.schemas import ErasureCreate, ErasureOut
from app.core.errors import ConflictError
from app.services import audit, erasures, runs
from app.services.warehouse import DEFAULT_TARGET, check_target, warehouse

router = APIRouter(prefix="/v1/erasures", tags=["erasures"], responses=problems(404))



@router.post("", status_code=202, response_model=ErasureOut, responses=problems(409))
def create_erasure(body: ErasureCreate, rt: Rt, principal: Admin, response: Response) -> ErasureOut:
    """Every record matching the keys or the identifier leaves the identity graph, its
    clusters and golden profiles at the next real run (``run: true`` starts an INCR run
    now), and stays out while a source still holds it. Only salted hashes are stored."""
    target = check_target(rt.settings, body.target)
    ident = body.identifier
    with warehouse(rt.settings, target) as a:
        out = erasures.request(
            a,
            entity_keys=body.entity_keys,
            identifier_type=ident.type if ident else None,
            identifier_value=ident.value if ident else None,
            requested_by=f"api:{principal.name}",
        )
    with rt.session() as s:  # the trail: who asked for what kind, never the keys or the value
        audit.record(
            s, kind="erasure", action="erasure.request", actor=principal.name,
            key_id=None if principal.key_id == "cli" else principal.key_id, target=target, subject=out["id"],
            diff={"kind": out["kind"], "identifier_type": out["identifier_type"], "entries": out["entries"]},
        )  # fmt: skip
    response.headers["Location"] = f"/v1/erasures/{out['id']}?target={target}"
    if body.run:
        try:
            run, _ = runs.create_run(rt, principal, target=target, mode="INCR", dry_run=False, idempotency_key=None)
            out["run_id"] = run.id
        except ConflictError:  # a writing run is under way: it, or the next one, applies the erasure
            out["run_id"] = None
    return ErasureOut(**out)


@router.get("/{erasure_id}", response_model=ErasureOut)
def get_erasure(erasure_id: str, rt: Rt, _: Admin, target: Target = DEFAULT_TARGET) -> ErasureOut:
    """When the erasure took effect and which runs applied it."""
    with warehouse(rt.settings, check_target(rt.settings, target)) as a:
        return ErasureOut(**erasures.get(a, erasure_id))
