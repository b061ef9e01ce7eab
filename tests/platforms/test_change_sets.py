"""A publish's change set is applied by the adapter in the strongest form its platform has:
DuckDB in one transaction (a failed fence leaves nothing written), BigQuery as exactly one
script job after its checks and fence (a failed fence sends no job), Spark inside a run as
one request of staged writes and per-table swaps after its fence (a failed fence replaces
no table). The swaps on real Spark run in the conformance story
(tests/platforms/test_conformance.py), which checks each Spark run reports atomic=False
in its warnings."""

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


class RecordingSpark:
    """A SparkSession stand-in: records each ``spark.sql`` request; the catalog knows
    ``s.t``'s columns and records what it was asked."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.asked: list[str] = []
        outer = self

        class Catalog:
            def listColumns(self, name: str) -> list:  # noqa: N802 - PySpark's name
                outer.asked.append(name)

                class Col:
                    def __init__(self, n: str) -> None:
                        self.name = n

                return [Col("k"), Col("v"), Col("ts")]

        class Context:
            def setJobGroup(self, *a: Any, **k: Any) -> None:  # noqa: N802 - PySpark's name
                pass

        self.catalog, self.sparkContext = Catalog(), Context()

    def sql(self, text: str, args: Any = None) -> Any:
        self.requests.append(text)

        class Frame:
            columns = ["x"]

            def collect(self) -> list:
                return [(1,)]

        return Frame()


def _spark_changes(order: list[str], fence_ok: bool = True) -> ChangeSet:
    cs = _changes(order, fence_ok)
    cs.writes = [
        Statement(w.sql.replace(" t ", " s.t ").replace("FROM t", "FROM s.t").replace("INTO t", "INTO s.t"), w.params)
        if isinstance(w, Statement)
        else type(w)(w.sql.replace("INTO t", "INTO s.t"), w.rows)  # type: ignore[call-arg]
        for w in cs.writes
    ]
    closing = cs.closing
    cs.closing = lambda applied: [
        Statement(w.sql.replace("UPDATE t", "UPDATE s.t"), w.params) for w in closing(applied)
    ]
    return cs


def test_spark_in_a_run_sends_its_staged_writes_and_swaps_as_one_request_after_the_fence():
    """Inside a run (batched) Spark's publish is one request: the shadows, every write,
    then the swaps (a script stops at its first error: no table is replaced unless every
    write succeeded); the fence is checked before it is sent; a rebuilt UPDATE asks the
    table's columns, not its shadow's (which only the held statements create)."""
    from app.platforms.spark import SparkSessionAdapter

    fake = RecordingSpark()
    a = SparkSessionAdapter(lambda: fake)
    order: list[str] = []
    cs = _spark_changes(order)
    cs.fence = lambda: order.append(f"fence saw {len(fake.requests)} requests")
    with a.batched():
        applied = a.apply_changes(cs)
        assert applied == Applied(atomic=False, how="per-table swaps")
        assert order == ["closing atomic=False", "fence saw 0 requests"]
        assert len(fake.requests) == 1 and a.round_trips == 2  # the request, one catalog call
    assert fake.asked == ["`s`.`t`"]
    script = fake.requests[0]
    assert script.startswith("BEGIN") and script.rstrip().endswith("END")
    shadow = script.index("CREATE TABLE idr_work.tx")
    swap = script.index("INSERT OVERWRITE TABLE s.t SELECT * FROM idr_work.tx")
    assert shadow < script.index("'x\\'y'") < script.index("'done'") < swap, script


def test_spark_in_a_run_replaces_no_table_when_the_fence_fails():
    from app.platforms.spark import SparkSessionAdapter

    fake = RecordingSpark()
    a = SparkSessionAdapter(lambda: fake)
    with a.batched(), pytest.raises(ConflictError):
        a.apply_changes(_spark_changes([], fence_ok=False))
    assert not any("INSERT OVERWRITE TABLE s.t " in r for r in fake.requests), fake.requests
