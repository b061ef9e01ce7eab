"""Configuration over HTTP: per-section CRUD and whole-document PUT.

Every write builds the whole document and goes through ``app.config.apply.apply_config``,
which validates with ``app.config.validate`` (the same path as ``idr config apply``) and
replaces ``idr_meta`` in one transaction. Item ids are the natural key where it is one
field, else a short hash of the key fields (values may hold any characters).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from app.config.apply import apply_config, show_config
from app.config.model import (
    AttributeMapping,
    IdentifierExclusion,
    IdentifierMapping,
    Rule,
    Source,
    SourceTable,
    SurvivorshipRule,
)
from app.config.validate import SETTINGS_MIN
from app.core.errors import ConfigError, ConflictError, NotFoundError
from app.services.runtime import Runtime
from app.services.warehouse import warehouse


@dataclass(frozen=True)
class Section:
    name: str  # key in the configuration document
    slug: str  # URL segment
    model: type[BaseModel]
    key: tuple[str, ...]

    @property
    def natural(self) -> bool:
        return len(self.key) == 1

    def item_id(self, row: Mapping[str, Any]) -> str:
        if self.natural:
            return str(row.get(self.key[0]))
        raw = json.dumps([str(row.get(k) if row.get(k) is not None else "") for k in self.key])
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


SECTIONS: dict[str, Section] = {
    s.slug: s
    for s in (
        Section("sources", "sources", SourceTable, ("table_id",)),
        Section("source_trust", "source-trust", Source, ("table_id",)),
        Section("rules", "rules", Rule, ("rule_id",)),
        Section(
            "identifier_mappings",
            "identifier-mappings",
            IdentifierMapping,
            ("table_id", "identifier_type", "identifier_value_expr"),
        ),
        Section(
            "exclusions",
            "exclusions",
            IdentifierExclusion,
            ("identifier_type", "identifier_value_pattern", "match_type"),
        ),
        Section("attribute_mappings", "attribute-mappings", AttributeMapping, ("table_id", "attribute_name")),
        Section("survivorship_rules", "survivorship-rules", SurvivorshipRule, ("attribute_name",)),
    )
}


def _doc(rt: Runtime, target: str) -> dict[str, Any]:
    with warehouse(rt.settings, target) as a:
        doc = show_config(a).model_dump(mode="json")
    for x in doc.get("exclusions", []):
        # Warehouse timestamps are naive UTC; say so, as RFC 3339 date-times must.
        ts = x.get("created_at")
        if isinstance(ts, str) and not ts.endswith("Z") and "+" not in ts[10:]:
            x["created_at"] = ts + "Z"
    return doc


def _with_id(section: Section, row: dict[str, Any]) -> dict[str, Any]:
    return {"id": section.item_id(row), **row}


def _normalise(section: Section, row: Mapping[str, Any]) -> dict[str, Any]:
    # Defaults filled in, so ids of stored rows and of request bodies agree (match_type...).
    try:
        return section.model.model_validate(row).model_dump(mode="json")
    except Exception:
        return dict(row)


def list_items(rt: Runtime, target: str, slug: str) -> list[dict[str, Any]]:
    sec = SECTIONS[slug]
    return [_with_id(sec, r) for r in _doc(rt, target)[sec.name]]


def get_item(rt: Runtime, target: str, slug: str, item_id: str) -> dict[str, Any]:
    for item in list_items(rt, target, slug):
        if item["id"] == item_id:
            return item
    raise NotFoundError(f"{slug} item {item_id!r} not found", field="id")


def _remap(e: ConfigError, section: Section, index: int | None) -> ConfigError:
    """Errors about the item in the request name its own field ('canonicalize'); others keep
    their document path (``identifier_mappings[2].table_id``)."""
    if index is None:
        return e
    prefix = f"{section.name}[{index}]"
    errors = []
    for item in e.errors:
        f = item.get("field") or ""
        if f == prefix:
            f = ""
        elif f.startswith(prefix + "."):
            f = f[len(prefix) + 1 :]
        errors.append({"field": f, "message": item.get("message", "")})
    first = errors[0] if errors else {"field": "", "message": e.message}
    head = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ConfigError(f"invalid {section.slug} item: {head}{more}", field=first["field"] or None, errors=errors)


def _audited_apply(
    rt: Runtime, target: str, a: Any, doc: Any, actor: str, key_id: str | None, action: str, subject: str | None,
    **kw: Any,
):
    """apply_config, then the audit event with what changed (app.services.audit)."""
    from app.services import audit

    before = show_config(a).model_dump(mode="json")
    summary = apply_config(a, doc, actor=actor, **kw)
    diff = audit.config_diff(before, show_config(a).model_dump(mode="json"))
    with rt.session() as s:
        audit.record(
            s, kind="config", action=action, actor=actor, key_id=key_id, target=target, subject=subject, diff=diff
        )
    return summary


def _write(
    rt: Runtime, target: str, doc: dict[str, Any], actor: str, section: Section | None, index: int | None,
    key_id: str | None = None, action: str = "config.item", subject: str | None = None,
):  # fmt: skip
    with warehouse(rt.settings, target) as a:
        try:
            return _audited_apply(rt, target, a, doc, actor, key_id, action, subject)
        except ConfigError as e:
            raise _remap(e, section, index) if section is not None else e from None


def create_item(
    rt: Runtime, target: str, slug: str, body: dict[str, Any], actor: str, key_id: str | None = None
) -> dict[str, Any]:
    sec = SECTIONS[slug]
    with rt.config_lock:
        doc = _doc(rt, target)
        rows = doc[sec.name]
        new_id = sec.item_id(_normalise(sec, body))
        if any(sec.item_id(r) == new_id for r in rows):
            key = ", ".join(f"{k}={body.get(k)!r}" for k in sec.key)
            raise ConflictError(f"{slug} item with {key} already exists (id {new_id})", field=sec.key[0])
        rows.append(body)
        summary = _write(rt, target, doc, actor, sec, len(rows) - 1, key_id, f"{slug}.create", new_id)
    return _with_id(sec, getattr(summary.config, sec.name)[-1].model_dump(mode="json"))


def replace_item(
    rt: Runtime, target: str, slug: str, item_id: str, body: dict[str, Any], actor: str, key_id: str | None = None
) -> dict[str, Any]:
    sec = SECTIONS[slug]
    if sec.natural:
        key = sec.key[0]
        if key in body and str(body[key]) != item_id:
            raise ConfigError(f"{key} in the body must match the URL ({item_id!r})", field=key)
        body = {**body, key: body.get(key, item_id)}
    with rt.config_lock:
        doc = _doc(rt, target)
        rows = doc[sec.name]
        idx = next((i for i, r in enumerate(rows) if sec.item_id(r) == item_id), None)
        if idx is None:
            raise NotFoundError(f"{slug} item {item_id!r} not found", field="id")
        rows[idx] = body
        summary = _write(rt, target, doc, actor, sec, idx, key_id, f"{slug}.replace", item_id)
    return _with_id(sec, getattr(summary.config, sec.name)[idx].model_dump(mode="json"))


def delete_item(rt: Runtime, target: str, slug: str, item_id: str, actor: str, key_id: str | None = None) -> None:
    sec = SECTIONS[slug]
    with rt.config_lock:
        doc = _doc(rt, target)
        rows = doc[sec.name]
        idx = next((i for i, r in enumerate(rows) if sec.item_id(r) == item_id), None)
        if idx is None:
            raise NotFoundError(f"{slug} item {item_id!r} not found", field="id")
        del rows[idx]
        try:
            _write(rt, target, doc, actor, None, None, key_id, f"{slug}.delete", item_id)
        except ConfigError as e:
            # Other items still refer to this one: a conflict with the current state.
            err = ConflictError(
                f"cannot delete {slug} item {item_id}: {e.message}", field=e.errors[0]["field"] if e.errors else None
            )
            err.details = e.errors
            raise err from None


def get_document(rt: Runtime, target: str) -> dict[str, Any]:
    return _doc(rt, target)


def put_document(
    rt: Runtime, target: str, doc: Any, actor: str, allow_empty: bool = False, key_id: str | None = None
) -> dict[str, Any]:
    with rt.config_lock, warehouse(rt.settings, target) as a:
        summary = _audited_apply(rt, target, a, doc, actor, key_id, "config.replace", None, allow_empty=allow_empty)
    return {
        "counts": summary.counts,
        "settings_changed": summary.settings_changed,
        "config": summary.config.model_dump(mode="json") if summary.config else {},
    }


def list_settings(rt: Runtime, target: str) -> dict[str, str]:
    return dict(sorted(_doc(rt, target)["settings"].items()))


def get_setting(rt: Runtime, target: str, key: str) -> dict[str, str]:
    settings = list_settings(rt, target)
    if key not in settings:
        raise NotFoundError(f"setting {key!r} not found; known: {', '.join(sorted(SETTINGS_MIN))}", field="key")
    return {"key": key, "value": settings[key]}


def put_setting(
    rt: Runtime, target: str, key: str, value: Any, actor: str, key_id: str | None = None
) -> dict[str, str]:
    with rt.config_lock:
        doc = _doc(rt, target)
        doc["settings"] = {**doc["settings"], key: value}
        try:
            with warehouse(rt.settings, target) as a:
                _audited_apply(rt, target, a, doc, actor, key_id, "settings.update", key)
        except ConfigError as e:
            errors = [
                {
                    "field": "value" if (x.get("field") or "").startswith("settings") else x.get("field", ""),
                    "message": x.get("message", ""),
                }
                for x in e.errors
            ]
            raise ConfigError(e.message, field=errors[0]["field"] if errors else "value", errors=errors) from None
    return get_setting(rt, target, key)
