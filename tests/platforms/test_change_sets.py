"""A publish's change set is applied by the adapter in the strongest form its platform has:
DuckDB in one transaction (a failed fence leaves nothing written), BigQuery as exactly one
script job after its checks and fence (a failed fence sends no job). Spark's per-table
swaps run in the conformance story (tests/platforms/test_conformance.py), which checks
each Spark run reports atomic=False in its warnings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from app.core.errors import ConflictError
from app.platforms.bigquery import BigQueryAdapter
from app.platforms.changes import Applied, ChangeSet, Statement
from app.platforms.duckdb import DuckDBAdapter


class Job:
    def __init__(self, sql: str) -> None:
        self.sql = sql

    def result(self) -> list:
        return Result()


class Result(list):
    schema: list = []


class RecordingBigQuery:
    project = "proj"

    def __init__(self) -> None:
        self.jobs: list[str] = []

    def query(self, sql: str, job_config: Any = None) -> Job:
        self.jobs.append(sql)
        return Job(sql)

    def close(self) -> None:
        pass


def _changes(order: list[str], fence_ok: bool = True) -> ChangeSet:
    def fence() -> None:
        order.append("fence")
        if not fence_ok:
            raise ConflictError("lease taken")

    def closing(applied: Applied) -> list[Statement]:
        order.append(f"closing atomic={applied.atomic}")
        return [Statement("UPDATE t SET v = $v WHERE k = 'outcome'", {"v": "done"})]

    cs = ChangeSet(fence=fence, closing=closing)
    cs.execute("DELETE FROM t WHERE k = $k", {"k": "a"})
    cs.executemany("INSERT INTO t (k, v) VALUES ($k, $v)", [{"k": "a", "v": "x'y"}, {"k": "b", "v": None}])
    cs.execute("UPDATE t SET ts = $ts WHERE k = 'b'", {"ts": datetime(2026, 1, 2, 3, 4, 5)})
    return cs


def test_bigquery_applies_a_change_set_as_one_script_job_after_its_checks_and_fence():
    fake = RecordingBigQuery()
    a = BigQueryAdapter(lambda: fake)
    order: list[str] = []
    cs = _changes(order)
    cs.checks.append(lambda: order.append(f"check saw {len(fake.jobs)} jobs") or a.fetchall("SELECT 1 AS x"))
    applied = a.apply_changes(cs)
    assert applied == Applied(atomic=True, how="one script")
    assert order == ["check saw 0 jobs", "closing atomic=True", "fence"]
    assert len(fake.jobs) == 2 and fake.jobs[0] == "SELECT 1 AS x"
    script = fake.jobs[1]
    assert script.startswith("BEGIN TRANSACTION;") and script.rstrip().endswith("COMMIT TRANSACTION;")
    # Every write, in order, values inlined as literals (the emulator binds none in scripts).
    at = [script.index(s) for s in ("DELETE FROM t WHERE k = 'a'", "'x\\'y'", "NULL", "2026-01-02 03:04:05", "'done'")]
    assert at == sorted(at), script


def test_bigquery_sends_no_job_when_the_fence_fails():
    fake = RecordingBigQuery()
    a = BigQueryAdapter(lambda: fake)
    with pytest.raises(ConflictError):
        a.apply_changes(_changes([], fence_ok=False))
    assert fake.jobs == []


def test_duckdb_applies_a_change_set_in_one_transaction_and_a_failed_fence_writes_nothing():
    a = DuckDBAdapter.from_path(":memory:")
    a.execute("CREATE TABLE t (k VARCHAR, v VARCHAR, ts TIMESTAMP)")
    a.execute("INSERT INTO t VALUES ('a', 'old', NULL), ('outcome', NULL, NULL)")
    before = a.fetchall("SELECT * FROM t ORDER BY ALL")
    with pytest.raises(ConflictError):
        a.apply_changes(_changes([], fence_ok=False))
    assert a.fetchall("SELECT * FROM t ORDER BY ALL") == before
    order: list[str] = []
    assert a.apply_changes(_changes(order)) == Applied(atomic=True, how="one transaction")
    assert order == ["fence", "closing atomic=True"]  # the fence is checked before the outcome is written
    assert a.fetchall("SELECT k, v, ts FROM t ORDER BY k") == [
        ("a", "x'y", None),
        ("b", None, datetime(2026, 1, 2, 3, 4, 5)),
        ("outcome", "done", None),
    ]
