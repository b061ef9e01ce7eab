"""/v1/audit: who changed what, when, from which key (admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.api.deps import Admin, Rt, problems
from app.api.schemas import AuditKind, AuditOut, AuditPage
from app.core.errors import IdrError
from app.core.timefmt import as_utc
from app.services import audit

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=problems())


# RFC 3339 only: a bare number would otherwise be read as a Unix time.
_RFC3339 = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"


def _time(description: str) -> Any:
    return Query(description=description, pattern=_RFC3339, json_schema_extra={"format": "date-time"})


def _parse(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return as_utc(datetime.fromisoformat(value.replace("z", "Z")))
    except ValueError:
        raise IdrError(f"{field} is not an RFC 3339 date-time", field=field) from None


@router.get("", response_model=AuditPage)
def list_audit(
    rt: Rt,
    _: Admin,
    kind: AuditKind | None = None,
    since: Annotated[str | None, _time("Events at or after this time (RFC 3339).")] = None,
    until: Annotated[str | None, _time("Events before this time (RFC 3339).")] = None,
    cursor: Annotated[str | None, Query(max_length=20, pattern="^[0-9]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AuditPage:
    """Configuration changes, dry-run applies, API-key and webhook changes, newest first."""
    t0, t1 = _parse(since, "since"), _parse(until, "until")
    if t0 and t1 and t0 >= t1:
        raise IdrError("since must be before until", field="since")
    with rt.session() as s:
        rows, nxt = audit.list_events(
            s, kind=kind, since=t0, until=t1,
            before_id=int(cursor) if cursor else None, limit=limit,
        )  # fmt: skip
        items = [
            AuditOut(
                id=r.id, at=r.at, kind=r.kind, action=r.action, actor=r.actor, key_id=r.key_id,  # type: ignore[arg-type]
                target=r.target, subject=r.subject, diff=r.diff or {},
            )
            for r in rows
        ]  # fmt: skip
    return AuditPage(items=items, next_cursor=str(nxt) if nxt is not None else None)
