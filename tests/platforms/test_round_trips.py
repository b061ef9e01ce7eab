"""Round trips: the adapter counts every request it sends (one per cursor call, whatever
it carries), and a run records its count in run_history and as idr_run_statements."""

from __future__ import annotations

from typing import Any

import pytest

from app.pipeline.runner import run_pipeline
from tests.platforms.story import Warehouse, base_rows


class CountingConnection:
    """Wraps a DB-API connection: counts execute calls on any of its cursors."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.executes = 0

    def cursor(self, *a: Any, **k: Any) -> Any:
        cur = self._conn.cursor(*a, **k)
        outer = self

        class Cursor:
            def __getattr__(self, name: str) -> Any:
                return getattr(cur, name)

            def execute(self, *a: Any, **k: Any) -> Any:
                outer.executes += 1
                return cur.execute(*a, **k)

        return Cursor()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_snowflake_counts_every_cursor_call(make_adapter):
    a = make_adapter("snowflake")
    counting = CountingConnection(a.conn)
    a._conn = counting
    wh = Warehouse(a)
    wh.setup()
    wh.upsert_many(base_rows()[:12])
    assert a.round_trips == counting.executes > 0
    before, seen = a.round_trips, counting.executes
    r = run_pipeline(a, "FULL")
    assert r.ok, r.error_message
    run_calls = counting.executes - seen
    assert a.round_trips - before == run_calls
    # Everything up to the run's last history write; metrics are recorded after it.
    assert 0 < r.statements <= run_calls
    stored = a.scalar("SELECT statements FROM idr_out.run_history WHERE run_id = $r", {"r": r.run_id})
    assert stored == r.statements
    metric = a.scalar(
        "SELECT metric_value FROM idr_out.metrics_export WHERE run_id = $r AND metric_name = 'idr_run_statements'",
        {"r": r.run_id},
    )
    assert metric == r.statements


def test_duckdb_counts_every_call(make_adapter):
    a = make_adapter("duckdb")
    a.execute("CREATE TABLE t (x INTEGER)")
    a.executemany("INSERT INTO t VALUES ($x)", [{"x": 1}, {"x": 2}])
    assert a.scalar("SELECT sum(x) FROM t") == 3
    assert a.round_trips == 3
    with a.transaction():
        a.execute("INSERT INTO t VALUES (3)")
    assert a.round_trips == 6  # BEGIN, INSERT, COMMIT


def test_history_without_the_column_still_runs_until_init_adds_it(make_adapter):
    """A database initialised before the column existed: runs work, `idr init` adds it."""
    from app.config.apply import apply_config
    from app.demo.generator import demo_config, generate
    from app.schema import init_schema

    a = make_adapter("duckdb")
    generate(a, 200, seed=3)
    init_schema(a)
    apply_config(a, demo_config(records=200))
    a.execute("ALTER TABLE idr_out.run_history DROP COLUMN statements")
    r = run_pipeline(a, "FULL")
    assert r.ok and r.statements > 0, r.error_message
    assert "added column idr_out.run_history.statements" in init_schema(a)
    r = run_pipeline(a, "INCR")
    assert r.ok
    assert a.scalar("SELECT statements FROM idr_out.run_history WHERE run_id = $r", {"r": r.run_id}) == r.statements


def test_bigquery_sends_held_statements_with_the_next_read(make_adapter):
    """Inside ``batched``, statements nobody reads travel with the next read as one script
    job; values are inlined as literals (quotes stay data); an error surfaces at the read."""
    a = make_adapter("bigquery")
    a.execute("CREATE SCHEMA IF NOT EXISTS w")
    before = a.round_trips
    with a.batched():
        a.execute("CREATE TABLE w.t (k VARCHAR, n BIGINT)")
        a.execute("INSERT INTO w.t VALUES ($k, $n)", {"k": "o'brien; DROP TABLE w.t; --", "n": 2})
        a.executemany("INSERT INTO w.t VALUES ($k, $n)", [{"k": "a", "n": 3}, {"k": None, "n": 4}])
        assert a.round_trips == before  # nothing sent yet
        rows = a.fetchall("SELECT k, n FROM w.t ORDER BY n")
        assert rows == [("o'brien; DROP TABLE w.t; --", 2), ("a", 3), (None, 4)]
        assert a.round_trips == before + 1
        a.execute("INSERT INTO w.t VALUES ('b', 5)")
    assert a.round_trips == before + 2  # the block's end sends what is held
    assert a.scalar("SELECT count(*) FROM w.t") == 4
    with a.batched():
        a.execute("INSERT INTO w.missing VALUES (1)")
        with pytest.raises(Exception, match="(?i)missing|not found"):
            a.scalar("SELECT count(*) FROM w.t")


@pytest.mark.parametrize("platform", ["duckdb", "snowflake", "bigquery"])
def test_config_in_one_read_equals_the_per_table_read(platform, make_adapter):
    """read_config's single UNION ALL (text columns) gives exactly the per-table read."""
    from app.config import store

    a = make_adapter(platform)
    Warehouse(a).setup()
    before = a.round_trips
    one = store.read_config(a)
    assert a.round_trips - before == 1
    assert one == store._read_per_table(a)
    assert one.exclusions and one.survivorship_rules[1].source_priority_list == "shop,crm"


class RecordingBigQuery:
    """A bigquery.Client stand-in: records query texts; the catalog lists one table."""

    project = "p"

    def __init__(self) -> None:
        self.queries: list[str] = []

    def query(self, sql: str, job_config: Any = None) -> Any:
        self.queries.append(sql)

        class Job:
            def result(self) -> list:
                return []

        return Job()

    def list_tables(self, ref: str) -> list:
        class T:
            table_id, table_type = "w1_t", "TABLE"

        return [T()]


def test_catalog_calls_send_held_statements_only_when_held_ddl_changes_what_they_ask():
    """A catalog answer (tables, columns) can only depend on held DDL about the relations
    it asks for: DML, and DDL on other tables, keep waiting for the next read (a round
    trip fewer each); DDL whose target cannot be told (a schema) sends them."""
    from app.platforms.bigquery import BigQueryAdapter

    client = RecordingBigQuery()
    a = BigQueryAdapter(lambda: client)
    with a.batched():
        a.execute("UPDATE idr_out.run_history SET status = 'X' WHERE run_id = 'r'")
        a.execute("INSERT INTO idr_work.w1_t SELECT 1")  # DML on a listed table: no catalog change
        a.execute("CREATE TABLE idr_work.tmp_x AS SELECT 1 AS x")  # another run's prefix
        assert a.list_relations("idr_work", "w1_") == [("w1_t", False)]
        assert client.queries == [] and a.round_trips == 1  # the catalog call alone
        a.execute("DROP TABLE IF EXISTS idr_work.w1_t")
        a.list_relations("idr_work", "w1_")
        assert len(client.queries) == 1 and "DROP TABLE" in client.queries[0] and "run_history" in client.queries[0]
        a.execute("CREATE SCHEMA IF NOT EXISTS idr_other")
        a.list_relations("idr_work", "w1_")
        assert len(client.queries) == 2
    assert a.round_trips == 5
