"""What engine v2 adds: cluster confidence, the wide golden profile that follows the
configuration, excluded values kept out of golden profiles, and a plan whose scratch
tables live exactly as long as their readers."""

from __future__ import annotations

import pytest

from app.config.apply import apply_config
from app.config.store import read_config
from app.pipeline import golden as golden_step
from app.pipeline.plan import RunKind
from app.pipeline.steps import plan_for
from tests.pipeline.world import World, base_config


def _cluster(w: World, key: str) -> dict:
    rid = w.membership()[key]
    return w.adapter.fetch_dicts("SELECT * FROM idr_out.identity_clusters_current WHERE resolved_id = $r", {"r": rid})[
        0
    ]


def test_confidence_singleton_scores_one_and_more_identifier_types_score_higher():
    w = World.create()
    w.upsert("crm", "alone", email="alone@x.com")
    w.upsert("crm", "e1", email="shared@x.com")
    w.upsert("crm", "e2", email="shared@x.com")
    w.upsert("crm", "b1", email="both@x.com", phone="555-0101")
    w.upsert("crm", "b2", email="both@x.com", phone="5550101")
    assert w.run().ok
    alone, email_only, both = _cluster(w, "crm:alone"), _cluster(w, "crm:e1"), _cluster(w, "crm:b1")
    assert alone["confidence_score"] == 1.0 and alone["primary_reason"] == "SINGLETON_NO_MATCH_REQUIRED"
    assert (email_only["edge_diversity"], both["edge_diversity"]) == (1, 2)
    assert both["confidence_score"] > email_only["confidence_score"]
    # The weighting: 0.5 x types / active rules + 0.35 x density + 0.15.
    assert both["confidence_score"] == pytest.approx(0.5 * 2 / 2 + 0.35 * 1.0 + 0.15)
    assert email_only["confidence_score"] == pytest.approx(0.5 * 1 / 2 + 0.35 * 1.0 + 0.15)
    assert both["match_density"] == 1.0 and "2 identifier types" in both["primary_reason"]


def test_incr_recomputes_the_confidence_of_a_cluster_whose_links_change_but_not_its_members():
    w = World.create()
    w.upsert("crm", "1", email="a@x.com")
    w.upsert("crm", "2", email="a@x.com")
    assert w.run().ok
    assert _cluster(w, "crm:1")["edge_diversity"] == 1
    w.upsert("crm", "2", email="a@x.com", phone="777")
    w.upsert("crm", "1", email="a@x.com", phone="777")
    assert w.run("INCR").ok
    c = _cluster(w, "crm:1")
    assert (c["edge_diversity"], c["cluster_size"]) == (2, 2)


def test_wide_golden_profile_has_a_column_per_attribute_and_follows_the_config():
    w = World.create()
    w.upsert("crm", "1", email="a@x.com", name="Ann")
    w.upsert("crm", "2", email="a@x.com", name="Ann B")
    assert w.run().ok
    rid = w.membership()["crm:1"]
    row = w.adapter.fetch_dicts("SELECT * FROM idr_out.golden_profile_wide WHERE resolved_id = $r", {"r": rid})[0]
    assert row["name"] == "Ann B" and row["name_source_entity_key"] == "crm:2"
    assert row["email"] == "a@x.com"
    # A new attribute: the views gain its columns in the same config transaction, empty
    # until a run fills them.
    doc = base_config(["crm"])
    doc["attribute_mappings"].append({"table_id": "crm", "attribute_name": "Phone Number", "attribute_expr": "phone"})
    apply_config(w.adapter, doc)
    cols = w.adapter.columns("idr_out", "golden_profile_wide")
    assert "phone_number" in cols and "phone_number_source_entity_key" in cols
    w.upsert("crm", "1", email="a@x.com", phone="555", name="Ann")
    assert w.run("INCR").ok  # a config change runs as FULL
    row = w.adapter.fetch_dicts("SELECT * FROM idr_out.golden_profile_wide WHERE resolved_id = $r", {"r": rid})[0]
    assert row["phone_number"] == "555"
    long = w.adapter.fetchall(
        "SELECT attribute_value FROM idr_out.golden_profile_current WHERE resolved_id = $r "
        "AND attribute_name = 'Phone Number'",
        {"r": rid},
    )
    assert long == [("555",)]


@pytest.mark.parametrize("inline", [256, 0], ids=["inlined-list", "excluded-values-table"])
def test_golden_profile_never_picks_a_value_the_exclusion_list_blocks_unless_allowed(monkeypatch, inline):
    # A short EXACT list is inlined into the check, a long one read from the run's table.
    monkeypatch.setattr(golden_step, "_INLINE_EXACT", inline)
    excl = [{"identifier_type": "EMAIL", "identifier_value_pattern": "test@test.com", "match_type": "EXACT"}]
    w = World.create(exclusions=excl)
    w.upsert("crm", "1", email="Test@Test.com ", phone="1", name="old")
    w.upsert("crm", "2", email="real@x.com", phone="1", name="new")
    assert w.run().ok
    golden = dict(
        w.adapter.fetchall(
            "SELECT attribute_name, attribute_value FROM idr_out.golden_profile_current WHERE resolved_id = $r",
            {"r": w.membership()["crm:1"]},
        )
    )
    assert golden["email"] == "real@x.com"  # the newer record, but never the blocked one
    # Record 2 loses its email: the cluster's only email is the blocked one, so none.
    w.upsert("crm", "2", email=None, phone="1", name="new")
    assert w.run("INCR").ok
    rows = w.adapter.fetchall(
        "SELECT attribute_value FROM idr_out.golden_profile_current WHERE attribute_name = 'email' "
        "AND resolved_id = $r",
        {"r": w.membership()["crm:1"]},
    )
    assert rows == []
    doc = {**base_config(["crm"], exclusions=excl), "settings": {"golden_allow_excluded_values": "true"}}
    apply_config(w.adapter, doc)
    assert w.run("FULL").ok
    rows = w.adapter.fetchall(
        "SELECT attribute_value FROM idr_out.golden_profile_current WHERE attribute_name = 'email'"
    )
    assert rows == [("Test@Test.com ",)]


@pytest.mark.parametrize(
    "kind",
    [
        RunKind(full=True, fresh=True),
        RunKind(full=True),
        RunKind(full=False),
        RunKind(full=True, dry_run=True),
        RunKind(full=False, dry_run=True),
        RunKind(full=False, apply=True),
    ],
    ids=lambda k: k.label(),
)
def test_plan_reads_only_what_an_earlier_step_wrote(kind):
    plan = plan_for(kind)
    written: set[str] = set()
    for step in plan.steps:
        assert set(step.inputs) <= written, (step.name, set(step.inputs) - written)
        written |= set(step.outputs)
    assert plan.stages[0] == "extract_entities" and plan.stages[-1] in ("publish", "dry_run_diff")


def test_no_scratch_table_outlives_its_last_reader():
    """Run every kind of run and, after each step, compare the scratch tables that exist
    with those the plan says are still to be read."""
    w = World.create()
    for i in range(6):
        w.upsert("crm", str(i), email=f"e{i // 2}@x.com", phone=f"{i % 3}")
    seen: list[str] = []

    def check(kind_full: bool, dry: bool):
        cfg = read_config(w.adapter)
        assert cfg.sources

        def observe(step, tables):
            plan = observe.plan
            i = plan.steps.index(step)
            alive = {t for t, last in plan.drop_after.items() if last > i}
            declared = {t for s in plan.steps[: i + 1] for t in s.outputs}
            extra = {t for t in tables if t in declared and t not in alive}
            assert not extra, f"{step.name}: {sorted(extra)} outlive their last reader"
            undeclared = [t for t in tables if not any(t == d or t.startswith("src") for d in declared)]
            assert not undeclared, f"{step.name}: undeclared scratch tables {undeclared}"
            seen.append(step.name)

        from app.pipeline import runner

        real_plan_for = runner.plan_for

        def plan_spy(kind, publish_build=None):
            p = real_plan_for(kind, publish_build)
            observe.plan = p
            return p

        runner.plan_for = plan_spy
        try:
            r = runner.run_pipeline(w.adapter, "FULL" if kind_full else "INCR", dry_run=dry, observe=observe)
        finally:
            runner.plan_for = real_plan_for
        assert r.ok, r.error_message
        assert not w.adapter.fetchall("SELECT table_name FROM duckdb_tables() WHERE temporary")

    check(True, False)  # first run (fresh)
    w.upsert("crm", "9", email="e0@x.com")
    check(False, True)
    check(False, False)
    w.upsert("crm", "1", email="other@x.com")  # a split
    check(True, False)
    check(True, True)
    assert "publish" in seen and "write_diff" in seen


def test_every_entity_key_is_found_through_the_hash_lookup_after_full_and_incr():
    from app.services.lookups import entity

    w = World.create(tables=("crm", "shop"))
    for i in range(5):
        w.upsert("crm", str(i), email=f"e{i % 2}@x.com")
    assert w.run().ok
    w.upsert("shop", "late", email="e0@x.com")
    w.upsert("crm", "9", email="new@x.com")
    assert w.run("INCR").ok
    w.upsert("shop", "later", phone="1")
    assert w.run("FULL").ok
    h = w.adapter.key_hash_sql("e.entity_key")
    rows = w.adapter.fetchall(
        f"SELECT e.entity_key, l.key_hash = {h} FROM idr_state.entities AS e "
        "LEFT JOIN idr_state.entity_lookup AS l ON l.eid = e.eid"
    )
    assert len(rows) == 8 and all(same for _, same in rows)
    assert w.adapter.scalar("SELECT count(*) FROM idr_state.entity_lookup") == 8  # one row per key, no duplicates
    membership = w.membership()
    for k, rid in membership.items():
        assert entity(w.adapter, k)["resolved_id"] == rid


def test_a_lookup_written_by_another_hash_is_scanned_until_the_next_real_run_rebuilds_it():
    from app.services.lookups import entity

    w = World.create(tables=("crm",))
    for i in range(4):
        w.upsert("crm", str(i), email=f"e{i % 2}@x.com")
    assert w.run().ok
    a = w.adapter
    version_sql = "SELECT info_value FROM idr_state.schema_info WHERE info_key = 'entity_lookup_hash'"
    assert a.scalar(version_sql) == a.key_hash_version()
    # As an engine upgrade whose hash() differs would leave it: every stored hash wrong.
    a.execute("UPDATE idr_state.entity_lookup SET key_hash = key_hash + 1")
    a.execute("UPDATE idr_state.schema_info SET info_value = 'an older hash' WHERE info_key = 'entity_lookup_hash'")
    membership = w.membership()
    for k, rid in membership.items():
        assert entity(a, k)["resolved_id"] == rid  # found by scanning the dictionary
    assert w.run("INCR", dry_run=True).ok
    assert a.scalar(version_sql) == "an older hash"  # a dry run writes nothing
    assert w.run("INCR").ok
    assert a.scalar(version_sql) == a.key_hash_version()
    h = a.key_hash_sql("e.entity_key")
    assert a.scalar(
        f"SELECT count(*) FROM idr_state.entities AS e JOIN idr_state.entity_lookup AS l "
        f"ON l.eid = e.eid AND l.key_hash = {h}"
    ) == len(membership)
