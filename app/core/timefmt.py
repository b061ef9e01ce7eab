"""One timestamp format for everything the service hands out: RFC 3339 in UTC with 'Z'."""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(dt: datetime | None) -> datetime | None:
    """Aware UTC; a naive datetime is UTC already (everything stored is: SQLite and the
    warehouses hand back naive values)."""
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def rfc3339(dt: datetime | None) -> str | None:
    """'2026-12-03T18:04:39.123456Z' (sub-second digits only when there are any)."""
    dt = as_utc(dt)
    return None if dt is None else dt.isoformat().replace("+00:00", "Z")
