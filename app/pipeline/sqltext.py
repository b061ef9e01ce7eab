"""Loads stage SQL from ``sql/stages/*.sql`` and renders work-table placeholders.

A file holds named statements, each introduced by ``-- name: <name>``. ``{{w.<table>}}``
is replaced by the run-scoped, quoted scratch table; values are always ``$params``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
_WORK = re.compile(r"\{\{\s*w\.(\w+)\s*\}\}")


@lru_cache
def load(sql_dir: Path, stage: str, folder: str = "stages") -> dict[str, str]:
    text = (sql_dir / folder / f"{stage}.sql").read_text()
    parts = _NAME.split(text)
    out: dict[str, str] = {}
    for i in range(1, len(parts), 2):
        body = parts[i + 1].strip().rstrip(";").strip()
        out[parts[i]] = body
    return out


def render(sql: str, work: Callable[[str], str]) -> str:
    return _WORK.sub(lambda m: work(m.group(1)), sql)
