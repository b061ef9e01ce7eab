"""The audit trail: every configuration change, dry-run apply, API-key change, webhook
change and erasure (requested, lifted -- never the erased keys or values), with who (the
key's name and id), when, and what changed as a diff; queryable with GET /v1/audit and kept
for IDR_AUDIT_RETENTION_DAYS.

Configuration lives in the warehouse and the trail in the service DB: the event is
written right after the warehouse transaction committed (a crash between the two loses
the event, never the change)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.db.models import AuditEvent, now_utc

KINDS: tuple[str, ...] = ("config", "dry_run_apply", "api_key", "webhook", "erasure")
_IGNORED = {"created_at", "updated_at"}  # bookkeeping the warehouse rewrites on every apply


def record(
    session: Session,
    *,
    kind: str,
    action: str,
    actor: str,
    key_id: str | None = None,
    target: str | None = None,
    subject: str | None = None,
    diff: dict[str, Any] | None = None,
) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown audit kind {kind!r}")
    session.add(
        AuditEvent(
            at=now_utc(), kind=kind, action=action, actor=actor[:128], key_id=key_id, target=target,
            subject=(subject or "")[:255] or None, diff=diff or {},
        )
    )  # fmt: skip


def local_actor() -> str:
    """Who runs a CLI command: ``cli:<user>``."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "cli:unknown"


def _clean(row: Any) -> Any:
    return {k: v for k, v in row.items() if k not in _IGNORED} if isinstance(row, dict) else row


def config_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Per section: items added, removed and changed (by item id), and settings changed."""
    from app.services.config import SECTIONS

    out: dict[str, Any] = {}
    for sec in SECTIONS.values():
        b = {sec.item_id(r): _clean(r) for r in before.get(sec.name) or []}
        a = {sec.item_id(r): _clean(r) for r in after.get(sec.name) or []}
        change: dict[str, Any] = {}
        if added := [{"id": k, **a[k]} for k in a if k not in b]:
            change["added"] = added
        if removed := [{"id": k, **b[k]} for k in b if k not in a]:
            change["removed"] = removed
        if changed := [
            {"id": k, "before": {f: b[k].get(f) for f in a[k] if a[k].get(f) != b[k].get(f)},
             "after": {f: a[k].get(f) for f in a[k] if a[k].get(f) != b[k].get(f)}}
            for k in a if k in b and a[k] != b[k]
        ]:  # fmt: skip
            change["changed"] = changed
        if change:
            out[sec.name] = change
    sb, sa = before.get("settings") or {}, after.get("settings") or {}
    keys = sorted(k for k in set(sb) | set(sa) if sb.get(k) != sa.get(k))
    settings = {k: {"before": sb.get(k), "after": sa.get(k)} for k in keys}
    if settings:
        out["settings"] = settings
    return out


def list_events(
    session: Session,
    *,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> tuple[list[AuditEvent], int | None]:
    """Newest first; keyset pagination on the id (the next page's cursor, or None)."""
    q = select(AuditEvent)
    if kind:
        q = q.where(AuditEvent.kind == kind)
    if since:
        q = q.where(AuditEvent.at >= since)
    if until:
        q = q.where(AuditEvent.at < until)
    if before_id is not None:
        q = q.where(AuditEvent.id < before_id)
    rows = list(session.scalars(q.order_by(AuditEvent.id.desc()).limit(limit + 1)))
    nxt = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], nxt


def prune(session: Session, retention_days: float) -> int:
    cutoff = now_utc() - timedelta(days=retention_days)
    return session.execute(delete(AuditEvent).where(AuditEvent.at < cutoff)).rowcount or 0
