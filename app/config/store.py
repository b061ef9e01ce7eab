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
        fields = set(model.model_fields)
        # SELECT * keeps this to one query per table; columns users added are ignored.
        rows = adapter.fetch_dicts(f"SELECT * FROM {adapter.table('idr_meta', table)}")
        doc[key] = [{k: v for k, v in r.items() if v is not None and k.lower() in fields} for r in rows]
    settings = adapter.fetchall("SELECT config_key, config_value FROM idr_meta.config")
    doc["settings"] = {k: v for k, v in settings if v is not None}
    return IdrConfig.model_validate(doc)
