"""The embedded union-find fast path gives exactly the partition and ids of the SQL path
(the one every warehouse runs), on random graphs, FULL and INCR."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.pipeline.world import World, clone

EXAMPLES = int(os.environ.get("IDR_CC_EXAMPLES", "40"))

record = st.tuples(
    st.integers(0, 30),
    st.one_of(st.none(), st.integers(0, 12).map(lambda i: f"e{i}@x.com")),
    st.one_of(st.none(), st.integers(0, 12).map(lambda i: f"{i:04d}")),
)


def state(w: World) -> tuple:
    q = "SELECT entity_key, resolved_id FROM idr_out.identity_resolved_membership_current ORDER BY 1"
    seq = "SELECT next_value FROM idr_meta.resolved_id_sequence"
    return w.adapter.fetchall(q), w.adapter.fetchall(seq)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(record, min_size=1, max_size=40), st.lists(record, min_size=1, max_size=10))
def test_unionfind_equals_sql_path(first, second):
    sql = World.create(max_group_size=6)
    for i, email, phone in first:
        sql.upsert("crm", str(i), email=email, phone=phone)
    uf = clone(sql)
    r1, r2 = sql.run(engine="sql"), uf.run(engine="unionfind")
    assert r1.ok and r2.ok
    assert state(sql) == state(uf)
    clusters = len(set(sql.membership().values()))
    for r in (r1, r2):  # the union-find path counts components without a scan
        assert next(s.rows_out for s in r.stages if s.name == "components") == clusters
    for w in (sql, uf):
        for i, email, phone in second:
            w.upsert("crm", str(i), email=email, phone=phone)
    r1, r2 = sql.run("INCR", engine="sql"), uf.run("INCR", engine="unionfind")
    assert r1.ok and r2.ok
    assert state(sql) == state(uf)


def test_long_chain_both_engines():
    w = World.create()
    for i in range(300):
        w.upsert("crm", f"{i:03d}", email=f"e{(i + 1) // 2}@x.com", phone=f"{i // 2:06d}")
    other = clone(w)
    assert w.run(engine="sql").ok and other.run(engine="unionfind").ok
    assert len(w.partition()) == 1 and state(w) == state(other)


def test_solver_strategies_portable_default_and_duckdb_override():
    """DuckDB (an ArrowExchange) gets the union-find override, every other adapter the
    portable SQL rounds; both give the same partition and ids on a random graph."""
    import random

    import pytest

    from app.core.errors import PipelineError
    from app.pipeline.components import ServerLoop, SQLRounds, UnionFind, solver_for
    from app.platforms.bigquery import BigQueryAdapter
    from app.platforms.snowflake import SnowflakeAdapter

    w = World.create(max_group_size=50)
    assert isinstance(solver_for(w.adapter), UnionFind)
    assert isinstance(solver_for(w.adapter, "sql"), SQLRounds)
    remote = SnowflakeAdapter(lambda: None)  # never connects
    assert isinstance(solver_for(remote), SQLRounds)
    with pytest.raises(PipelineError, match="in-process"):
        solver_for(remote, "unionfind")
    with pytest.raises(PipelineError, match="server-side loops"):
        solver_for(remote, "script")
    with pytest.raises(PipelineError, match="server-side loops"):
        solver_for(w.adapter, "script")
    # Scripting platforms: the rounds as one server-side loop (tests/platforms/test_server_loop.py).
    looping = BigQueryAdapter(lambda: None)
    assert isinstance(solver_for(looping), ServerLoop) and isinstance(solver_for(looping, "sql"), SQLRounds)
    rng = random.Random(5)
    for i in range(150):
        w.upsert("crm", str(i), email=f"e{rng.randrange(60)}@x.com", phone=f"{rng.randrange(90):04d}")
    other = clone(w)
    assert w.run(engine="sql").ok and other.run(engine="auto").ok
    assert state(w) == state(other) and 1 < len(w.partition()) < 150
