"""FULL's key rank sorts on (table, key suffix) where it can: the ranks must be exactly
those of sorting the whole entity keys, and overlapping tables fall back to that sort."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.config.model import IdrConfig
from app.core.run_record import RunResult
from app.core.settings import get_settings
from app.pipeline import graph
from app.pipeline.context import RunContext, utcnow
from app.pipeline.plan import RunKind
from app.platforms.duckdb import DuckDBAdapter
from app.platforms.strategies import table_prefixes

# Table ids that are prefixes of one another and keys with shared prefixes, digits of
# different lengths and non-ASCII characters: the cases where string order is subtle.
table_ids = st.sampled_from(["a", "ab", "crm_customers", "crm", "é", "shop"])
keys = st.text(alphabet="0Ab:-é\u00ff\U0001f600", min_size=0, max_size=6)


def _ctx() -> RunContext:
    now = utcnow()
    return RunContext(
        adapter=DuckDBAdapter.from_path(":memory:"),
        config=IdrConfig(),
        settings=get_settings(),
        result=RunResult(run_id="run_test", mode="FULL", dry_run=False, platform="duckdb", started_at=now),
        tag="w0123456789",
        now=now,
        kind=RunKind(full=True),
    )


def _ranks(ctx: RunContext, entity_keys: list[tuple[str, str]]) -> dict[int, int]:
    a = ctx.adapter
    # The entity rows the rank reads.
    a.execute(f"CREATE TABLE {ctx.w('entities')} (entity_key VARCHAR, eid BIGINT, table_id VARCHAR)")
    a.executemany(
        f"INSERT INTO {ctx.w('entities')} VALUES ($k, $e, $t)",
        [{"e": i, "k": f"{t}:{k}", "t": t} for i, (t, k) in enumerate(entity_keys)],
    )
    # What extraction hands over: each table's smallest and largest key, read by DuckDB.
    ctx.state.key_ranges = a.fetchall(
        f"SELECT table_id, min(entity_key), max(entity_key) FROM {ctx.w('entities')} GROUP BY table_id"
    )
    graph.key_rank(ctx)
    return dict(a.fetchall(f"SELECT eid, kr FROM {ctx.w('key_rank')}"))


def _expected(entity_keys: list[tuple[str, str]]) -> dict[int, int]:
    # Bytewise UTF-8 order (DuckDB's), computed independently of the database.
    order = sorted(range(len(entity_keys)), key=lambda i: f"{entity_keys[i][0]}:{entity_keys[i][1]}".encode())
    return {eid: rank for rank, eid in enumerate(order, start=1)}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(table_ids, keys), min_size=1, max_size=40, unique=True))
def test_key_rank_is_entity_key_order(entity_keys):
    ctx = _ctx()
    assert _ranks(ctx, entity_keys) == _expected(entity_keys)


def test_disjoint_tables_take_the_suffix_sort():
    ctx = _ctx()
    data = [("shop_orders", f"ORD-{i:010d}") for i in range(0, 300, 7)] + [("crm", str(i)) for i in range(120)]
    assert _ranks(ctx, data) == _expected(data)
    assert table_prefixes(ctx.state.key_ranges) == [
        ("crm", len("crm:")),
        ("shop_orders", len("shop_orders:ORD-0000000")),
    ]


def test_overlapping_tables_fall_back_to_the_whole_key():
    # 'crm:x:1' sorts between 'crm:a' and 'crm:z': one table's keys inside the other's range.
    ctx = _ctx()
    data = [("crm", "a"), ("crm", "z"), ("crm:x", "1")]
    assert _ranks(ctx, data) == _expected(data)
    assert table_prefixes(ctx.state.key_ranges) is None
