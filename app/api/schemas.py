"""Request and response schemas shared by the routers (the OpenAPI contract)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from app.core.redact import redact_values
from app.core.timefmt import as_utc
from app.core.vocabulary import ACTIVE_STATUSES, SUCCESS_STATUSES
from app.core.vocabulary import ChangeType as _ChangeType
from app.core.vocabulary import ErasureStatus as _ErasureStatus
from app.core.vocabulary import RunStatus as _RunStatus
from app.db.models import Run, Webhook, WebhookAttempt, WebhookDelivery

EventName = Literal[
    "run.succeeded", "run.failed", "dry_run.completed", "cluster.large_detected", "erasure.completed", "*"
]
RunStatus = _RunStatus
ChangeType = _ChangeType


utc = as_utc  # SQLite and the warehouses return naive datetimes; everything stored is UTC.
# Every timestamp in a body: RFC 3339 in UTC with 'Z', whatever the source handed back.
Timestamp = Annotated[datetime, AfterValidator(as_utc)]


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending field ('' for the whole document).")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every 4xx/5xx answer."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    code: str | None = Field(None, description="Stable machine-readable error code.")
    field: str | None = Field(None, description="The offending field, when one is to blame.")
    errors: list[FieldError] | None = None
    run_id: str | None = Field(None, description="For 409 on runs: the run in progress.")
    checks: dict[str, str] | None = Field(None, description="For /readyz: the state of each dependency.")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# A string, not an enum of the configured targets: the contract is one file for every
# deployment (docs/decisions/0011-target-is-a-name-not-an-enum.md).
TARGET_DESCRIPTION = (
    "Named warehouse target: `default`, or a name configured in IDR_TARGETS. An unknown name is "
    "answered 422 with `field: target`, naming the known targets."
)


# ------------------------------------------------------------------ runs
class RunCreate(_Strict):
    target: str = Field("default", min_length=1, max_length=64, description=TARGET_DESCRIPTION)
    mode: Literal["FULL", "INCR"] = "INCR"
    dry_run: StrictBool = False


class StageOut(BaseModel):
    name: str
    started_at: Timestamp | None = None
    ended_at: Timestamp | None = None
    seconds: float | None = None
    rows_in: int | None = None
    rows_out: int | None = None


class Progress(BaseModel):
    stages_done: int
    stages_total: int
    percent: float


class RunError(BaseModel):
    message: str | None
    stage: str | None


class RunErasureOut(BaseModel):
    erasure_id: str
    applied: bool = Field(description="The run removed its records, or kept its rows out.")
    entities_removed: int = Field(description="Records of the identity graph the run removed for it.")
    lifted: bool = Field(description="The run lifted it: its sources had deleted every row it held.")


class RunOut(BaseModel):
    id: str
    target: str
    mode: Literal["FULL", "INCR"]
    dry_run: bool
    apply_of: str | None = Field(None, description="For a run applying a dry run: that dry run's id.")
    status: RunStatus
    cancel_requested: bool
    current_stage: str | None
    progress: Progress
    stages: list[StageOut]
    warnings: list[str]
    counts: dict[str, int] = Field(
        description="The run's figures, as run_history records them (entities_removed_<reason>: records removed "
        "by soft delete, erasure, reconciliation). Keys 'erased:<erasure id>' repeat `erasures` for clients "
        "written before it (deprecated)."
    )
    erasures: list[RunErasureOut] = Field(
        default_factory=list, description="Erasure requests this run applied or lifted (published runs)."
    )
    error: RunError | None
    requested_by: str | None
    created_at: Timestamp
    started_at: Timestamp | None
    ended_at: Timestamp | None
    heartbeat_at: Timestamp | None

    @classmethod
    def of(cls, r: Run, redact: bool = False) -> RunOut:
        """``redact``: the error message without the values it quotes (keys below admin)."""
        total = max(int(r.stages_total or 0), 1)
        done = int(r.stages_done or 0)
        if r.status in SUCCESS_STATUSES:
            done = total
        percent = round(100.0 * min(done, total) / total, 1)
        if r.status in ACTIVE_STATUSES:
            percent = min(percent, 99.9)  # every stage may be done while the run is still finishing
        return cls(
            id=r.id,
            target=r.target,
            mode=r.mode,  # type: ignore[arg-type]
            dry_run=r.dry_run,
            apply_of=r.apply_of,
            status=r.status,  # type: ignore[arg-type]
            cancel_requested=bool(r.cancel_requested),
            current_stage=r.current_stage,
            progress=Progress(stages_done=done, stages_total=total, percent=percent),
            stages=[_stage(s) for s in (r.stages or [])],
            warnings=list(r.warnings or []),
            counts={
                **{k: int(v) for k, v in (r.counts or {}).items() if v is not None},
                **{f"erased:{e.erasure_id}": int(e.entities_removed) for e in r.erasures if e.applied},
            },
            erasures=[
                RunErasureOut(
                    erasure_id=e.erasure_id, applied=e.applied, entities_removed=int(e.entities_removed),
                    lifted=e.lifted,
                )
                for e in r.erasures
            ],
            error=RunError(message=(redact_values(r.error_message) if redact else r.error_message) or "",
                           stage=r.error_stage)
            if r.error_message
            else None,
            requested_by=r.requested_by,
            created_at=utc(r.created_at),  # type: ignore[arg-type]
            started_at=utc(r.started_at),
            ended_at=utc(r.ended_at),
            heartbeat_at=utc(r.heartbeat_at),
        )


def _stage(raw: dict[str, Any]) -> StageOut:
    stage = StageOut(**raw)
    # Stored as text by older versions without an offset: UTC all the same.
    return stage.model_copy(update={"started_at": utc(stage.started_at), "ended_at": utc(stage.ended_at)})


class RunPage(BaseModel):
    items: list[RunOut]
    next_cursor: str | None


# ------------------------------------------------------------------ dry runs
class DryRunSummary(BaseModel):
    run_id: str
    status: str
    mode: str | None = None
    total_entities: int | None = None
    new_entities: int | None = None
    moved_entities: int | None = None
    merged_entities: int | None = None
    split_entities: int | None = None
    removed_entities: int | None = None
    unchanged_entities: int | None = None
    merged_clusters: int | None = None
    split_clusters: int | None = None
    largest_proposed_cluster: int | None = None
    edges_would_create: int | None = None
    groups_would_skip: int | None = None
    values_would_exclude: int | None = None
    affected_entities: int | None = Field(
        None, description="Entities whose resolved id would change: every change type but UNCHANGED."
    )
    execution_time_seconds: float | None = Field(None, description="The dry run's duration (sub-second precision).")
    created_at: Timestamp | None = None


class ChangeOut(BaseModel):
    entity_key: str
    current_resolved_id: str | None
    proposed_resolved_id: str | None
    change_type: ChangeType
    current_cluster_size: int | None
    proposed_cluster_size: int | None


class ChangePage(BaseModel):
    items: list[ChangeOut]
    next_cursor: str | None


class ClusterChangeOut(BaseModel):
    current_resolved_id: str | None = Field(description="The current cluster (null: records new to idr).")
    proposed_resolved_id: str | None = Field(description="The proposed cluster (null: records removed).")
    members: int | None = Field(None, description="How many of the current cluster's members land in the proposed one.")
    members_moved: int | None = Field(description="How many of those change resolved id (0 where the id is kept).")
    current_cluster_size: int | None
    proposed_cluster_size: int | None
    change_type: str | None


class ClusterChangeList(BaseModel):
    items: list[ClusterChangeOut]
    next_cursor: str | None = Field(None, description="Pass as cursor for the next page; null on the last page.")


# ------------------------------------------------------------------ lookups
class GoldenAttribute(BaseModel):
    attribute_name: str
    attribute_value: str | None
    source_entity_key: str | None
    source_table_id: str | None
    strategy: str | None


class ClusterConfidence(BaseModel):
    confidence_score: float = Field(
        description="0-1: 0.5 x identifier types / active rules + 0.35 x density + 0.15; a single record scores 1."
    )
    edge_diversity: int = Field(description="Distinct identifier types among the cluster's edges.")
    match_density: float = Field(description="Edges / (size - 1), capped at 1.")
    primary_reason: str | None = Field(description="e.g. '2 identifier types, high density'.")


class EntityOut(BaseModel):
    entity_key: str
    resolved_id: str
    cluster_size: int
    confidence: ClusterConfidence | None = None
    golden_profile: list[GoldenAttribute]


class EdgeOut(BaseModel):
    rule_id: str | None
    left_entity_key: str
    right_entity_key: str
    identifier_type: str
    identifier_value_norm: str
    first_seen_ts: Timestamp | None = None
    last_seen_ts: Timestamp | None = None


class ClusterOut(BaseModel):
    resolved_id: str
    cluster_size: int
    confidence: ClusterConfidence | None = None
    golden_profile: list[GoldenAttribute] = Field(description="On the first page only.")
    members: list[str]
    edges: list[EdgeOut] = Field(description="Edges whose left record is on this page.")
    next_cursor: str | None


class SharedIdentifier(BaseModel):
    identifier_type: str
    identifier_value: str
    rule_id: str | None


class ExplainLink(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    from_: str = Field(alias="from")
    to: str
    shared_identifiers: list[SharedIdentifier]


class ExplainOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    from_: str = Field(alias="from")
    to: str
    resolved_id: str
    hops: int
    path: list[str] = Field(description="Records from `from` to `to`, each sharing an identifier with the next.")
    links: list[ExplainLink]


# ------------------------------------------------------------------ webhooks
class WebhookCreate(_Strict):
    """A subscription: every event of the listed kinds is POSTed to ``url``, signed per
    Standard Webhooks with the secret returned once in the answer."""

    url: str = Field(
        min_length=1, max_length=2048, description="Absolute http(s) URL that receives the events (POST, JSON)."
    )
    events: list[EventName] = Field(
        min_length=1,
        description="Event kinds: run.succeeded, run.failed, dry_run.completed, cluster.large_detected, "
        "erasure.completed; "
        '["*"] subscribes to every event, including kinds added later.',
        examples=[["run.succeeded", "run.failed"], ["*"]],
    )
    description: str | None = Field(None, max_length=500, description="Free text for people (who owns it, why).")


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str | None
    created_at: Timestamp

    @classmethod
    def of(cls, w: Webhook) -> WebhookOut:
        return cls(id=w.id, url=w.url, events=list(w.events), description=w.description, created_at=utc(w.created_at))  # type: ignore[arg-type]


class WebhookCreated(WebhookOut):
    secret: str = Field(description="Signing secret (whsec_...). Shown only in this response.")


class WebhookList(BaseModel):
    items: list[WebhookOut]


class AttemptOut(BaseModel):
    attempt: int
    at: Timestamp
    outcome: Literal["success", "retry", "failed"]
    status_code: int | None
    error: str | None
    duration_ms: float


class DeliveryOut(BaseModel):
    id: str
    event: str
    status: Literal["PENDING", "SUCCEEDED", "FAILED"]
    attempts: int
    created_at: Timestamp
    next_attempt_at: Timestamp | None
    completed_at: Timestamp | None
    attempt_log: list[AttemptOut]

    @classmethod
    def of(cls, d: WebhookDelivery, atts: list[WebhookAttempt]) -> DeliveryOut:
        return cls(
            id=d.id,
            event=d.event,
            status=d.status,  # type: ignore[arg-type]
            attempts=d.attempts,
            created_at=utc(d.created_at),  # type: ignore[arg-type]
            next_attempt_at=utc(d.next_attempt_at),
            completed_at=utc(d.completed_at),
            attempt_log=[
                AttemptOut(
                    attempt=a.attempt,
                    at=utc(a.at),
                    outcome=a.outcome,
                    status_code=a.status_code,  # type: ignore[arg-type]
                    error=a.error,
                    duration_ms=a.duration_ms,
                )
                for a in atts
            ],
        )


class DeliveryList(BaseModel):
    items: list[DeliveryOut]


# ------------------------------------------------------------------ config
class ConfigApplied(BaseModel):
    counts: dict[str, int]
    settings_changed: list[str]
    config: dict[str, Any]


class SettingOut(BaseModel):
    key: str
    value: str


class SettingIn(_Strict):
    # Strict: true is not 1; a number is an integer.
    value: StrictStr | StrictInt = Field(description="The setting's value (an integer, or true/false for flags).")


# ------------------------------------------------------------------ health
class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    mode: Literal["embedded", "celery"]
    checks: dict[str, str]


# ------------------------------------------------------------------ erasures
class ErasureIdentifier(_Strict):
    type: str = Field(min_length=1, max_length=64, description="An identifier type with an active rule, e.g. EMAIL.")
    value: str = Field(min_length=1, max_length=4096, description="The value as a source holds it.")


class ErasureCreate(_Strict):
    """Entity keys, or one identifier: every record that matches is removed by the next run."""

    entity_keys: list[str] | None = Field(
        None, min_length=1, max_length=1000, description="Entity keys ('<table_id>:<key>') to erase."
    )
    identifier: ErasureIdentifier | None = Field(None, description="Erase every record holding this identifier.")
    target: str = Field("default", min_length=1, max_length=64, description=TARGET_DESCRIPTION)
    run: StrictBool = Field(False, description="Start an INCR run at once, which applies the erasure.")


class ErasureRunOut(BaseModel):
    run_id: str
    entities_removed: int = Field(description="Records of the identity graph this run removed for the erasure.")
    rows_suppressed: int = Field(description="Source rows the erasure kept out of this run.")
    applied_at: Timestamp | None = None


class ErasureOut(BaseModel):
    id: str
    kind: Literal["KEY", "IDENTIFIER"]
    identifier_type: str | None = None
    entries: int = Field(description="Keys (or 1 identifier) on the suppression list, stored as salted hashes.")
    status: _ErasureStatus = Field(
        description="PENDING until a run applies it; APPLIED (in force) while a source still holds a row it "
        "matched; LIFTED once the sources deleted every such row (its hashes are gone)."
    )
    requested_at: Timestamp | None = None
    requested_by: str | None = None
    took_effect_at: Timestamp | None = None
    took_effect_in_run: str | None = None
    lifted_at: Timestamp | None = Field(None, description="When the run that lifted it ran.")
    lifted_in_run: str | None = Field(None, description="The run that lifted it.")
    runs: list[ErasureRunOut] = Field(default_factory=list, description="Runs that applied it, oldest first.")
    run_id: str | None = Field(None, description="The run this request started (run: true).")


AuditKind = Literal["config", "dry_run_apply", "api_key", "webhook", "erasure"]  # app.services.audit.KINDS


class AuditOut(BaseModel):
    id: int
    at: Timestamp
    kind: AuditKind
    action: str = Field(
        description="What was done, e.g. config.replace, rules.create, dry_run.apply, webhook.delete, "
        "erasure.request, erasure.lifted.",
    )
    actor: str = Field(description="Name of the API key (or cli:<user>) that made the change.")
    key_id: str | None = Field(description="Id of that API key, when one was used.")
    target: str | None
    subject: str | None = Field(description="The item, dry run, key or webhook changed.")
    diff: dict[str, Any] = Field(description="What changed: added/removed/changed items, settings before/after.")


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_cursor: str | None
