"""Reads the active configuration back from ``idr_meta`` (the pipeline's view)."""

from __future__ import annotations

from app.config.model import (
    AttributeMapping,
    IdentifierExclusion,
    IdentifierMapping,
    IdrConfig,
    Rule,
    Source,
    SourceTable,
    SurvivorshipRule,
)
from app.platforms.base import Adapter

TABLES: dict[str, tuple[str, type]] = {
    "sources": ("source_table", SourceTable),
    "source_trust": ("source", Source),
    "rules": ("rule", Rule),
    "identifier_mappings": ("identifier_mapping", IdentifierMapping),
    "exclusions": ("identifier_exclusion", IdentifierExclusion),
    "attribute_mappings": ("entity_attribute_mapping", AttributeMapping),
    "survivorship_rules": ("survivorship_rule", SurvivorshipRule),
}


def read_config(adapter: Adapter) -> IdrConfig:
    doc: dict[str, object] = {}
    for key, (table, model) in TABLES.items():
        fields = list(model.model_fields)
        have = set(adapter.columns("idr_meta", table))
        cols = [f for f in fields if f in have]
        sel = ", ".join(adapter.ident(c) for c in cols)
        rows = adapter.fetch_dicts(f"SELECT {sel} FROM {adapter.table('idr_meta', table)}")
        doc[key] = [{k: v for k, v in r.items() if v is not None} for r in rows]
    settings = adapter.fetchall("SELECT config_key, config_value FROM idr_meta.config")
    doc["settings"] = {k: v for k, v in settings if v is not None}
    return IdrConfig.model_validate(doc)
