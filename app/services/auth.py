"""API keys: random tokens stored as sha256 hashes, with scopes read < run < admin."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, timedelta

from sqlalchemy import Connection, select, update
from sqlalchemy.orm import Session

from app.core.errors import ForbiddenError, IdrError, UnauthorizedError
from app.db.models import ApiKey, now_utc

SCOPES = ("read", "run", "admin")
_RANK = {s: i for i, s in enumerate(SCOPES)}
KEY_PREFIX = "idr_"


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        # A higher scope includes the lower ones (admin can run and read).
        need = _RANK[scope]
        return any(_RANK[s] >= need for s in self.scopes)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_scopes(scopes: str | list[str]) -> list[str]:
    items = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    wanted = {str(s).strip().lower() for s in items if str(s).strip()}
    bad = sorted(s for s in wanted if s not in _RANK)
    if bad or not wanted:
        got = f" (unknown: {', '.join(bad)})" if bad else ""
        raise IdrError(
            f"scopes must be one or more of {', '.join(SCOPES)}, comma-separated{got}; "
            "a higher scope includes the lower ones",
            field="scopes",
        )
    return sorted(wanted, key=_RANK.__getitem__)


def create_key(
    session: Session, name: str, scopes: str | list[str], key: str | None = None, actor: str | None = None
) -> tuple[ApiKey, str]:
    """Store a new key; returns the row and the plain key (shown once, never stored). The
    audit trail names ``actor`` (default: the local user of the process)."""
    plain = key or KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        id=secrets.token_hex(8),
        name=name,
        key_hash=hash_key(plain),
        prefix=plain[:8],
        scopes=",".join(parse_scopes(scopes)),
    )
    session.add(row)
    session.flush()
    from app.services import audit

    audit.record(
        session, kind="api_key", action="api_key.create", actor=actor or audit.local_actor(), subject=row.id,
        diff={"name": name, "scopes": row.scopes, "prefix": row.prefix},
    )  # fmt: skip
    return row, plain


def ensure_key(session: Session, name: str, key: str, scopes: str = "admin") -> None:
    """Create ``key`` unless a key with its hash exists (bootstrap key from settings)."""
    if session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key))) is None:
        create_key(session, name, scopes, key=key, actor="settings:IDR_BOOTSTRAP_API_KEY")


def revoke_key(session: Session, key_id: str, actor: str | None = None) -> bool:
    row = session.get(ApiKey, key_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now_utc()
    from app.services import audit

    audit.record(
        session, kind="api_key", action="api_key.revoke", actor=actor or audit.local_actor(), subject=key_id,
        diff={"name": row.name, "scopes": row.scopes},
    )  # fmt: skip
    return True


LAST_USED_RESOLUTION = timedelta(minutes=1)


def authenticate(bind: Session | Connection, key: str | None) -> Principal:
    """The caller behind ``key``. Core statements, not ORM objects: this runs on every
    request, and a plain connection (``engine.begin()``) is several times cheaper than a
    session; ``last_used_at`` is written at most once per ``LAST_USED_RESOLUTION``."""
    if not key:
        raise UnauthorizedError("an API key is required (Authorization: Bearer <key> or X-API-Key)")
    row = bind.execute(_KEY_ROW.where(ApiKey.key_hash == hash_key(key))).first()
    if row is None or row.revoked_at is not None:
        raise UnauthorizedError("unknown or revoked API key")
    now = now_utc()
    last = row.last_used_at
    if last is not None and last.tzinfo is None:  # SQLite hands back naive UTC
        last = last.replace(tzinfo=UTC)
    if last is None or now - last >= LAST_USED_RESOLUTION:
        bind.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
    return Principal(key_id=row.id, name=row.name, scopes=frozenset(row.scopes.split(",")))


_KEY_ROW = select(ApiKey.id, ApiKey.name, ApiKey.scopes, ApiKey.revoked_at, ApiKey.last_used_at)


def list_keys(session: Session, include_revoked: bool = False) -> list[ApiKey]:
    q = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if not include_revoked:
        q = q.where(ApiKey.revoked_at.is_(None))
    return list(session.scalars(q))


def count_active(session: Session, scope: str | None = None) -> int:
    rows = session.scalars(select(ApiKey.scopes).where(ApiKey.revoked_at.is_(None)))
    return sum(1 for s in rows if scope is None or scope in s.split(","))


def require(principal: Principal, scope: str) -> None:
    if not principal.allows(scope):
        raise ForbiddenError(f"this operation needs an API key with scope {scope!r}")


def principal_by_id(session: Session, key_id: str) -> Principal:
    """The principal of a key named by its id (a web console session holds the id, never
    the key); revoking the key ends every session signed in with it."""
    row = session.get(ApiKey, key_id)
    if row is None or row.revoked_at is not None:
        raise UnauthorizedError("the API key of this session was revoked; sign in again")
    return Principal(key_id=row.id, name=row.name, scopes=frozenset(row.scopes.split(",")))
