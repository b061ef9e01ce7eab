"""ORM models of the service state. The warehouse keeps the data; this keeps the service's bookkeeping."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def now_utc() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSON, list[Any]: JSON}


class Run(Base):
    __tablename__ = "runs"

    # Same id as idr_out.run_history.run_id in the warehouse.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    target: Mapped[str] = mapped_column(String(64), index=True)
    mode: Mapped[str] = mapped_column(String(8))
    dry_run: Mapped[bool] = mapped_column(Boolean, index=True)
    apply_of: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    # Set to the target while a writing run is QUEUED/RUNNING, NULL otherwise: the unique
    # constraint makes "one writing run per target" race-free across API replicas.
    writer_slot: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    current_stage: Mapped[str | None] = mapped_column(String(64), nullable=True)
    stages_done: Mapped[int] = mapped_column(Integer, default=0)
    stages_total: Mapped[int] = mapped_column(Integer, default=0)
    stages: Mapped[list[Any]] = mapped_column(JSON, default=list)
    warnings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_stage: Mapped[str | None] = mapped_column(String(64), nullable=True)
    requested_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=now_utc, index=True)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The run's lease (fencing): a worker claims a run at a generation; the reaper takes the
    # lease by moving the generation on, after which the old worker can neither change the
    # status nor publish (publish re-checks the lease inside its transaction).
    lease_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set in the publish transaction's lease check: production has this run's results.
    published_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # The erasure requests this run applied or lifted (loaded with the run).
    erasures: Mapped[list[RunErasure]] = relationship(
        lazy="selectin", order_by="RunErasure.erasure_id", cascade="all, delete-orphan"
    )


class RunErasure(Base):
    """An erasure request a published run applied (removed its records, or kept its rows
    out) or lifted: what erasure.completed and the audit trail's erasure.lifted are sent
    from. The warehouse keeps the same facts (idr_out.erasure_runs, erasure_request)."""

    __tablename__ = "run_erasures"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    erasure_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    applied: Mapped[bool] = mapped_column(Boolean, default=False)
    entities_removed: Mapped[int] = mapped_column(Integer, default=0)
    lifted: Mapped[bool] = mapped_column(Boolean, default=False)


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("principal", "key", name="uq_idempotency_principal_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    principal: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=now_utc)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    # sha256 of the whole key: keys are long random strings, so a fast hash is enough.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Updated at most once a minute per key (a write per request would cost more than the request).
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[Any]] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The signing secret must be usable to sign, so it cannot be hashed: it is stored
    # encrypted (app.services.secretbox), never returned after creation and never logged.
    secret: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=now_utc)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # the webhook-id header (msg_...)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)  # exact body bytes that are signed
    status: Mapped[str] = mapped_column(String(16), default="PENDING")  # PENDING|SUCCEEDED|FAILED
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=now_utc, index=True)
    completed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # A worker sending this delivery holds it until then: two workers never send it at once.
    claimed_until: Mapped[datetime | None] = mapped_column(nullable=True)


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=now_utc)
    outcome: Mapped[str] = mapped_column(String(16))  # success | retry | failed
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)


class MetricsExportFailure(Base):
    """A push to a metrics exporter that failed (its rows stay pending for the next push)."""

    __tablename__ = "metrics_export_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=now_utc)


class MetricsSnapshot(Base):
    """The last exposition of a target's warehouse metrics, for an API process that cannot
    read the warehouse yet (another process holds the DuckDB file)."""

    __tablename__ = "metrics_snapshots"

    target: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    read_at: Mapped[datetime] = mapped_column()


class AuditEvent(Base):
    """Who changed what, when, from which key: configuration, dry-run applies, API keys,
    webhooks (GET /v1/audit). Kept for IDR_AUDIT_RETENTION_DAYS."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=now_utc, index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)  # app.services.audit.KINDS
    action: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(128))
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    target: Mapped[str | None] = mapped_column(String(64), nullable=True)
    subject: Mapped[str | None] = mapped_column(String(255), nullable=True)
    diff: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
