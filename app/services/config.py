"""Configuration over HTTP: per-section CRUD and whole-document PUT.

Every write builds the whole document and goes through ``app.config.apply.apply_config``,
which validates with ``app.config.validate`` (the same path as ``idr config apply``) and
replaces ``idr_meta`` in one transaction. Item ids are the natural key where it is one
field, else a short hash of the key fields (values may hold any characters).
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Callable, Mapping
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
from app.core.errors import ConfigError, ConflictError, NotFoundError, PreconditionFailedError
from app.platforms.base import Adapter
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
        return _read(a)


def _read(a: Adapter) -> dict[str, Any]:
    doc = show_config(a).model_dump(mode="json")
    for x in doc.get("exclusions", []):
        # Warehouse timestamps are naive UTC; say so, as RFC 3339 date-times must.
        ts = x.get("created_at")
        if isinstance(ts, str) and not ts.endswith("Z") and "+" not in ts[10:]:
            x["created_at"] = ts + "Z"
    return doc


def etag(value: Any) -> str:
    """A strong entity tag of a resource's JSON form: it changes when, and only when, the
    resource does (the same content has the same tag on every replica)."""
    raw = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return '"' + hashlib.sha256(raw.encode()).hexdigest()[:32] + '"'


def check_if_match(if_match: str | None, current: Any, what: str) -> None:
    """RFC 9110 If-Match: '*' or one of the listed tags must match ``current`` (None: the
    resource does not exist). No header: the write goes ahead (clients from before ETags)."""
    if if_match is None:
        return
    tags = {t.strip().removeprefix("W/") for t in if_match.split(",") if t.strip()}
    if current is not None and ("*" in tags or etag(current) in tags):
        return
    now = f"its current ETag is {etag(current)}" if current is not None else "it does not exist"
    raise PreconditionFailedError(
        f"If-Match {if_match.strip()} does not match the {what}: {now}; nothing was written "
        "(GET it again, reapply your change, and retry)",
        field="If-Match",
    )


class _Changed(Exception):
    """The configuration changed between our read and our transaction: start again."""


# A write that keeps meeting another one gives up with 409 rather than spin.
WRITE_ATTEMPTS = 8


def _is_write_conflict(e: BaseException) -> bool:
    """Two transactions wrote the same rows (or views) and the warehouse refused one (DuckDB's
    'Conflict on tuple ...' and catalog 'write-write conflict', BigQuery's 'concurrent update')."""
    text = str(e).lower()
    return any(m in text for m in ("conflict on", "write-write conflict", "concurrent update", "transaction conflict"))


def _lock_config(a: Adapter) -> None:
    # A write to every settings row (init makes them; applies only upsert them): two config
    # writers' transactions touch the same rows, so the warehouse orders them (a lock wait
    # on Snowflake, a refused commit on DuckDB and BigQuery), whichever API replica runs them.
    a.execute("UPDATE idr_meta.config SET config_value = config_value WHERE config_key IS NOT NULL")


def _edit(
    rt: Runtime,
    target: str,
    change: Callable[[dict[str, Any]], tuple[Any, Section | None, int | None]],
    *,
    actor: str,
    key_id: str | None,
    action: str,
    subject: str | None,
    allow_empty: bool = True,
):
    """Read the configuration, ``change`` it (raising 404/409/412 as it finds), apply the
    result; all of it again if another writer (this process or another replica) changed the
    configuration meanwhile, which is checked inside the applying transaction. The audit
    event (app.services.audit) records the change that was committed. Returns the summary
    and the configuration as written (as GET shows it, so its ETags are GET's)."""
    from app.services import audit

    with rt.config_lock, warehouse(rt.settings, target) as a:
        for attempt in range(WRITE_ATTEMPTS):
            before = _read(a)
            base = etag(before)
            doc, section, index = change(copy.deepcopy(before))

            def guard(conn: Adapter, base: str = base) -> None:
                if conn.reads_in_transaction:
                    _lock_config(conn)
                if etag(_read(conn)) != base:
                    raise _Changed
                if not conn.reads_in_transaction:
                    _lock_config(conn)

            try:
                summary = apply_config(a, doc, actor=actor, allow_empty=allow_empty, guard=guard)
            except ConfigError as e:
                raise _remap(e, section, index) if section is not None else e from None
            except _Changed:
                continue
            except Exception as e:
                if not _is_write_conflict(e):
                    raise
                time.sleep(0.01 * (attempt + 1))
                continue
            after = _read(a)
            with rt.session() as s:
                audit.record(
                    s, kind="config", action=action, actor=actor, key_id=key_id, target=target, subject=subject,
                    diff=audit.config_diff(before, after),
                )  # fmt: skip
            return summary, after
    raise ConflictError(
        f"the configuration of {target!r} kept changing under this write ({WRITE_ATTEMPTS} tries); retry"
    )


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


def _find(sec: Section, rows: list[dict[str, Any]], item_id: str) -> int | None:
    return next((i for i, r in enumerate(rows) if sec.item_id(r) == item_id), None)


def _item_at(sec: Section, doc: dict[str, Any], item_id: str) -> dict[str, Any] | None:
    rows = doc[sec.name]
    idx = _find(sec, rows, item_id)
    return None if idx is None else _with_id(sec, rows[idx])


def section_of(doc: dict[str, Any], slug: str) -> dict[str, Any]:
    """A section's list resource (GET /v1/config/{slug}), as its ETag is computed."""
    sec = SECTIONS[slug]
    return {"items": [_with_id(sec, r) for r in doc[sec.name]]}


def create_item(
    rt: Runtime, target: str, slug: str, body: dict[str, Any], actor: str, key_id: str | None = None,
    if_match: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    sec = SECTIONS[slug]
    new_id = sec.item_id(_normalise(sec, body))

    def change(doc: dict[str, Any]):
        check_if_match(if_match, section_of(doc, slug), f"{slug} list")
        rows = doc[sec.name]
        if any(sec.item_id(r) == new_id for r in rows):
            key = ", ".join(f"{k}={body.get(k)!r}" for k in sec.key)
            raise ConflictError(f"{slug} item with {key} already exists (id {new_id})", field=sec.key[0])
        rows.append(body)
        return doc, sec, len(rows) - 1

    _, after = _edit(rt, target, change, actor=actor, key_id=key_id, action=f"{slug}.create", subject=new_id)
    item = _item_at(sec, after, new_id)
    assert item is not None  # just written, in the same connection
    return item


def replace_item(
    rt: Runtime, target: str, slug: str, item_id: str, body: dict[str, Any], actor: str, key_id: str | None = None,
    if_match: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    sec = SECTIONS[slug]
    if sec.natural:
        key = sec.key[0]
        if key in body and str(body[key]) != item_id:
            raise ConfigError(f"{key} in the body must match the URL ({item_id!r})", field=key)
        body = {**body, key: body.get(key, item_id)}

    def change(doc: dict[str, Any]):
        check_if_match(if_match, _item_at(sec, doc, item_id), f"{slug} item {item_id!r}")
        rows = doc[sec.name]
        idx = _find(sec, rows, item_id)
        if idx is None:
            raise NotFoundError(f"{slug} item {item_id!r} not found", field="id")
        rows[idx] = body
        return doc, sec, idx

    _, after = _edit(rt, target, change, actor=actor, key_id=key_id, action=f"{slug}.replace", subject=item_id)
    # The id of a hashed key changes with the key's fields.
    item = _item_at(sec, after, sec.item_id(_normalise(sec, body)))
    assert item is not None  # just written, in the same connection
    return item


def delete_item(
    rt: Runtime, target: str, slug: str, item_id: str, actor: str, key_id: str | None = None,
    if_match: str | None = None,
) -> None:  # fmt: skip
    sec = SECTIONS[slug]

    def change(doc: dict[str, Any]):
        check_if_match(if_match, _item_at(sec, doc, item_id), f"{slug} item {item_id!r}")
        rows = doc[sec.name]
        idx = _find(sec, rows, item_id)
        if idx is None:
            raise NotFoundError(f"{slug} item {item_id!r} not found", field="id")
        del rows[idx]
        return doc, None, None

    try:
        _edit(rt, target, change, actor=actor, key_id=key_id, action=f"{slug}.delete", subject=item_id)
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
    rt: Runtime, target: str, doc: Any, actor: str, allow_empty: bool = False, key_id: str | None = None,
    if_match: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    def change(before: dict[str, Any]):
        check_if_match(if_match, before, "configuration")
        return doc, None, None

    summary, after = _edit(
        rt, target, change, actor=actor, key_id=key_id, action="config.replace", subject=None, allow_empty=allow_empty
    )
    return {
        "counts": summary.counts,
        "settings_changed": summary.settings_changed,
        "config": summary.config.model_dump(mode="json") if summary.config else {},
        "etag": etag(after),
    }


def list_settings(rt: Runtime, target: str) -> dict[str, str]:
    return dict(sorted(_doc(rt, target)["settings"].items()))


def get_setting(rt: Runtime, target: str, key: str) -> dict[str, str]:
    settings = list_settings(rt, target)
    if key not in settings:
        raise NotFoundError(f"setting {key!r} not found; known: {', '.join(sorted(SETTINGS_MIN))}", field="key")
    return {"key": key, "value": settings[key]}


def setting_of(doc: dict[str, Any], key: str) -> dict[str, str] | None:
    settings = doc["settings"]
    return {"key": key, "value": settings[key]} if key in settings else None


def put_setting(
    rt: Runtime, target: str, key: str, value: Any, actor: str, key_id: str | None = None,
    if_match: str | None = None,
) -> dict[str, str]:  # fmt: skip
    def change(doc: dict[str, Any]):
        check_if_match(if_match, setting_of(doc, key), f"setting {key!r}")
        doc["settings"] = {**doc["settings"], key: value}
        return doc, None, None

    try:
        _edit(rt, target, change, actor=actor, key_id=key_id, action="settings.update", subject=key)
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
