"""Adapter.interrupt() stops the running statement from another thread, and the
connection runs the next statement (the run's cleanup): DuckDB and the Spark stand-in."""

from __future__ import annotations

import threading
import time

import pytest

from app.platforms.duckdb import DuckDBAdapter


def _interrupted(adapter, slow_sql: str, after: float = 1.0) -> float:
    done = threading.Event()

    def interrupt() -> None:
        # Again every second: on a busy machine the statement may not have started its
        # work (a Spark job) when the first interrupt comes.
        if not done.wait(after):
            while not done.is_set():
                adapter.interrupt()
                done.wait(1.0)

    t = threading.Thread(target=interrupt, daemon=True)
    t0 = time.monotonic()
    t.start()
    try:
        with pytest.raises(Exception) as info:  # noqa: PT011 - each platform names it differently
            adapter.fetchall(slow_sql)
    finally:
        done.set()
        t.join()
    assert "interrupt" in str(info.value).lower() or "cancel" in str(info.value).lower(), info.value
    return time.monotonic() - t0


def test_duckdb_interrupt(tmp_path):
    with DuckDBAdapter.from_path(str(tmp_path / "x.duckdb")) as a:
        assert a.interrupt() is False  # not connected: nothing to stop
        took = _interrupted(a, "CREATE TABLE t AS SELECT count(sleep_ms(50)) AS n FROM range(2000)")
        assert took < 10, took  # the statement alone would take 100 s
        assert a.scalar("SELECT 42") == 42
        assert not a.table_exists("main", "t")


def test_spark_interrupt(spark_session):
    from app.platforms.spark import SparkSessionAdapter

    a = SparkSessionAdapter(lambda: spark_session)
    spark_session.range(2000).createOrReplaceTempView("idr_interrupt_numbers")
    slow = (
        "SELECT count(*) FROM idr_interrupt_numbers "
        "WHERE java_method('java.lang.Thread', 'sleep', CAST(50 AS BIGINT)) IS NULL"
    )
    took = _interrupted(a, slow, after=3.0)
    assert took < 30, took  # one task alone would take 100 s
    assert a.scalar("SELECT 42") == 42
