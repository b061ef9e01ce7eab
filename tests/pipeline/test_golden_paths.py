"""The embedded golden-profile fast path (one ``arg_min`` aggregation) picks exactly the
values, source records and strategies of the portable window path every warehouse runs,
ties, NULL values and NULL timestamps included, FULL and INCR."""

from __future__ import annotations

import dataclasses
import os
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.platforms.duckdb_strategies import PackedKeyGolden
from app.platforms.strategies import WindowGolden
from tests.pipeline.world import T0, World, clone

EXAMPLES = int(os.environ.get("IDR_GOLDEN_EXAMPLES", "40"))

record = st.tuples(
    st.sampled_from(["crm", "shop"]),
    st.integers(0, 12),
    st.one_of(st.none(), st.sampled_from(["a@x.com", "b@x.com", "c@x.com"])),
    st.one_of(st.none(), st.sampled_from(["Ann", "Bob", "Cy"])),
    st.integers(0, 3),  # timestamp bucket: equal timestamps tie; 3 = NULL
)
strategy = st.sampled_from(["RECENCY", "SOURCE_PRIORITY", "MOST_FREQUENT"])

GOLDEN = (
    "SELECT resolved_id, attribute_name, attribute_value, source_entity_key, source_table_id, strategy "
    "FROM idr_out.golden_profile_current ORDER BY ALL"
)


def load(w: World, records, hours: int = 0) -> None:
    for table, i, email, name, bucket in records:
        w.upsert(table, str(i), email=email, phone=None, name=name)
        ts = None if bucket == 3 else T0 + timedelta(hours=hours + bucket)
        w.adapter.execute(f'UPDATE src."{table}" SET updated_at = $ts WHERE id = $id', {"ts": ts, "id": str(i)})


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(record, min_size=1, max_size=25), st.lists(record, min_size=1, max_size=8), strategy, strategy)
def test_min_by_path_equals_window_path(first, second, name_strategy, email_strategy):
    rules = [
        {"attribute_name": "name", "strategy": name_strategy, "source_priority_list": "shop"},
        {"attribute_name": "email", "strategy": email_strategy},
    ]
    fast = World.create(tables=("crm", "shop"), extra={"survivorship_rules": rules})
    load(fast, first)
    slow = clone(fast)
    slow.adapter.strategies = dataclasses.replace(fast.adapter.strategies, golden=WindowGolden())
    assert isinstance(fast.adapter.strategies.golden, PackedKeyGolden)
    for mode, batch in (("FULL", None), ("INCR", second)):
        if batch:  # later than the FULL run's watermark, so INCR reads it
            load(fast, batch, hours=10)
            load(slow, batch, hours=10)
        r1, r2 = fast.run(mode), slow.run(mode)
        assert r1.ok and r2.ok, (r1.error_message, r2.error_message)
        golden = fast.adapter.fetchall(GOLDEN)
        assert golden == slow.adapter.fetchall(GOLDEN), mode


def test_large_trust_ranks_keep_their_order_on_both_paths():
    # Ranks far apart and far from 0: the packed key must still order them exactly.
    trust = [{"table_id": "crm", "trust_rank": 200_000}, {"table_id": "shop", "trust_rank": 100_000}]
    rules = [{"attribute_name": "name", "strategy": "SOURCE_PRIORITY"}]
    fast = World.create(tables=("crm", "shop"), extra={"source_trust": trust, "survivorship_rules": rules})
    load(fast, [("crm", 1, "a@x.com", "From crm", 0), ("shop", 1, "a@x.com", "From shop", 0)])
    slow = clone(fast)
    slow.adapter.strategies = dataclasses.replace(fast.adapter.strategies, golden=WindowGolden())
    assert fast.run().ok and slow.run().ok
    q = "SELECT attribute_value FROM idr_out.golden_profile_current WHERE attribute_name = 'name'"
    assert fast.adapter.fetchall(q) == slow.adapter.fetchall(q) == [("From shop",)]
