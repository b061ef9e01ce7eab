"""Every strategy's portable default (what Snowflake, BigQuery and Spark run) and its DuckDB
override write the same tables: both run on DuckDB, on the same data, and the tables
they write are compared (the builders directly, and the published state of whole runs).
The components solver has its own test (test_cc_engines.py)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.platforms.bigquery import BigQueryAdapter
from app.platforms.duckdb import DuckDBAdapter
from app.platforms.duckdb_strategies import DuckDBStaging, InProcessComponents, PackedKeyGolden, SuffixKeyRank
from app.platforms.snowflake import SnowflakeAdapter
from app.platforms.spark import DatabricksSQLAdapter, SparkSessionAdapter
from app.platforms.strategies import (
    MOST_FREQUENT,
    PORTABLE,
    RECENCY,
    SOURCE_PRIORITY,
    GoldenAttr,
    PortableStaging,
    SortedKeyRank,
    SQLComponents,
    Strategies,
    WindowGolden,
)
from tests.pipeline.world import World, base_config, clone

T0 = datetime(2026, 1, 1)


@dataclass
class Runner:
    """A StepRunner over one DuckDB connection: each strategy writes under its own tag."""

    adapter: DuckDBAdapter
    tag: str

    def exec(self, sql: str, params: Any = None) -> None:
        self.adapter.execute(sql, params)

    def w(self, name: str) -> str:
        return self.adapter.work_table(self.tag, name)

    def drop(self, *names: str) -> None:
        for n in names:
            self.adapter.drop_table(self.w(n))


def _runners() -> tuple[Runner, Runner]:
    a = DuckDBAdapter.from_path(":memory:")
    a.execute("CREATE SCHEMA idr_work")
    return Runner(a, "portable"), Runner(a, "override")


def test_adapters_provide_their_strategies():
    """DuckDB overrides every strategy; the warehouses take the portable defaults."""
    duck = DuckDBAdapter.from_path(":memory:").strategies
    assert isinstance(duck.golden, PackedKeyGolden) and not isinstance(duck.golden, WindowGolden)
    assert isinstance(duck.key_rank, SuffixKeyRank)
    assert isinstance(duck.staging, DuckDBStaging)
    assert isinstance(duck.components, InProcessComponents)
    for field in dataclasses.fields(Strategies):  # every override differs from its default
        assert type(getattr(duck, field.name)) is not type(getattr(PORTABLE, field.name)), field.name
    for cls in (SnowflakeAdapter, BigQueryAdapter, SparkSessionAdapter, DatabricksSQLAdapter):
        assert cls(lambda: None).strategies == PORTABLE, cls.__name__


# ---------------------------------------------------------------------------- key rank
keys = st.text(alphabet="0Ab:-é\u00ff", min_size=0, max_size=5)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["a", "ab", "crm", "é", "shop"]), keys), max_size=30, unique=True))
def test_key_rankers_write_the_same_table(entity_keys):
    runs = _runners()
    a = runs[0].adapter
    for r in runs:
        a.execute(f"CREATE TABLE {r.w('entities')} (eid BIGINT, entity_key VARCHAR, table_id VARCHAR)")
        a.executemany(
            f"INSERT INTO {r.w('entities')} VALUES ($e, $k, $t)",
            [{"e": i, "k": f"{t}:{k}", "t": t} for i, (t, k) in enumerate(entity_keys)],
        )
    ranges = a.fetchall(f"SELECT table_id, min(entity_key), max(entity_key) FROM {runs[0].w('entities')} GROUP BY 1")
    SortedKeyRank().rank(runs[0], ranges)
    SuffixKeyRank().rank(runs[1], ranges)
    got = [a.fetchall(f"SELECT eid, kr FROM {r.w('key_rank')} ORDER BY eid") for r in runs]
    assert got[0] == got[1]
    assert sorted(kr for _, kr in got[0]) == list(range(1, len(entity_keys) + 1))


# ---------------------------------------------------------------------------- golden
row = st.tuples(
    st.integers(0, 4),  # cluster (with `own`: a record of its own, comp < 0, when it draws 4)
    st.sampled_from(["crm", "shop", "web"]),
    st.one_of(st.none(), st.integers(0, 2)),  # timestamp bucket: ties and NULLs
    st.one_of(st.none(), st.sampled_from(["x", "y", "z"])),
    st.one_of(st.none(), st.sampled_from(["1", "2"])),
)
attr = st.tuples(st.sampled_from([RECENCY, SOURCE_PRIORITY, MOST_FREQUENT]), st.booleans())


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(row, min_size=1, max_size=25), attr, attr, st.booleans())
def test_golden_builders_write_the_same_table(rows, at0, at1, own):
    runs = _runners()
    a = runs[0].adapter
    rank = "CASE table_id WHEN 'shop' THEN 0 WHEN 'crm' THEN 1 ELSE 2 END"
    attrs = [
        GoldenAttr(j, strategy, "TRY_CAST(a1 AS TIMESTAMP)" if own_recency else "record_ts", rank)
        for j, (strategy, own_recency) in enumerate((at0, at1))
    ]
    data = []
    for kr, (c, table, bucket, v0, v1) in enumerate(rows, start=1):
        comp = -kr if own and c == 4 else c
        ts = None if bucket is None else T0 + timedelta(hours=bucket)
        data.append({"c": comp, "kr": kr, "e": 100 + kr, "t": table, "ts": ts, "v0": v0, "v1": v1})
    for r in runs:
        a.execute(
            f"CREATE TABLE {r.w('gsrc')} (comp BIGINT, kr BIGINT, eid BIGINT, table_id VARCHAR, "
            "record_ts TIMESTAMP, a0 VARCHAR, a1 VARCHAR)"
        )
        a.executemany(f"INSERT INTO {r.w('gsrc')} VALUES ($c, $kr, $e, $t, $ts, $v0, $v1)", data)
        a.execute(
            f"CREATE TABLE {r.w('comp_ids')} AS SELECT comp, 1000 + row_number() OVER (ORDER BY comp) AS rid "
            f"FROM (SELECT DISTINCT comp FROM {r.w('gsrc')})"
        )
    WindowGolden().build(runs[0], attrs)
    PackedKeyGolden().build(runs[1], attrs)
    got = [a.fetchall(f"SELECT * FROM {r.w('golden_new')} ORDER BY ALL") for r in runs]
    assert got[0] == got[1]
    # Every cluster with a value has its row (the comparison is not between two empties).
    assert len(got[0]) == len({d["c"] for d in data if d["v0"] is not None or d["v1"] is not None})


# ---------------------------------------------------------------------------- whole runs
STATE = {
    "membership": "SELECT entity_key, resolved_id FROM idr_out.identity_resolved_membership_current",
    "edges": "SELECT rule_id, left_entity_key, right_entity_key, identifier_type, identifier_value_norm "
    "FROM idr_out.identity_edges_current",
    "identifiers": "SELECT entity_key, identifier_type, identifier_value_norm FROM idr_out.identifiers_current",
    "golden": "SELECT resolved_id, attribute_name, attribute_value, source_entity_key, source_table_id, strategy "
    "FROM idr_out.golden_profile_current",
    "dry_run": "SELECT entity_key, current_resolved_id, proposed_resolved_id, change_type FROM idr_out.dry_run_results",
}

record = st.tuples(
    st.sampled_from(["crm", "shop"]),
    st.integers(0, 9),
    st.one_of(st.none(), st.sampled_from(["a@x.com", "B@x.com ", "c@x.com"])),
    st.one_of(st.none(), st.sampled_from(["555-0101", "5550102", "555 0103"])),
)


def _state(w: World) -> dict[str, list[tuple]]:
    return {name: sorted(w.adapter.fetchall(sql), key=repr) for name, sql in STATE.items()}


def _world(repeat: bool) -> World:
    """``repeat``: crm maps two columns to EMAIL, so one record may hold a value twice
    (the staging strategy's other numbering)."""
    if not repeat:
        return World.create(tables=("crm", "shop"))
    maps = base_config(("crm", "shop"))["identifier_mappings"]
    extra = {"table_id": "crm", "identifier_type": "EMAIL", "identifier_value_expr": "name"}
    return World.create(tables=("crm", "shop"), extra={"identifier_mappings": [*maps, extra]})


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([f.name for f in dataclasses.fields(Strategies)]),
    st.booleans(),
    st.lists(record, min_size=1, max_size=15),
    st.lists(record, min_size=1, max_size=6),
)
def test_runs_with_the_portable_strategy_publish_the_same_state(name, repeat, first, second):
    override = _world(repeat)
    for table, i, email, phone in first:
        override.upsert(table, str(i), email=email, phone=phone, name=email)
    portable = clone(override)
    portable.adapter.strategies = dataclasses.replace(override.adapter.strategies, **{name: getattr(PORTABLE, name)})
    assert portable.adapter.strategies != override.adapter.strategies
    for mode, batch in (("FULL", None), ("INCR", second)):
        for w in (override, portable):
            for table, i, email, phone in batch or ():
                w.upsert(table, str(i), email=email, phone=phone, name=phone)
        for dry_run in (True, False):
            r1, r2 = override.run(mode, dry_run=dry_run), portable.run(mode, dry_run=dry_run)
            assert r1.ok and r2.ok, (r1.error_message, r2.error_message)
            assert _state(override) == _state(portable), (name, mode, dry_run)


def test_portable_staging_names_the_cte_without_materializing():
    assert PortableStaging().computed_once("t", "SELECT 1") == "t AS (SELECT 1)"
    assert DuckDBStaging().computed_once("t", "SELECT 1") == "t AS MATERIALIZED (SELECT 1)"


def test_components_choice_portable_sql_rounds_and_duckdb_union_find_publish_the_same_state():
    """The components solver is the adapter's strategy: SQL rounds by default (a loop
    server-side where the platform has one), union-find in process on DuckDB; both
    publish the same state (a chain needs several SQL rounds)."""
    from app.pipeline.components import ServerLoop, SQLRounds, UnionFind, solver_for

    assert SQLComponents().engine(server_loops=False) == "sql"
    assert SQLComponents().engine(server_loops=True) == "script"
    override = _world(False)
    for i in range(40):  # a chain: record i shares an email with i-1 and a phone with i+1
        email, phone = f"e{i // 2}@x.com", f"{(i + 1) // 2:04d}"
        override.upsert("crm" if i % 2 else "shop", str(i), email=email, phone=phone, name="n")
    portable = clone(override)
    portable.adapter.strategies = dataclasses.replace(override.adapter.strategies, components=SQLComponents())
    assert isinstance(solver_for(override.adapter), UnionFind)
    assert type(solver_for(portable.adapter)) is SQLRounds and ServerLoop is not SQLRounds
    rounds = []
    for mode in ("FULL", "INCR"):
        if mode == "INCR":
            for w in (override, portable):
                w.upsert("crm", "x", email="e3@x.com", phone="9999", name="m")
        r1, r2 = override.run(mode), portable.run(mode)
        assert r1.ok and r2.ok, (r1.error_message, r2.error_message)
        assert _state(override) == _state(portable), mode
        rounds.append((r1.lp_iterations, r2.lp_iterations))
    assert rounds[0][0] == 1 < rounds[0][1], rounds  # union-find: one pass; SQL: several rounds


def test_config_ddl_after_the_transaction_or_inside_it_on_duckdb_gives_the_same_state():
    """Applying a configuration ends with DDL (the golden columns and views follow the
    attributes): the portable ``transaction_then`` runs it after the commit, DuckDB's
    inside the transaction; both leave the same configuration, golden columns and views,
    and the runs after them publish the same state."""
    import types

    from app.config.apply import apply_config
    from app.platforms.base import Adapter
    from app.platforms.duckdb import DuckDBAdapter

    assert DuckDBAdapter.transaction_then is not Adapter.transaction_then
    override = World.create(tables=("crm", "shop"))
    for i in range(6):
        override.upsert("crm" if i % 2 else "shop", str(i), email=f"e{i // 2}@x.com", phone=f"{i:04d}", name=f"n{i}")
    portable = clone(override)
    portable.adapter.transaction_then = types.MethodType(Adapter.transaction_then, portable.adapter)  # type: ignore[method-assign]
    doc = base_config(("crm", "shop"))
    doc["attribute_mappings"] += [
        {"table_id": t, "attribute_name": "phone", "attribute_expr": "phone"} for t in ("crm", "shop")
    ]
    for w in (override, portable):
        apply_config(w.adapter, doc)
        assert w.run("FULL").ok
    seen = []
    for w in (override, portable):
        a = w.adapter
        seen.append(
            (
                a.fetchall("SELECT attribute_name, column_no, active FROM idr_state.golden_columns ORDER BY 1"),
                a.fetchall("SELECT info_value FROM idr_state.schema_info WHERE info_key = 'golden_views'"),
                a.columns("idr_out", "golden_profile_wide"),
                a.fetchall("SELECT * EXCLUDE (updated_ts) FROM idr_out.golden_profile_wide ORDER BY ALL"),
                _state(w),
            )
        )
    assert "phone" in seen[0][2]
    assert seen[0] == seen[1]
