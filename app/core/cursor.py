"""Opaque keyset cursors for the console's lists: the sort key of a page's last row, as
URL-safe base64 of a JSON list. A bad cursor is the caller's error (400), never a 500."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from app.core.errors import IdrError


def encode(values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


def decode(cursor: str, length: int, field: str = "cursor") -> list[Any]:
    """The ``length`` values ``encode`` packed; IdrError naming ``field`` otherwise."""
    try:
        out = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(out, list) or len(out) != length:
            raise ValueError(cursor)
        return out
    except Exception:
        raise IdrError(f"{field} is not valid; follow a page's own next link", field=field) from None
