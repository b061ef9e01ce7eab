"""Snowflake multi-statement requests: the stand-in takes them as Snowflake does, and the
adapter sends the statements held inside a run with the next read, as one request."""

from __future__ import annotations

import pytest

from tests.platforms.snowflake_standin import split_statements


def test_split_keeps_separators_inside_strings_and_dollar_blocks():
    text = "INSERT INTO t VALUES ('a;b');\nSELECT $$x; y$$ AS s ; SELECT 1;"
    assert split_statements(text) == ["INSERT INTO t VALUES ('a;b')", "SELECT $$x; y$$ AS s", "SELECT 1"]
    assert split_statements("SELECT 1") == ["SELECT 1"]


@pytest.fixture
def sf(make_adapter):
    a = make_adapter("snowflake")
    a.execute("CREATE SCHEMA IF NOT EXISTS s")
    a.execute("CREATE TABLE s.t (k INTEGER, v VARCHAR)")
    return a


def test_stand_in_runs_a_multi_statement_request_like_snowflake(sf):
    import snowflake.connector.errors

    cur = sf.conn.cursor()
    text = "INSERT INTO S.T VALUES (1, 'a');\nINSERT INTO S.T VALUES (2, 'b');\nSELECT count(*) FROM S.T"
    # Without a statement count (MULTI_STATEMENT_COUNT defaults to 1), or a wrong one: refused, nothing run.
    for count in (None, 2):
        with pytest.raises(snowflake.connector.errors.ProgrammingError, match="did not match the desired"):
            cur.execute(text, num_statements=count)
    assert sf.scalar("SELECT count(*) FROM s.t") == 0
    cur.execute(text, num_statements=3)
    assert len(cur.multi_statement_savedIds) == 3
    assert cur.fetchall() == [(1,)]  # the first statement's result is current (rows inserted)
    cur.query_result(cur.multi_statement_savedIds[-1])
    assert cur.fetchall() == [(2,)]
    # The first error stops the request; what ran before it stays done.
    with pytest.raises(snowflake.connector.errors.ProgrammingError):
        cur.execute(
            "INSERT INTO S.T VALUES (3, 'c');\nSELECT * FROM S.MISSING;\nINSERT INTO S.T VALUES (4, 'd')",
            num_statements=0,
        )
    assert sf.fetchall("SELECT k FROM s.t ORDER BY k") == [(1,), (2,), (3,)]


def test_held_statements_travel_with_the_next_read(sf):
    odd = "it's a \\ back'slash; -- not a comment"
    with sf.batched():
        before = sf.round_trips
        sf.execute("INSERT INTO s.t VALUES ($k, $v)", {"k": 1, "v": odd})
        sf.execute("INSERT INTO s.t VALUES (2, NULL)")
        assert sf.round_trips == before  # held
        rows = sf.fetchall("SELECT k, v FROM s.t ORDER BY k")
        assert sf.round_trips == before + 1
    assert rows == [(1, odd), (2, None)]


def test_transaction_inside_a_run_sends_begin_and_commit_with_other_statements(sf):
    with sf.batched():
        sf.execute("INSERT INTO s.t VALUES (1, 'before')")
        before = sf.round_trips
        with sf.transaction():
            sf.execute("INSERT INTO s.t VALUES (2, 'inside')")
            assert sf.scalar("SELECT count(*) FROM s.t") == 2  # held insert, BEGIN, held insert, read: one request
            sf.execute("INSERT INTO s.t VALUES (3, 'inside')")
        assert sf.round_trips == before + 2  # that read, and the COMMIT with the last insert
    assert sf.scalar("SELECT count(*) FROM s.t") == 3


def test_a_failed_transaction_block_sends_none_of_its_statements_and_keeps_earlier_ones(sf):
    with sf.batched():
        sf.execute("INSERT INTO s.t VALUES (1, 'before')")
        with pytest.raises(ValueError), sf.transaction():
            sf.execute("INSERT INTO s.t VALUES (2, 'inside')")
            raise ValueError("stop")
        with pytest.raises(RuntimeError, match="DDL inside a Snowflake transaction"), sf.transaction():
            sf.execute("CREATE TABLE s.u (k INTEGER)")
    assert sf.fetchall("SELECT k FROM s.t") == [(1,)]
    # After a sent read the block rolls back on the server.
    with sf.batched(), pytest.raises(ValueError), sf.transaction():
        sf.execute("INSERT INTO s.t VALUES (3, 'inside')")
        assert sf.scalar("SELECT count(*) FROM s.t") == 2
        raise ValueError("stop")
    assert sf.fetchall("SELECT k FROM s.t") == [(1,)]
