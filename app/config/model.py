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


# Bounds every platform's columns hold (32-bit INTEGER), and lengths no real value comes near
# (a 10 MB exclusion pattern was once accepted and served back).
INT_MAX = 2**31 - 1
NAME_MAX = 256
EXPR_MAX = 4000
TEXT_MAX = 2000


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False)


class SourceTable(_Row):
    table_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    table_fqn: str = Field(min_length=1, max_length=512)
    entity_type: str = Field("PERSON", max_length=64)
    entity_key_expr: str = Field(min_length=1, max_length=EXPR_MAX)
    watermark_column: str | None = Field(None, max_length=NAME_MAX)
    watermark_lookback_minutes: int = Field(0, ge=0, le=INT_MAX)
    is_active: bool = True
    # A row for which this expression is true is deleted at the source (soft delete):
    # runs remove its entity. NULL counts as not deleted.
    deleted_flag_expr: str | None = Field(None, max_length=EXPR_MAX)
    # When INCR compares the stored keys of this source with the source's current keys
    # and removes those gone (hard deletes): never | every_run | an interval (30m, 6h, 7d).
    reconcile_deletes: str = Field("never", pattern=RECONCILE_PATTERN)


class Source(_Row):
    table_id: str = Field(max_length=64)
    source_name: str | None = Field(None, max_length=NAME_MAX)
    trust_rank: int = Field(100, ge=-INT_MAX, le=INT_MAX)  # lower = more trusted
    is_active: bool = True


class Rule(_Row):
    rule_id: str = Field(min_length=1, max_length=64)
    rule_name: str | None = Field(None, max_length=NAME_MAX)
    is_active: bool = True
    priority: int = Field(100, ge=-INT_MAX, le=INT_MAX)
    identifier_type: str = Field(min_length=1, max_length=64)
    canonicalize: Canonicalize = Canonicalize.NONE
    allow_hashed: bool = True
    require_non_null: bool = True
    max_group_size: int = Field(10000, ge=2, le=INT_MAX)


class IdentifierMapping(_Row):
    table_id: str = Field(max_length=64)
    identifier_type: str = Field(max_length=64)
    identifier_value_expr: str = Field(min_length=1, max_length=EXPR_MAX)
    is_hashed: bool = False


class IdentifierExclusion(_Row):
    identifier_type: str = Field(max_length=64)
    identifier_value_pattern: str = Field(min_length=1, max_length=EXPR_MAX)
    match_type: MatchType = MatchType.EXACT
    reason: str | None = Field(None, max_length=TEXT_MAX)
    created_at: datetime | None = None
    created_by: str | None = Field(None, max_length=NAME_MAX)


class AttributeMapping(_Row):
    table_id: str = Field(max_length=64)
    attribute_name: str = Field(min_length=1, max_length=128)
    attribute_expr: str = Field(min_length=1, max_length=EXPR_MAX)


class SurvivorshipRule(_Row):
    attribute_name: str = Field(max_length=128)
    strategy: Strategy = Strategy.RECENCY
    # comma-separated table_ids, most trusted first
    source_priority_list: str | None = Field(None, max_length=TEXT_MAX)
    recency_field: str | None = Field(None, max_length=128)  # an attribute name; default: the record's watermark


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
