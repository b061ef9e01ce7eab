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
    """The configuration in one read (on a warehouse every query is a round trip); an
    install whose tables lack a column of this version (until `idr init`) is read table
    by table instead."""
    try:
        doc = _read_in_one_query(adapter)
    except Exception:  # noqa: BLE001 - the per-table read reports a real problem itself
        return _read_per_table(adapter)
    return IdrConfig.model_validate(doc)


def _read_in_one_query(adapter: Adapter) -> dict[str, object]:
    """Every table as text columns of one UNION ALL (pydantic parses the text back)."""
    from app.schema import table_columns

    declared = table_columns()
    wanted: dict[str, list[str]] = {}
    for key, (table, model) in TABLES.items():
        fields = set(model.model_fields)
        wanted[key] = [c.name for c in declared[("idr_meta", table)] if c.name.lower() in fields]
    wanted["settings"] = ["config_key", "config_value"]
    width = max(len(cols) for cols in wanted.values())
    arms = []
    for i, (key, cols) in enumerate(wanted.items()):
        table = "config" if key == "settings" else TABLES[key][0]
        values = [f"CAST({adapter.ident(c)} AS VARCHAR)" for c in cols]
        values += ["CAST(NULL AS VARCHAR)"] * (width - len(cols))
        # Named columns: some drivers drop a column whose name repeats another's.
        values = [f"{v} AS c{j}" for j, v in enumerate(values)]
        arms.append(f"SELECT {i} AS k, {', '.join(values)} FROM {adapter.table('idr_meta', table)}")
    rows = adapter.fetchall(" UNION ALL ".join(arms))
    keys = list(wanted)
    doc: dict[str, list[dict[str, str]]] = {k: [] for k in keys}
    for k, *values in rows:
        key = keys[int(k)]
        doc[key].append({c: v for c, v in zip(wanted[key], values, strict=False) if v is not None})
    out: dict[str, object] = {k: v for k, v in doc.items() if k != "settings"}
    out["settings"] = {r["config_key"]: r["config_value"] for r in doc["settings"] if "config_value" in r}
    return out


def _read_per_table(adapter: Adapter) -> IdrConfig:
    doc: dict[str, object] = {}
    for key, (table, model) in TABLES.items():
        fields = set(model.model_fields)
        # SELECT * keeps this to one query per table; columns users added are ignored.
        rows = adapter.fetch_dicts(f"SELECT * FROM {adapter.table('idr_meta', table)}")
        doc[key] = [{k: v for k, v in r.items() if v is not None and k.lower() in fields} for r in rows]
    settings = adapter.fetchall("SELECT config_key, config_value FROM idr_meta.config")
    doc["settings"] = {k: v for k, v in settings if v is not None}
    return IdrConfig.model_validate(doc)
