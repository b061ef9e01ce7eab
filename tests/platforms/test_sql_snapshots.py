"""Every named statement of the pipeline (sql/stages/*.sql) and the schema DDL, rendered
for each platform and compared with a reviewed snapshot (tests/platforms/snapshots/), so
a change to the transpile layer (or to sqlglot) shows up without running an emulator.

After a deliberate change: ``IDR_UPDATE_SNAPSHOTS=1 pytest tests/platforms/test_sql_snapshots.py``
rewrites the files; review the diff before committing it.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from app.core.settings import get_settings
from app.pipeline import sqltext
from app.platforms.base import Adapter
from app.platforms.bigquery import BigQueryAdapter
from app.platforms.duckdb import DuckDBAdapter
from app.platforms.snowflake import SnowflakeAdapter
from app.platforms.spark import DatabricksSQLAdapter, SparkSessionAdapter

SNAPSHOTS = Path(__file__).parent / "snapshots"
TAG = "wsnap"


def _never() -> None:
    raise AssertionError("rendering must not connect")


ADAPTERS: dict[str, type[Adapter]] = {
    "duckdb": DuckDBAdapter,
    "snowflake": SnowflakeAdapter,
    "bigquery": BigQueryAdapter,
    "spark": SparkSessionAdapter,
    "databricks": DatabricksSQLAdapter,
}


def _sources() -> dict[str, dict[str, str]]:
    sql_dir = get_settings().sql_dir
    out = {f.stem: sqltext.load(sql_dir, f.stem) for f in sorted((sql_dir / "stages").glob("*.sql"))}
    out["schema_views"] = sqltext.load(sql_dir, "views", folder="schema")
    return out


def render(platform: str) -> dict[str, str]:
    """file -> its snapshot text for ``platform``."""
    a = ADAPTERS[platform](_never)
    out = {}
    for file, statements in _sources().items():
        parts = []
        for name, sql in statements.items():
            text = sqltext.render(sql, lambda t: a.work_table(TAG, t))
            parts.append(f"-- name: {name}\n" + ";\n".join(a.to_platform(text)) + ";\n")
        out[file] = "\n".join(parts)
    return out


@pytest.mark.parametrize("platform", sorted(ADAPTERS))
def test_statements_match_their_snapshot(platform):
    got = render(platform)
    folder = SNAPSHOTS / platform
    if os.environ.get("IDR_UPDATE_SNAPSHOTS"):
        folder.mkdir(parents=True, exist_ok=True)
        for file, text in got.items():
            (folder / f"{file}.sql").write_text(text)
    problems = []
    for file, text in got.items():
        path = folder / f"{file}.sql"
        want = path.read_text() if path.exists() else ""
        if text != want:
            diff = "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True), str(path), "rendered"))
            problems.append(diff[:3000] or f"{path} is missing")
    stale = sorted({p.stem for p in folder.glob("*.sql")} - set(got))
    assert not stale, f"snapshots of statements that no longer exist: {stale}"
    assert not problems, "\n".join(problems)


def test_snapshots_differ_where_the_platforms_do():
    """The renderings are not trivially equal (the snapshots check something)."""
    texts = {p: render(p)["graph"] for p in ("duckdb", "snowflake", "bigquery", "spark")}
    assert len(set(texts.values())) == len(texts)
    assert '"IDR_WORK"."WSNAP_' in texts["snowflake"] and "`idr_work`.`wsnap_" in texts["bigquery"]
