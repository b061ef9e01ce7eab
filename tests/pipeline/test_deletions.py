"""Deletes that INCR runs see: soft-delete flags (deleted_flag_expr) and hard deletes found by
key reconciliation (reconcile_deletes); INCR removes what FULL removes, with the same ids."""

from __future__ import annotations

import pytest

from app.config.validate import validate_config
from app.core.errors import ConfigError
from tests.pipeline.test_incr_equals_full import state
from tests.pipeline.world import World, base_config, clone

CFG = {"tables": ("crm", "shop"), "soft_delete": True}


def _bridged(**extra) -> World:
    """R1 = crm:1 -email- crm:2 -phone- shop:3 (crm:2 is the bridge); R2 = crm:5 + shop:4."""
    w = World.create(**{**CFG, **extra})
    w.upsert("crm", "1", email="a@x.com", name="one", deleted=False)
    w.upsert("crm", "2", email="a@x.com", phone="555", name="two", deleted=False)
    w.upsert("shop", "3", phone="555", name="three", deleted=False)
    w.upsert("shop", "4", email="b@x.com", deleted=False)
    w.upsert("crm", "5", email="b@x.com", deleted=False)
    assert w.run("FULL").ok
    return w


def _diff(w: World, run_id: str) -> dict[str, tuple]:
    rows = w.adapter.fetchall(
        "SELECT entity_key, change_type, current_resolved_id, proposed_resolved_id "
        "FROM idr_out.dry_run_results WHERE run_id = $r",
        {"r": run_id},
    )
    return {r[0]: r[1:] for r in rows}


def test_soft_deleted_bridge_splits_the_cluster_as_full_does():
    w = _bridged()
    assert w.membership()["shop:3"] == w.membership()["crm:1"] == "R00000000001"
    w.soft_delete("crm", "2")
    full = clone(w)
    before = w.snapshot()
    dry = w.run("INCR", dry_run=True)
    assert dry.status == "DRY_RUN_COMPLETE", dry.error_message
    assert w.snapshot() == before  # a dry run changes nothing
    assert _diff(w, dry.run_id) == {
        "crm:2": ("REMOVED", "R00000000001", None),
        # split rule: the part with the smallest key (crm:1) keeps R1, shop:3 gets a new id
        "crm:1": ("SPLIT", "R00000000001", "R00000000001"),
        "shop:3": ("SPLIT", "R00000000001", "R00000000003"),
    }
    r = w.run("INCR")
    assert r.ok, r.error_message
    assert r.entities_removed == {"soft_delete": 1, "erasure": 0, "reconciliation": 0}
    assert w.membership() == {
        "crm:1": "R00000000001",
        "shop:3": "R00000000003",
        "crm:5": "R00000000002",
        "shop:4": "R00000000002",
    }
    # Its identifiers, edges and golden contributions are gone too.
    assert not w.adapter.fetchall(
        "SELECT * FROM idr_out.identity_edges_current WHERE 'crm:2' IN (left_entity_key, right_entity_key)"
    )
    assert not w.adapter.fetchall("SELECT * FROM idr_out.identifiers_current WHERE entity_key = 'crm:2'")
    assert not w.adapter.fetchall("SELECT * FROM idr_out.golden_profile_current WHERE attribute_value = 'two'")
    assert full.run("FULL").ok
    assert state(w) == state(full)


def test_soft_deleted_row_comes_back_when_unflagged_and_new_flagged_rows_never_enter():
    w = _bridged()
    w.upsert("crm", "9", email="a@x.com", deleted=True)  # born deleted: never resolved
    w.soft_delete("shop", "3")
    assert w.run("INCR").ok
    assert "crm:9" not in w.membership() and "shop:3" not in w.membership()
    w.upsert("shop", "3", phone="555", deleted=False)
    r = w.run("INCR")
    assert r.ok and r.entities_removed["soft_delete"] == 0
    assert w.membership()["shop:3"] == w.membership()["crm:1"]


def test_reconciliation_removes_a_hard_deleted_row_only_when_due():
    never = _bridged()
    never.delete("crm", "2")
    assert never.run("INCR").ok
    assert "crm:2" in never.membership()  # the default: only FULL runs see hard deletes

    w = _bridged(reconcile="every_run")
    w.delete("crm", "2")
    before = w.snapshot()
    dry = w.run("INCR", dry_run=True)
    assert w.snapshot() == before
    assert _diff(w, dry.run_id)["crm:2"] == ("REMOVED", "R00000000001", None)
    assert {k: v[0] for k, v in _diff(w, dry.run_id).items()} == {
        "crm:2": "REMOVED",
        "crm:1": "SPLIT",
        "shop:3": "SPLIT",
    }
    r = w.run("INCR")
    assert r.entities_removed == {"soft_delete": 0, "erasure": 0, "reconciliation": 1}
    assert "crm:2" not in w.membership() and w.membership()["shop:3"] != w.membership()["crm:1"]


def test_reconcile_interval_waits_for_its_time():
    w = _bridged(reconcile="1d")
    w.delete("shop", "4")
    # The FULL run compared every key: the next reconciliation is a day later.
    r = w.run("INCR")
    assert r.entities_removed["reconciliation"] == 0 and "shop:4" in w.membership()
    w.adapter.execute("UPDATE idr_meta.run_state SET last_reconciled_ts = last_reconciled_ts - INTERVAL 25 HOUR")
    r = w.run("INCR")
    assert r.entities_removed["reconciliation"] == 1 and "shop:4" not in w.membership()
    stamped = w.adapter.fetchall(
        "SELECT table_id FROM idr_meta.run_state WHERE last_reconciled_ts >= $t", {"t": r.started_at}
    )
    assert sorted(t for (t,) in stamped) == ["crm", "shop"]


def test_config_validation_of_deletion_settings():
    doc = base_config(["crm"])
    doc["sources"][0]["reconcile_deletes"] = "weekly"
    with pytest.raises(ConfigError) as info:
        validate_config(doc, None)
    assert any(e["field"] == "sources[0].reconcile_deletes" and "every_run" in e["message"] for e in info.value.errors)
    w = World.create(**CFG)
    doc = base_config(["crm", "shop"], soft_delete=True)
    doc["sources"][0]["deleted_flag_expr"] = "is_gone"
    with pytest.raises(ConfigError) as info:
        validate_config(doc, w.adapter)
    assert [e["field"] for e in info.value.errors] == ["sources[0].deleted_flag_expr"]
    doc["sources"][0]["deleted_flag_expr"] = "is_deleted; DROP TABLE x"
    with pytest.raises(ConfigError):
        validate_config(doc, w.adapter)
    doc["sources"][0]["deleted_flag_expr"] = "is_deleted OR name = 'gone'"
    doc["sources"][0]["reconcile_deletes"] = "6h"
    assert validate_config(doc, w.adapter).sources[0].reconcile_deletes == "6h"


def test_entities_removed_by_reason_in_metrics_export_and_on_metrics():
    from prometheus_client.parser import text_string_to_metric_families

    from app.metrics.collector import make_registry, render
    from app.platforms.duckdb import DuckDBAdapter

    w = _bridged(reconcile="every_run")
    w.soft_delete("crm", "2")
    w.delete("shop", "4")
    r = w.run("INCR")
    assert r.ok, r.error_message
    rows = w.adapter.fetchall(
        "SELECT json_extract_string(dimensions, '$.reason'), metric_value FROM idr_out.metrics_export "
        "WHERE run_id = $r AND metric_name = 'idr_entities_removed'",
        {"r": r.run_id},
    )
    assert dict(rows) == {"soft_delete": 1, "erasure": 0, "reconciliation": 1}
    body, _ = render(make_registry(lambda: DuckDBAdapter(lambda: w.adapter.conn.cursor())))
    seen = {
        (s.name, s.labels.get("reason"), s.labels.get("run_mode")): s.value
        for fam in text_string_to_metric_families(body.decode())
        for s in fam.samples
        if s.name.startswith("idr_entities_removed")
    }
    assert seen[("idr_entities_removed", "soft_delete", "INCR")] == 1
    assert seen[("idr_entities_removed", "reconciliation", "INCR")] == 1
    assert seen[("idr_entities_removed", "erasure", "INCR")] == 0
    assert seen[("idr_entities_removed_cumulative_total", "reconciliation", "INCR")] == 1


def _erasure_world() -> World:
    """R1 = crm:1 -email a@x.com- shop:3 -phone- crm:2; crm:5 alone."""
    w = World.create(**CFG)
    w.upsert("crm", "1", email="a@x.com", name="one", deleted=False)
    w.upsert("shop", "3", email="A@x.com ", phone="555", name="three", deleted=False)
    w.upsert("crm", "2", phone="555", name="two", deleted=False)
    w.upsert("crm", "5", email="b@x.com", deleted=False)
    assert w.run("FULL").ok
    return w


@pytest.mark.parametrize("mode", ["INCR", "FULL"])
def test_erasure_by_email_removes_every_holder_and_keeps_them_out(mode):
    from app.services import erasures

    w = _erasure_world()
    er = erasures.request(w.adapter, identifier_type="EMAIL", identifier_value=" A@X.com", requested_by="test")
    assert er["status"] == "PENDING" and er["runs"] == []
    # Never the value: only its salted hash.
    stored = repr(w.adapter.fetchall("SELECT * FROM idr_meta.erasure_suppression"))
    stored += repr(w.adapter.fetchall("SELECT * FROM idr_meta.erasure_request"))
    assert "a@x.com" not in stored.lower()
    before = w.snapshot()
    dry = w.run(mode, dry_run=True)
    assert w.snapshot() == before
    diff = _diff(w, dry.run_id)
    assert diff["crm:1"][0] == diff["shop:3"][0] == "REMOVED" and diff["crm:2"][0] in ("UNCHANGED", "MOVED")
    assert erasures.get(w.adapter, er["id"])["status"] == "PENDING"  # a dry run applies nothing
    r = w.run(mode)
    assert r.ok, r.error_message
    assert r.entities_removed["erasure"] == 2
    assert set(w.membership()) == {"crm:2", "crm:5"}
    assert not w.adapter.fetchall(
        "SELECT * FROM idr_out.identity_edges_current WHERE identifier_value_norm = 'a@x.com' "
        "UNION ALL SELECT entity_key, identifier_type, identifier_value_norm, NULL, NULL, NULL, NULL "
        "FROM idr_out.identifiers_current WHERE identifier_value_norm = 'a@x.com'"
    )
    got = erasures.get(w.adapter, er["id"])
    assert got["status"] == "APPLIED" and got["took_effect_in_run"] == r.run_id
    assert got["runs"][0]["run_id"] == r.run_id and got["runs"][0]["entities_removed"] == 2
    # The source re-sends the row (and a new record holds the email): both stay out.
    w.upsert("crm", "1", email="a@x.com", name="one again", deleted=False)
    w.upsert("crm", "7", email="a@x.com", deleted=False)
    r2 = w.run("INCR")
    assert r2.ok and set(w.membership()) == {"crm:2", "crm:5"}
    assert [x["run_id"] for x in erasures.get(w.adapter, er["id"])["runs"]] == [r.run_id, r2.run_id]
    full = clone(w)
    assert full.run("FULL").ok
    assert state(full) == state(w)


def test_erasure_by_key_and_bad_requests():
    from app.core.errors import ConfigError, NotFoundError
    from app.services import erasures

    w = _erasure_world()
    er = erasures.request(w.adapter, entity_keys=["crm:5"], requested_by="test")
    r = w.run("INCR")
    assert r.entities_removed["erasure"] == 1 and "crm:5" not in w.membership()
    assert r.erasures_applied == {er["id"]: 1}
    for kwargs, field in (
        ({}, "entity_keys"),
        ({"entity_keys": ["nokeyprefix"]}, "entity_keys[0]"),
        ({"identifier_type": "SHOE", "identifier_value": "x"}, "identifier.type"),
        ({"identifier_type": "PHONE", "identifier_value": "--"}, "identifier.value"),
    ):
        with pytest.raises(ConfigError) as info:
            erasures.request(w.adapter, requested_by="t", **kwargs)
        assert info.value.field == field
    with pytest.raises(NotFoundError):
        erasures.get(w.adapter, "er_00000000000000000000")


@pytest.mark.parametrize("mode", ["INCR", "FULL"])
def test_every_record_deleted(mode):
    """A run after the sources flagged or lost every record empties the state (FULL used
    to fail building an empty key order)."""
    w = _bridged(reconcile="every_run")
    for t, i in (("crm", "1"), ("crm", "2"), ("shop", "3")):
        w.soft_delete(t, i)
    w.delete("shop", "4")
    w.delete("crm", "5")
    r = w.run(mode)
    assert r.ok, r.error_message
    assert w.membership() == {} and w.clusters() == {}
    assert sum(r.entities_removed.values()) == 5


def _holds(w: World) -> list[tuple]:
    return w.adapter.fetchall("SELECT erasure_id, table_id, key_hash FROM idr_meta.erasure_holds ORDER BY 2, 3")


@pytest.mark.parametrize("how", ["soft_delete", "reconciliation", "full"])
def test_erasure_by_email_lifts_once_the_sources_deleted_every_row_it_held(how):
    """Erase by email -> the source re-sends the row: still out -> the source deletes one
    holder: still in force (another row holds the email) -> it deletes the last: lifted,
    and a new row with the email resolves normally."""
    from app.services import erasures

    mode = "FULL" if how == "full" else "INCR"
    w = World.create(**CFG, reconcile="every_run" if how == "reconciliation" else None)
    w.upsert("crm", "1", email="a@x.com", name="one", deleted=False)
    w.upsert("shop", "3", email="A@x.com ", phone="555", name="three", deleted=False)
    w.upsert("crm", "2", phone="555", name="two", deleted=False)
    w.upsert("crm", "5", email="b@x.com", deleted=False)
    assert w.run("FULL").ok

    def gone(table: str, id: str) -> None:
        if how == "soft_delete":
            w.soft_delete(table, id)
        else:
            w.delete(table, id)

    er = erasures.request(w.adapter, identifier_type="EMAIL", identifier_value="a@x.com", requested_by="test")
    r = w.run("INCR")
    assert r.ok and r.entities_removed["erasure"] == 2 and set(w.membership()) == {"crm:2", "crm:5"}
    holds = _holds(w)
    assert [(e, t) for e, t, _ in holds] == [(er["id"], "crm"), (er["id"], "shop")]
    assert "crm:1" not in repr(holds) and "shop:3" not in repr(holds)  # salted hashes, not keys
    w.upsert("crm", "1", email="a@x.com", name="one again", deleted=False)  # re-sent
    r2 = w.run("INCR")
    assert r2.ok and set(w.membership()) == {"crm:2", "crm:5"}
    assert erasures.get(w.adapter, er["id"])["status"] == "APPLIED"

    gone("crm", "1")
    r3 = w.run(mode)
    assert r3.ok, r3.error_message
    got = erasures.get(w.adapter, er["id"])
    assert got["status"] == "APPLIED" and got["lifted_at"] is None  # shop:3 still holds the email
    assert [t for _, t, _ in _holds(w)] == ["shop"]
    assert r3.erasures_lifted == []

    gone("shop", "3")
    r4 = w.run(mode)
    assert r4.ok, r4.error_message
    assert r4.erasures_lifted == [er["id"]]
    got = erasures.get(w.adapter, er["id"])
    assert got["status"] == "LIFTED" and got["lifted_in_run"] == r4.run_id and got["lifted_at"] is not None
    assert got["took_effect_in_run"] == r.run_id  # the history of the erasure stays
    assert _holds(w) == []
    assert not w.adapter.fetchall("SELECT * FROM idr_meta.erasure_suppression WHERE erasure_id = $e", {"e": er["id"]})

    # A new row with the email, after the lift: resolved like any other.
    w.upsert("crm", "9", email="A@X.com", name="nine", deleted=False)
    w.upsert("crm", "10", email="a@x.com", phone="555", name="ten", deleted=False)
    r5 = w.run("INCR")
    assert r5.ok and r5.entities_removed["erasure"] == 0
    m = w.membership()
    assert m["crm:9"] == m["crm:10"] == m["crm:2"]
    full = clone(w)
    assert full.run("FULL").ok
    assert state(full) == state(w)


def test_erasure_by_key_lifts_when_the_row_is_flagged_and_a_never_matched_one_stays():
    from app.services import erasures

    w = _erasure_world()
    er = erasures.request(w.adapter, entity_keys=["crm:5"], requested_by="test")
    never = erasures.request(w.adapter, entity_keys=["crm:404"], requested_by="test")
    assert w.run("INCR").ok and "crm:5" not in w.membership()
    w.soft_delete("crm", "5")
    r = w.run("INCR")
    assert r.ok and r.erasures_lifted == [er["id"]]
    assert erasures.get(w.adapter, er["id"])["status"] == "LIFTED"
    # Nothing ever matched crm:404: it stays in force, and keeps the row out when it comes.
    assert erasures.get(w.adapter, never["id"])["status"] == "APPLIED"
    w.upsert("crm", "404", email="z@x.com", deleted=False)
    w.upsert("crm", "5", email="b@x.com", name="back", deleted=False)  # the same key, re-inserted after the lift
    r2 = w.run("INCR")
    assert r2.ok and "crm:404" not in w.membership() and "crm:5" in w.membership()
    assert erasures.get(w.adapter, never["id"])["status"] == "APPLIED"


def test_a_dry_run_lifts_nothing():
    from app.services import erasures

    w = _erasure_world()
    er = erasures.request(w.adapter, entity_keys=["crm:5"], requested_by="test")
    assert w.run("INCR").ok
    w.soft_delete("crm", "5")
    before = w.snapshot(), _holds(w)
    assert w.run("INCR", dry_run=True).status == "DRY_RUN_COMPLETE"
    assert (w.snapshot(), _holds(w)) == before
    assert erasures.get(w.adapter, er["id"])["status"] == "APPLIED"
