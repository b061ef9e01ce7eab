"""Run lifecycle in the state DB: create (idempotent, one writer per target), list, cancel, finish."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.errors import ConflictError, IdrError, NotFoundError
from app.core.vocabulary import ACTIVE_STATUSES, RUN_STATUSES, TERMINAL_STATUSES
from app.db.models import IdempotencyKey, Run, now_utc
from app.pipeline.context import new_run_id
from app.pipeline.runner import stages_total as pipeline_stages_total
from app.services.auth import Principal
from app.services.runtime import Runtime
from app.services.warehouse import check_target

log = logging.getLogger(__name__)

TERMINAL = TERMINAL_STATUSES
ACTIVE = ACTIVE_STATUSES
STATUSES = RUN_STATUSES


def stages_total(dry_run: bool, apply: bool) -> int:
    return pipeline_stages_total(dry_run, apply)


def _request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _active_writer(session: Session, target: str) -> Run | None:
    return session.scalar(select(Run).where(Run.writer_slot == target))


def _idempotent(session: Session, principal: Principal, key: str | None, body: dict[str, Any]) -> Run | None:
    if not key:
        return None
    row = session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.principal == principal.key_id, IdempotencyKey.key == key)
    )
    if row is None:
        return None
    if row.request_hash != _request_hash(body):
        raise ConflictError("this Idempotency-Key was used with a different request body", field="Idempotency-Key")
    return session.get(Run, row.run_id)


def create_run(
    rt: Runtime,
    principal: Principal,
    *,
    target: str,
    mode: str,
    dry_run: bool,
    idempotency_key: str | None = None,
    apply_of: str | None = None,
    precheck: Callable[[], None] | None = None,
) -> tuple[Run, bool]:
    """Insert a QUEUED run and send it to a worker after commit. Returns (run, created)."""
    check_target(rt.settings, target)
    body = {"target": target, "mode": mode, "dry_run": dry_run, "apply_of": apply_of}
    with rt.session() as s:
        existing = _idempotent(s, principal, idempotency_key, body)
        if existing is not None:
            return existing, False
        if precheck is not None:
            precheck()  # e.g. "is the dry run still current?": only for a new request
        now = now_utc()
        run = Run(
            id=new_run_id(dry_run, now.replace(tzinfo=None)),
            target=target,
            mode=mode,
            dry_run=dry_run,
            apply_of=apply_of,
            status="QUEUED",
            writer_slot=None if dry_run else target,
            stages_total=stages_total(dry_run, apply_of is not None),
            stages=[],
            warnings=[],
            counts={},
            erasures=[],  # loaded: a new run read after its session closed has none
            requested_by=principal.name,
            created_at=now,
        )
        try:
            s.add(run)
            s.flush()  # the run row first: the idempotency row references it
            if idempotency_key:
                s.add(
                    IdempotencyKey(
                        principal=principal.key_id,
                        key=idempotency_key,
                        request_hash=_request_hash(body),
                        run_id=run.id,
                    )
                )
                s.flush()
            if apply_of is not None:
                from app.services import audit

                audit.record(
                    s, kind="dry_run_apply", action="dry_run.apply", actor=principal.name,
                    key_id=None if principal.key_id == "cli" else principal.key_id, target=target, subject=apply_of,
                    diff={"dry_run_id": apply_of, "run_id": run.id, "mode": mode},
                )  # fmt: skip
                s.flush()
        except IntegrityError:
            s.rollback()
            # Either the same Idempotency-Key won a race, or a writing run holds the target.
            again = _idempotent(s, principal, idempotency_key, body)
            if again is not None:
                return again, False
            holder = _active_writer(s, target)
            if holder is not None:
                raise ConflictError(
                    f"run {holder.id} ({holder.status}) is in progress on target {target!r}; "
                    "one writing run per target at a time (dry runs may run alongside)",
                    details={"run_id": holder.id},
                ) from None
            raise
    rt.send("idr.run", [run.id])
    return run, True


def get_run(rt: Runtime, run_id: str) -> Run:
    with rt.session() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise NotFoundError(f"run {run_id!r} not found")
        return run


def _encode_cursor(run: Run) -> str:
    raw = json.dumps([run.created_at.isoformat(), run.id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        ts, rid = json.loads(raw)
        return datetime.fromisoformat(ts), str(rid)
    except Exception:
        raise IdrError("cursor is not valid; pass the next_cursor of a previous page", field="cursor") from None


def list_runs(
    rt: Runtime,
    *,
    status: str | None = None,
    mode: str | None = None,
    dry_run: bool | None = None,
    target: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Run], str | None]:
    """Newest first; keyset pagination on (created_at, id)."""
    q = select(Run)
    if status:
        q = q.where(Run.status == status)
    if mode:
        q = q.where(Run.mode == mode)
    if dry_run is not None:
        q = q.where(Run.dry_run == dry_run)
    if target:
        q = q.where(Run.target == target)
    if cursor:
        ts, rid = _decode_cursor(cursor)
        q = q.where(or_(Run.created_at < ts, and_(Run.created_at == ts, Run.id < rid)))
    q = q.order_by(Run.created_at.desc(), Run.id.desc()).limit(limit + 1)
    with rt.session() as s:
        rows = list(s.scalars(q))
    nxt = _encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], nxt


def transition(session: Session, run_id: str, *, frm: tuple[str, ...], to: str,
               generation: int | None = None, where: Any = None, **values: Any) -> bool:
    """The one way a run's status changes: a compare-and-set from ``frm`` (never a terminal
    status: those are final), and, when ``generation`` is given, only while that lease holds.
    Returns whether this caller made the change."""
    if set(frm) & set(TERMINAL):
        raise ValueError(f"terminal statuses are final; cannot move a run out of {sorted(set(frm) & set(TERMINAL))}")
    q = update(Run).where(Run.id == run_id, Run.status.in_(frm))
    if generation is not None:
        q = q.where(Run.lease_generation == generation)
    if where is not None:
        q = q.where(where)
    if to in TERMINAL:
        values.setdefault("writer_slot", None)
        values.setdefault("ended_at", now_utc())
        values.setdefault("current_stage", None)
    res = session.execute(q.values(status=to, **values).execution_options(synchronize_session=False))
    return res.rowcount == 1


def cancel_run(rt: Runtime, run_id: str) -> Run:
    """QUEUED: cancelled at once. RUNNING: the worker interrupts the running statement and
    stops before publish, so production tables stay untouched. Finished: 409."""
    with rt.session() as s:
        cancelled = transition(
            s, run_id, frm=("QUEUED",), to="CANCELLED", cancel_requested=True,
            error_message="cancelled before it started",
        )  # fmt: skip
        if not cancelled:
            s.execute(
                update(Run)
                .where(Run.id == run_id, Run.status.in_(ACTIVE))
                .values(cancel_requested=True)
                .execution_options(synchronize_session=False)
            )
        run = s.get(Run, run_id)
        if run is None:
            raise NotFoundError(f"run {run_id!r} not found")
        s.refresh(run)
        if run.status in TERMINAL and not cancelled:
            raise ConflictError(f"run {run_id} already finished with status {run.status}")
        return run


def claim(rt: Runtime, run_id: str) -> int | None:
    """QUEUED -> RUNNING, atomically, taking the run's lease: returns the lease generation,
    or None when a duplicate delivery of the task lost the race (or the run is no longer QUEUED)."""
    now = now_utc()
    with rt.session() as s:
        if not transition(
            s, run_id, frm=("QUEUED",), to="RUNNING", started_at=now, heartbeat_at=now,
            attempts=Run.attempts + 1, lease_generation=Run.lease_generation + 1,
        ):  # fmt: skip
            return None
        return s.scalar(select(Run.lease_generation).where(Run.id == run_id))
