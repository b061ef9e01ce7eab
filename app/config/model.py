"""Typed configuration: one pydantic model per ``idr_meta`` table row.

The same models validate the YAML file, the HTTP API and what the pipeline reads back
from the warehouse, so a field means the same thing everywhere.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from app.core.vocabulary import RECONCILE_PATTERN


class Canonicalize(StrEnum):
    NONE = "NONE"
    LOWERCASE = "LOWERCASE"
    UPPERCASE = "UPPERCASE"
    TRIM = "TRIM"
    EMAIL = "EMAIL"  # trim + lowercase
    PHONE = "PHONE"  # digits only


class MatchType(StrEnum):
    EXACT = "EXACT"
    LIKE = "LIKE"


class Strategy(StrEnum):
    RECENCY = "RECENCY"
    SOURCE_PRIORITY = "SOURCE_PRIORITY"
    MOST_FREQUENT = "MOST_FREQUENT"


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False)


class SourceTable(_Row):
    table_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    table_fqn: str = Field(min_length=1)
    entity_type: str = "PERSON"
    entity_key_expr: str = Field(min_length=1)
    watermark_column: str | None = None
    watermark_lookback_minutes: int = Field(0, ge=0)
    is_active: bool = True
    # A row for which this expression is true is deleted at the source (soft delete):
    # runs remove its entity. NULL counts as not deleted.
    deleted_flag_expr: str | None = None
    # When INCR compares the stored keys of this source with the source's current keys
    # and removes those gone (hard deletes): never | every_run | an interval (30m, 6h, 7d).
    reconcile_deletes: str = Field("never", pattern=RECONCILE_PATTERN)


class Source(_Row):
    table_id: str
    source_name: str | None = None
    trust_rank: int = 100  # lower = more trusted
    is_active: bool = True


class Rule(_Row):
    rule_id: str = Field(min_length=1, max_length=64)
    rule_name: str | None = None
    is_active: bool = True
    priority: int = 100
    identifier_type: str = Field(min_length=1, max_length=64)
    canonicalize: Canonicalize = Canonicalize.NONE
    allow_hashed: bool = True
    require_non_null: bool = True
    max_group_size: int = Field(10000, ge=2)


class IdentifierMapping(_Row):
    table_id: str
    identifier_type: str
    identifier_value_expr: str = Field(min_length=1)
    is_hashed: bool = False


class IdentifierExclusion(_Row):
    identifier_type: str
    identifier_value_pattern: str = Field(min_length=1)
    match_type: MatchType = MatchType.EXACT
    reason: str | None = None
    created_at: datetime | None = None
    created_by: str | None = None


class AttributeMapping(_Row):
    table_id: str
    attribute_name: str = Field(min_length=1, max_length=128)
    attribute_expr: str = Field(min_length=1)


class SurvivorshipRule(_Row):
    attribute_name: str
    strategy: Strategy = Strategy.RECENCY
    source_priority_list: str | None = None  # comma-separated table_ids, most trusted first
    recency_field: str | None = None  # an attribute name; default: the record's watermark


class IdrConfig(_Row):
    """The whole configuration document."""

    sources: list[SourceTable] = Field(default_factory=list)
    source_trust: list[Source] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    identifier_mappings: list[IdentifierMapping] = Field(default_factory=list)
    exclusions: list[IdentifierExclusion] = Field(default_factory=list)
    attribute_mappings: list[AttributeMapping] = Field(default_factory=list)
    survivorship_rules: list[SurvivorshipRule] = Field(default_factory=list)
    settings: dict[str, str] = Field(default_factory=dict)
