"""Erasure requests ("forget this person"): record one, read its state.

A request names entity keys or one identifier (type + value). What is stored is only a
salted SHA-256 of each (idr_meta.erasure_suppression) and an audit row without values
(idr_meta.erasure_request); the next real run removes every matching record from the
state and marks the request applied (app.pipeline.erasure), and every later run keeps
matching source rows out.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime
from typing import Any

from app.config.model import Canonicalize
from app.config.store import read_config
from app.core.errors import ConfigError, NotFoundError
from app.core.vocabulary import ErasureStatus
from app.pipeline.erasure import IDENTIFIER, KEY, SALT_KEY, read_salt
from app.platforms.base import Adapter

MAX_KEYS = 1000
_ID = re.compile(r"^er_[0-9a-f]{20}$")


def canonical(value: str, mode: Canonicalize) -> str:
    """The value as the pipeline normalizes it (app.pipeline.extract.canonical_sql)."""
    match mode:
        case Canonicalize.LOWERCASE:
            return value.lower()
        case Canonicalize.UPPERCASE:
            return value.upper()
        case Canonicalize.TRIM:
            return value.strip(" ")
        case Canonicalize.EMAIL:
            return value.strip(" ").lower()
        case Canonicalize.PHONE:
            return re.sub(r"[^0-9]", "", value)
    return value


def _salt(a: Adapter) -> str:
    """The warehouse's erasure salt, made on first use."""
    salt = read_salt(a)
    if salt is None:
        a.execute(
            "INSERT INTO idr_state.schema_info (info_key, info_value) VALUES ($k, $v)",
            {"k": SALT_KEY, "v": secrets.token_hex(32)},
        )
        salt = read_salt(a)
    return str(salt)


def digest(salt: str, text: str) -> str:
    return hashlib.sha256((salt + text).encode()).hexdigest()


def request(
    a: Adapter,
    *,
    entity_keys: list[str] | None = None,
    identifier_type: str | None = None,
    identifier_value: str | None = None,
    requested_by: str,
) -> dict[str, Any]:
    """Record an erasure; raises ConfigError (422) naming the field for bad input."""
    keys = [k for k in (entity_keys or [])]
    if bool(keys) == (identifier_type is not None or identifier_value is not None):
        raise ConfigError("give either entity_keys or an identifier (type and value), not both", field="entity_keys")
    if keys:
        if len(keys) > MAX_KEYS:
            raise ConfigError(f"at most {MAX_KEYS} entity keys per request", field="entity_keys")
        bad = [i for i, k in enumerate(keys) if not isinstance(k, str) or ":" not in k or not k.strip()]
        if bad:
            raise ConfigError(
                "an entity key is '<table_id>:<key>', as the membership shows it", field=f"entity_keys[{bad[0]}]"
            )
        kind, itype, texts = KEY, None, sorted(set(keys))
    else:
        rules = {r.identifier_type: r for r in read_config(a).rules if r.is_active}
        if identifier_type not in rules:
            raise ConfigError(
                f"identifier type {identifier_type!r} has no active rule; "
                f"known: {', '.join(sorted(rules)) or '(none)'}",
                field="identifier.type",
            )
        norm = canonical(identifier_value or "", rules[identifier_type].canonicalize)
        if not norm:
            raise ConfigError("the identifier value is empty once normalized", field="identifier.value")
        kind, itype, texts = IDENTIFIER, identifier_type, [f"{identifier_type}:{norm}"]
    erasure_id = "er_" + secrets.token_hex(10)
    now = datetime.now(UTC).replace(tzinfo=None)
    salt = _salt(a)  # before the transaction: a BigQuery script cannot read what it wrote
    with a.transaction():
        a.execute(
            "INSERT INTO idr_meta.erasure_request (erasure_id, match_kind, identifier_type, entries, requested_at, "
            "requested_by) VALUES ($id, $kind, $t, $n, $now, $by)",
            {"id": erasure_id, "kind": kind, "t": itype, "n": len(texts), "now": now, "by": requested_by},
        )
        a.executemany(
            "INSERT INTO idr_meta.erasure_suppression (erasure_id, match_kind, identifier_type, value_hash) "
            "VALUES ($id, $kind, $t, $h)",
            [{"id": erasure_id, "kind": kind, "t": itype, "h": digest(salt, t)} for t in texts],
        )
    return get(a, erasure_id)


def get(a: Adapter, erasure_id: str) -> dict[str, Any]:
    if not _ID.match(erasure_id):
        raise NotFoundError(f"no erasure {erasure_id!r}", field="erasure_id")
    # A warehouse `idr init` has not upgraded yet has no lifting columns: nothing lifted.
    lifting = "lifted_run_id" in a.columns("idr_meta", "erasure_request")
    lifted = "lifted_run_id, lifted_at" if lifting else "NULL AS lifted_run_id, NULL AS lifted_at"
    rows = a.fetch_dicts(
        "SELECT erasure_id, match_kind, identifier_type, entries, requested_at, requested_by, applied_run_id, "
        f"applied_at, {lifted} FROM idr_meta.erasure_request WHERE erasure_id = $id",
        {"id": erasure_id},
    )
    if not rows:
        raise NotFoundError(f"no erasure {erasure_id!r}", field="erasure_id")
    r = rows[0]
    runs = a.fetch_dicts(
        "SELECT run_id, entities_removed, rows_suppressed, applied_at FROM idr_out.erasure_runs "
        "WHERE erasure_id = $id ORDER BY applied_at, run_id",
        {"id": erasure_id},
    )
    return {
        "id": r["erasure_id"],
        "kind": r["match_kind"],
        "identifier_type": r["identifier_type"],
        "entries": int(r["entries"] or 0),
        "status": status(r["applied_run_id"], r["lifted_run_id"]),
        "requested_at": r["requested_at"],
        "requested_by": r["requested_by"],
        "took_effect_at": r["applied_at"],
        "took_effect_in_run": r["applied_run_id"],
        "lifted_at": r["lifted_at"],
        "lifted_in_run": r["lifted_run_id"],
        "runs": [
            {
                "run_id": x["run_id"],
                "entities_removed": int(x["entities_removed"] or 0),
                "rows_suppressed": int(x["rows_suppressed"] or 0),
                "applied_at": x["applied_at"],
            }
            for x in runs
        ],
    }


def status(applied_run_id: str | None, lifted_run_id: str | None) -> ErasureStatus:
    """PENDING until a run applies it; APPLIED (in force) until its sources deleted every
    row it held; then LIFTED."""
    return "LIFTED" if lifted_run_id else "APPLIED" if applied_run_id else "PENDING"
