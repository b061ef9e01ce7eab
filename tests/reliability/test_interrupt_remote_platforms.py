"""Adapter.interrupt() on Snowflake and BigQuery, against recording fake connections (no
stand-in runs either platform's cancel: fakesnow and the BigQuery emulator run statements
to the end). What these prove: interrupt() sends the platform's abort for the statement
that is running (Snowflake: SYSTEM$CANCEL_QUERY with that query's id, bound in the qmark
style the adapter's connections use; BigQuery: jobs.cancel on that job), the running
statement then fails the caller, and a transaction it was part of is not committed
(Snowflake: ROLLBACK, no COMMIT; BigQuery: the script job that carries the transaction is
the one cancelled, and nothing is sent after it). What they do not prove: that the real
services stop the work in time; that needs a live account."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from app.platforms.bigquery import BigQueryAdapter
from app.platforms.snowflake import SnowflakeAdapter

SLOW = "SELECT count(*) FROM slow_table"


class Cancelled(Exception):
    """What the fakes raise in the cancelled statement (each connector has its own)."""


# ---------------------------------------------------------------- Snowflake
class FakeSnowflake:
    """Records every cursor.execute; a statement reading slow_table blocks until a
    SYSTEM$CANCEL_QUERY names its query id."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.cancelled: set[str] = set()
        self.started = threading.Event()
        self._ids = 0
        self._lock = threading.Lock()

    def cursor(self) -> FakeSnowflakeCursor:
        return FakeSnowflakeCursor(self)

    def close(self) -> None:
        pass


class FakeSnowflakeCursor:
    def __init__(self, conn: FakeSnowflake) -> None:
        self.conn = conn
        self.sfqid: str | None = None
        self.description = None

    def execute(self, sql: str, params: Any = None) -> FakeSnowflakeCursor:
        c = self.conn
        with c._lock:
            c._ids += 1
            self.sfqid = f"01b-{c._ids:04d}"
            c.sent.append((sql, params))
        if sql.startswith("SELECT SYSTEM$CANCEL_QUERY("):
            assert "?" in sql and isinstance(params, list | tuple), "qmark binding: '?' and a sequence"
            c.cancelled.add(params[0])
        elif "slow_table" in sql.lower():
            c.started.set()
            deadline = time.monotonic() + 30
            while self.sfqid not in c.cancelled:
                if time.monotonic() > deadline:
                    raise AssertionError("never cancelled")
                time.sleep(0.01)
            raise Cancelled("000604 (57014): SQL execution canceled")
        self.description = None
        return self

    def fetchall(self) -> list[tuple]:
        return []

    def close(self) -> None:
        pass


def _interrupt_when_started(started: threading.Event, adapter) -> threading.Thread:
    def go() -> None:
        assert started.wait(30)
        assert adapter.interrupt() is True

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


def test_snowflake_interrupt_sends_system_cancel_query_for_the_running_query_and_rolls_back():
    fake = FakeSnowflake()
    a = SnowflakeAdapter(lambda: fake)
    assert a.interrupt() is False  # nothing running: nothing to cancel
    t = _interrupt_when_started(fake.started, a)
    with pytest.raises(Cancelled), a.transaction():
        a.execute("DELETE FROM idr_out.identity_clusters_current WHERE resolved_id = $r", {"r": "x"})
        a.fetchall(SLOW)
    t.join(30)
    sql = [s for s, _ in fake.sent]
    slow_at = next(i for i, s in enumerate(sql) if "SLOW_TABLE" in s.upper())
    cancel = [(s, p) for s, p in fake.sent if s.startswith("SELECT SYSTEM$CANCEL_QUERY")]
    assert cancel == [("SELECT SYSTEM$CANCEL_QUERY(?)", [f"01b-{slow_at + 1:04d}"])], fake.sent  # that query's id
    # The transaction the statement was part of is rolled back, never committed.
    assert sql[0] == "BEGIN" and sql[-1] == "ROLLBACK" and "COMMIT" not in sql, sql
    assert a.interrupt() is False  # and nothing is running any more


# ---------------------------------------------------------------- BigQuery
class FakeJob:
    def __init__(self, sql: str, slow: bool) -> None:
        self.sql = sql
        self.slow = slow
        self.cancel_calls = 0
        self.started = threading.Event()

    def cancel(self) -> bool:
        self.cancel_calls += 1
        return True

    def result(self) -> list:
        if not self.slow:
            return FakeResult()
        self.started.set()
        deadline = time.monotonic() + 30
        while not self.cancel_calls:
            if time.monotonic() > deadline:
                raise AssertionError("never cancelled")
            time.sleep(0.01)
        raise Cancelled("Job execution was cancelled: User requested cancellation")


class FakeResult(list):
    schema: list = []


class FakeBigQuery:
    """Records every query job; a job whose SQL reads slow_table runs until cancelled."""

    project = "proj"

    def __init__(self) -> None:
        self.jobs: list[FakeJob] = []
        self.slow_started = threading.Event()

    def query(self, sql: str, job_config: Any = None) -> FakeJob:
        job = FakeJob(sql, "slow_table" in sql.lower())
        self.jobs.append(job)
        if job.slow:
            threading.Thread(target=lambda: job.started.wait(30) and self.slow_started.set(), daemon=True).start()
        return job

    def close(self) -> None:
        pass


def test_bigquery_interrupt_cancels_the_running_job():
    fake = FakeBigQuery()
    a = BigQueryAdapter(lambda: fake)
    assert a.interrupt() is False
    t = _interrupt_when_started(fake.slow_started, a)
    with pytest.raises(Cancelled):
        a.fetchall(SLOW)
    t.join(30)
    slow = [j for j in fake.jobs if j.slow]
    assert len(slow) == 1 and slow[0].cancel_calls == 1
    assert all(j.cancel_calls == 0 for j in fake.jobs if not j.slow)  # only the running one
    assert a.interrupt() is False


def test_bigquery_interrupt_of_a_transaction_cancels_its_script_job_and_sends_nothing_after():
    fake = FakeBigQuery()
    a = BigQueryAdapter(lambda: fake)
    t = _interrupt_when_started(fake.slow_started, a)
    with pytest.raises(Cancelled), a.transaction():
        a.execute("DELETE FROM idr_out.identity_clusters_current WHERE resolved_id = $r", {"r": "x"})
        a.execute("INSERT INTO idr_out.identity_clusters_current SELECT * FROM idr_work.slow_table")
    t.join(30)
    # The transaction travels as one script job: that job is the one cancelled (BigQuery
    # rolls a cancelled script's transaction back), and no job follows it.
    script = fake.jobs[-1]
    assert script.sql.startswith("BEGIN TRANSACTION;") and script.sql.rstrip().endswith("COMMIT TRANSACTION;")
    assert script.cancel_calls == 1
    assert sum("DELETE" in j.sql for j in fake.jobs) == 1  # the DELETE went only inside the cancelled script
