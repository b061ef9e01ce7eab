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
