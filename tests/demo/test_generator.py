"""The synthetic data generator: deterministic, the right sizes, and as messy as promised."""

from __future__ import annotations

import hashlib
from types import ModuleType

import numpy as np
import pytest

from app.config.model import IdrConfig
from app.demo import TABLES, default_max_group_size, demo_config, generate, make_delta
from app.demo.generator import junk_group_size
from app.platforms.duckdb import DuckDBAdapter
from tests.demo.bench_scripts import load

FQNS = [f"{schema}.{table}" for _, schema, table in TABLES]
KEYS = {"crm.customers": "customer_id", "shop.orders": "order_id", "loyalty.members": "member_id"}


def _bench() -> ModuleType:
    return load("run.py")  # for the reference partition


def _adapter() -> DuckDBAdapter:
    return DuckDBAdapter.from_path(":memory:")


def _digest(a: DuckDBAdapter) -> dict[str, str]:
    """Order-independent content hash per table (rows sorted by key)."""
    out = {}
    for fqn in FQNS:
        rows = a.fetchall(f"SELECT * FROM {fqn} ORDER BY {KEYS[fqn]}")
        out[fqn] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return out


@pytest.fixture(scope="module")
def demo() -> tuple[DuckDBAdapter, dict]:
    a = _adapter()
    stats = generate(a, 3_000, seed=11)
    yield a, stats
    a.close()


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b, c = _adapter(), _adapter(), _adapter()
    generate(a, 1_500, seed=5)
    generate(b, 1_500, seed=5)
    generate(c, 1_500, seed=6)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_sizes_and_layout(demo: tuple[DuckDBAdapter, dict]) -> None:
    a, stats = demo
    counts = {fqn: a.scalar(f"SELECT count(*) FROM {fqn}") for fqn in FQNS}
    assert sum(counts.values()) == 3_000 == stats["records"]
    assert counts == {
        "crm.customers": stats["rows_crm_customers"],
        "shop.orders": stats["rows_shop_orders"],
        "loyalty.members": stats["rows_loyalty_members"],
    }
    for fqn, n in counts.items():
        assert n > 300, fqn
        assert a.scalar(f"SELECT count(DISTINCT {KEYS[fqn]}) FROM {fqn}") == n  # unique source keys
        assert a.scalar(f"SELECT count(*) FROM {fqn} WHERE updated_at IS NULL") == 0
    assert a.columns("shop", "orders")[:2] == ["order_id", "customer_email"]
    assert a.scalar("SELECT min(order_id) FROM shop.orders").startswith("ORD-")


def test_junk_values_are_big_enough_to_matter(demo: tuple[DuckDBAdapter, dict]) -> None:
    a, _ = demo
    cap = default_max_group_size(3_000)
    assert junk_group_size(3_000) > cap
    emails = (
        "SELECT lower(trim(email)) v FROM crm.customers UNION ALL SELECT lower(trim(customer_email)) "
        "FROM shop.orders UNION ALL SELECT lower(trim(email)) FROM loyalty.members"
    )
    phones = (
        "SELECT regexp_replace(phone, '[^0-9]', '', 'g') v FROM crm.customers UNION ALL "
        "SELECT regexp_replace(phone_number, '[^0-9]', '', 'g') FROM shop.orders UNION ALL "
        "SELECT regexp_replace(mobile, '[^0-9]', '', 'g') FROM loyalty.members"
    )
    cards = "SELECT loyalty_card v FROM shop.orders UNION ALL SELECT loyalty_id FROM loyalty.members"
    assert a.scalar(f"SELECT count(*) FROM ({emails}) WHERE v = 'test@test.com'") > cap
    assert a.scalar(f"SELECT count(*) FROM ({phones}) WHERE v = '0000000000'") > cap
    assert a.scalar(f"SELECT count(*) FROM ({cards}) WHERE v = 'N/A'") > cap
    # Each noreply group is a real group (>= 2) that only the LIKE exclusion catches (< cap).
    noreply = a.fetchall(f"SELECT v, count(*) FROM ({emails}) WHERE v LIKE 'noreply@%' GROUP BY v")
    assert len(noreply) == 3 and all(2 <= n < cap for _, n in noreply)
    # The raw spellings vary: mixed case, stray whitespace, NULLs and empty strings.
    assert a.scalar("SELECT count(*) FROM crm.customers WHERE email <> lower(email)") > 0
    assert a.scalar("SELECT count(*) FROM shop.orders WHERE customer_email <> trim(customer_email)") > 0
    assert a.scalar("SELECT count(*) FROM crm.customers WHERE email = ''") > 0
    assert a.scalar("SELECT count(*) FROM crm.customers WHERE email IS NULL") > 0
    assert a.scalar("SELECT count(*) FROM loyalty.members WHERE device_id = ''") > 0
    formats = a.fetchall(
        "SELECT DISTINCT regexp_replace(phone, '[0-9]', '9', 'g') FROM crm.customers WHERE phone <> ''"
    )
    # (the country code '1' is a digit too, hence '+9')
    expected = {"+9 (999) 999-9999", "99999999999", "+9 999-999-9999", "9.999.999.9999"}
    assert expected <= {f for (f,) in formats}
    # Every legitimate group stays far below the cap.
    top = a.scalar(
        f"SELECT max(n) FROM (SELECT v, count(*) n FROM ({emails}) WHERE v <> '' AND v <> 'test@test.com' "
        "AND v NOT LIKE 'noreply@%' GROUP BY v)"
    )
    assert top < cap


def test_chains_and_long_tail(demo: tuple[DuckDBAdapter, dict]) -> None:
    a, stats = demo
    assert stats["chains"] >= 1 and stats["longest_chain"] >= 30
    ref = _bench().reference_partition(a, demo_config(records=3_000))
    sizes = sorted((int(x) for x in np.bincount(ref.labels)), reverse=True)
    # The longest chain is its own component (its ids are unique, junk never touches it).
    assert stats["longest_chain"] in sizes
    assert sizes.count(1) > len(sizes) // 3  # most clusters are small ...
    assert sizes[0] >= 20  # ... and some are large
    assert ref.groups_skipped >= 2  # '0000000000' phones and 'N/A' cards exceed the cap
    assert ref.values_excluded > 0


def test_chain_is_a_path_alternating_email_and_phone(demo: tuple[DuckDBAdapter, dict]) -> None:
    a, stats = demo
    # Chain emails/phones are shared by exactly two records: count such values.
    pairs = a.scalar(
        "SELECT count(*) FROM (SELECT lower(trim(e)) v, count(*) n FROM (SELECT email e FROM crm.customers "
        "UNION ALL SELECT customer_email FROM shop.orders UNION ALL SELECT email FROM loyalty.members) "
        "WHERE e LIKE '%@%' GROUP BY v HAVING count(*) = 2)"
    )
    assert pairs >= stats["longest_chain"] // 2


def test_demo_config_is_valid() -> None:
    doc = demo_config()
    cfg = IdrConfig.model_validate(doc)
    assert {r.canonicalize.value for r in cfg.rules} == {"EMAIL", "PHONE", "NONE"}
    assert {x.match_type.value for x in cfg.exclusions} == {"EXACT", "LIKE"}
    strategies = {s.strategy.value for s in cfg.survivorship_rules}
    assert strategies == {"RECENCY", "SOURCE_PRIORITY", "MOST_FREQUENT"}
    assert {r.max_group_size for r in cfg.rules} == {default_max_group_size(2_000)}
    assert demo_config(max_group_size=1000)["rules"][0]["max_group_size"] == 1000
    assert default_max_group_size(10_000_000) == 1000


def test_demo_config_validates_against_generated_tables(demo: tuple[DuckDBAdapter, dict]) -> None:
    validate = pytest.importorskip("app.config.validate")
    a, _ = demo
    validate.validate_config(demo_config(records=3_000), a)  # raises ConfigError on any problem


def test_make_delta_is_deterministic_and_newer() -> None:
    digests = []
    for _ in range(2):
        a = _adapter()
        generate(a, 2_000, seed=3)
        old_max = a.scalar("SELECT max(updated_at) FROM shop.orders")
        before = {fqn: a.scalar(f"SELECT count(*) FROM {fqn}") for fqn in FQNS}
        d = make_delta(a, 0.05, seed=9)
        after = {fqn: a.scalar(f"SELECT count(*) FROM {fqn}") for fqn in FQNS}
        new_rows = d["new_fresh"] + d["new_joining"] + d["new_bridging"]
        assert sum(after.values()) - sum(before.values()) == new_rows
        changed = sum(
            a.scalar(f"SELECT count(*) FROM {fqn} WHERE updated_at > CAST($t AS TIMESTAMP)", {"t": old_max})
            for fqn in FQNS
        )
        assert changed == d["changed"] == pytest.approx(100, abs=5)
        for fqn in FQNS:  # keys stay unique: updates happen in place
            assert a.scalar(f"SELECT count(DISTINCT {KEYS[fqn]}) FROM {fqn}") == after[fqn]
        # Bridging records really carry identifiers of existing records.
        assert a.scalar(
            "SELECT count(*) FROM shop.orders WHERE updated_at > CAST($t AS TIMESTAMP) "
            "AND customer_email IS NOT NULL",
            {"t": old_max},
        ) > 0
        digests.append(_digest(a))
        a.close()
    assert digests[0] == digests[1]


def test_reference_check_detects_a_wrong_partition(demo: tuple[DuckDBAdapter, dict]) -> None:
    """The benchmark's --check compares partitions, not ids: test it without the engine."""
    import pyarrow as pa

    bench = _bench()
    a, _ = demo
    a.execute("CREATE SCHEMA IF NOT EXISTS idr_out")
    doc = demo_config(records=3_000)
    ref = bench.reference_partition(a, doc)
    ids = [f"R{int(x) * 7 % 100003}" for x in ref.labels]  # same partition, other ids
    a.register_arrow("_m", pa.table({"entity_key": ref.entity_keys, "resolved_id": ids}))
    a.execute(
        "CREATE OR REPLACE TABLE idr_out.identity_resolved_membership_current AS "
        "SELECT entity_key, resolved_id, CAST(NULL AS TIMESTAMP) AS updated_ts FROM _m"
    )
    assert bench.compare_with_membership(a, bench.reference_partition(a, doc)).ok
    # Merge two clusters: must be reported.
    first, second = ids[0], next(i for i in ids if i != ids[0])
    a.execute(
        "UPDATE idr_out.identity_resolved_membership_current SET resolved_id = $a WHERE resolved_id = $b",
        {"a": first, "b": second},
    )
    res = bench.compare_with_membership(a, bench.reference_partition(a, doc))
    assert not res.ok and any("merge" in line for line in res.lines)
    a.execute("DROP TABLE idr_out.identity_resolved_membership_current")
