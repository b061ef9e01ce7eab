"""Writes a validated configuration document into ``idr_meta``, all or nothing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from app.config.model import IdentifierExclusion, IdrConfig
from app.config.store import TABLES, read_config
from app.config.validate import validate_config
from app.core.errors import ConfigError
from app.platforms.base import Adapter
from app.schema import DEFAULT_CONFIG


@dataclass
class ApplySummary:
    """What ``apply_config`` wrote: rows per section and which settings changed."""

    counts: dict[str, int] = field(default_factory=dict)
    settings_changed: list[str] = field(default_factory=list)
    config: IdrConfig | None = None  # as written (exclusion audit fields filled in)


def _row_params(row: BaseModel, cols: list[str]) -> dict[str, Any]:
    data = row.model_dump(mode="python")
    # Enum members -> their string value; everything else binds as is.
    return {c: (data[c].value if hasattr(data[c], "value") else data[c]) for c in cols}


def _fill_exclusion_audit(
    adapter: Adapter, exclusions: list[IdentifierExclusion], actor: str
) -> list[IdentifierExclusion]:
    """Keep created_at/created_by of exclusions that already exist; stamp new ones.

    Re-applying the same YAML must not make every exclusion look newly created.
    """
    existing = {
        (r["identifier_type"], r["identifier_value_pattern"], r["match_type"]): r
        for r in adapter.fetch_dicts(
            "SELECT identifier_type, identifier_value_pattern, match_type, created_at, created_by "
            "FROM idr_meta.identifier_exclusion"
        )
    }
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    out = []
    for x in exclusions:
        old = existing.get((x.identifier_type, x.identifier_value_pattern, x.match_type.value), {})
        out.append(
            x.model_copy(
                update={
                    "created_at": x.created_at or old.get("created_at") or now,
                    "created_by": x.created_by or old.get("created_by") or actor,
                }
            )
        )
    return out


# What a run cannot do without: a whole document leaving one of these empty is refused
# unless the caller says so (a stray `sources: []` would wipe a working configuration).
REQUIRED_SECTIONS = ("sources", "rules", "identifier_mappings")


def apply_config(
    adapter: Adapter,
    doc: Mapping[str, Any] | IdrConfig,
    *,
    actor: str = "cli",
    allow_empty: bool = True,
    guard: Callable[[Adapter], None] | None = None,
) -> ApplySummary:
    """Validate ``doc`` against the warehouse, then replace all config tables in one transaction.

    Nothing is written if validation fails (``ConfigError`` lists every problem) or if
    any statement fails. Settings are upserted; keys the document omits are kept.
    ``allow_empty=False`` (whole-document applies: the CLI, PUT /v1/config) refuses a
    document without sources, rules or identifier mappings. ``guard`` runs first inside the
    transaction (after the stored settings are read); raising there writes nothing
    (app.services.config checks there that nobody changed the configuration meanwhile).
    """
    cfg = validate_config(doc, adapter)
    if not allow_empty:
        empty = [k for k in REQUIRED_SECTIONS if not getattr(cfg, k)]
        if empty:
            raise ConfigError(
                f"the configuration has no {', '.join(empty)}: runs would fail; nothing was written "
                "(to apply it anyway: --allow-empty, or allow_empty=true over HTTP)",
                field=empty[0],
            )
    # Columns an older warehouse lacks (added by `idr init`) are written only when set.
    present = {key: {c.lower() for c in adapter.columns("idr_meta", table)} for key, (table, _) in TABLES.items()}
    for key, (_, model) in TABLES.items():
        for c in model.model_fields:
            if (
                present[key]
                and c not in present[key]
                and any(getattr(r, c) != model.model_fields[c].default for r in getattr(cfg, key))
            ):
                raise ConfigError(
                    f"{key}[].{c}: this warehouse's idr schema predates it; run `idr init` first", field=f"{key}.{c}"
                )
    summary = ApplySummary()
    # The golden columns and views follow the configuration: DDL, which the adapter runs
    # after the transaction or, where DDL is transactional (DuckDB), inside it.
    with adapter.transaction_then(lambda: _sync_golden_views(adapter, cfg)):
        # Read before anything is written (BigQuery's transaction script cannot read its writes).
        stored = {str(k): v for k, v in adapter.fetchall("SELECT config_key, config_value FROM idr_meta.config")}
        if guard is not None:
            guard(adapter)
        cfg = cfg.model_copy(update={"exclusions": _fill_exclusion_audit(adapter, cfg.exclusions, actor)})
        for key, (table, model) in TABLES.items():
            cols = [c for c in model.model_fields if not present[key] or c in present[key]]
            target = adapter.table("idr_meta", table)
            adapter.execute(f"DELETE FROM {target}")
            rows = getattr(cfg, key)
            if rows:
                col_sql = ", ".join(adapter.ident(c) for c in cols)
                # Parameter names are the model's own field names (fixed identifiers, not user input).
                val_sql = ", ".join(f"${c}" for c in cols)
                adapter.executemany(
                    f"INSERT INTO {target} ({col_sql}) VALUES ({val_sql})",
                    [_row_params(r, cols) for r in rows],
                )
            summary.counts[key] = len(rows)
        for k, v in cfg.settings.items():
            if _upsert_setting(adapter, k, v, actor, stored):
                summary.settings_changed.append(k)
        summary.counts["settings"] = len(cfg.settings)
    summary.config = cfg
    return summary


def _sync_golden_views(adapter: Adapter, cfg: IdrConfig) -> None:
    """The golden profile's columns and views follow the configured attributes (a state
    `idr init` has not created or upgraded yet gets them from `idr init`)."""
    from app.schema.golden import sync_golden
    from app.schema.upgrade import v1_tables

    if adapter.table_exists("idr_state", "golden") and not v1_tables(adapter):
        sync_golden(adapter, cfg)


def _upsert_setting(adapter: Adapter, key: str, value: str, actor: str, stored: Mapping[str, Any]) -> bool:
    """Insert or update one idr_meta.config row (``stored``: the rows before); True if it changed.

    UPDATE-then-INSERT (not MERGE / ON CONFLICT) so the SQL is portable to every platform.
    """
    description = DEFAULT_CONFIG.get(key, (None, None))[1]
    params = {"k": key, "v": value, "by": actor}
    if key in stored and stored[key] == value:
        return False  # unchanged: keep updated_at/updated_by meaningful
    if key in stored:
        adapter.execute(
            "UPDATE idr_meta.config SET config_value = $v, updated_at = CURRENT_TIMESTAMP, updated_by = $by "
            "WHERE config_key = $k",
            params,
        )
    else:
        adapter.execute(
            "INSERT INTO idr_meta.config (config_key, config_value, description, updated_at, updated_by) "
            "VALUES ($k, $v, $d, CURRENT_TIMESTAMP, $by)",
            params | {"d": description},
        )
    return True


def show_config(adapter: Adapter) -> IdrConfig:
    """The configuration currently in ``idr_meta``."""
    return read_config(adapter)
