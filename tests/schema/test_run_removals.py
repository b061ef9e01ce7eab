"""The records each run removed, by reason, in run_history's own columns: written by every
run; on a warehouse whose run_history predates them, runs still work, and `idr init` adds
the columns and fills those of earlier runs from their metrics rows (erasures: from
idr_out.erasure_runs), once."""

from __future__ import annotations

from app.core.vocabulary import REMOVAL_COLUMNS
from app.pipeline.history import removals
from app.schema import init_schema
from app.schema.run_removals import INFO_KEY
from tests.pipeline.world import World

CFG = {"tables": ("crm", "shop"), "soft_delete": True, "reconcile": "every_run"}


def _world() -> World:
    w = World.create(**CFG)
    w.upsert("crm", "1", email="a@x.com", deleted=False)
    w.upsert("crm", "2", email="a@x.com", phone="555", deleted=False)
    w.upsert("shop", "3", phone="555", deleted=False)
    w.upsert("shop", "4", email="b@x.com", deleted=False)
    w.upsert("crm", "5", email="c@x.com", deleted=False)
    return w


def _deletes(w: World) -> list:
    """FULL, then an INCR that removes one record for each reason."""
    from app.services import erasures

    runs = [w.run("FULL")]
    w.soft_delete("crm", "2")
    w.delete("shop", "4")
    erasures.request(w.adapter, entity_keys=["crm:5"], requested_by="test")
    runs.append(w.run("INCR"))
    assert all(r.ok for r in runs), [r.error_message for r in runs]
    assert runs[1].entities_removed == {"soft_delete": 1, "erasure": 1, "reconciliation": 1}
    return runs


def test_every_run_records_its_removals_in_run_history():
    w = _world()
    full, incr = _deletes(w)
    assert removals(w.adapter, full.run_id) == {"soft_delete": 0, "erasure": 0, "reconciliation": 0}
    assert removals(w.adapter, incr.run_id) == {"soft_delete": 1, "erasure": 1, "reconciliation": 1}
    w.soft_delete("crm", "1")
    dry = w.run("INCR", dry_run=True)  # a dry run's row says what it would remove
    assert removals(w.adapter, dry.run_id) == {"soft_delete": 1, "erasure": 0, "reconciliation": 0}


def test_runs_of_the_previous_shape_are_filled_by_idr_init_once():
    w = _world()
    a = w.adapter
    # run_history as the previous version left it: no removal columns, nothing filled yet.
    for col in REMOVAL_COLUMNS.values():
        a.execute(f"ALTER TABLE idr_out.run_history DROP COLUMN {col}")
    a.execute("DELETE FROM idr_state.schema_info WHERE info_key = $k", {"k": INFO_KEY})
    full, incr = _deletes(w)  # runs work on the old shape
    assert removals(a, incr.run_id) == dict.fromkeys(REMOVAL_COLUMNS)  # not recorded
    # A run whose metrics rows were pruned: its erasures still tell, the rest stays unknown.
    a.execute("DELETE FROM idr_out.metrics_export WHERE run_id = $r", {"r": incr.run_id})
    a.execute(
        "INSERT INTO idr_out.metrics_export (run_id, metric_name, metric_value, dimensions) "
        "VALUES ($r, 'idr_entities_removed', 1, '{\"reason\":\"soft_delete\"}')",
        {"r": incr.run_id},
    )

    changes = init_schema(a)
    assert [c for c in changes if c.startswith("added column idr_out.run_history")] == [
        f"added column idr_out.run_history.{c}" for c in REMOVAL_COLUMNS.values()
    ]
    assert "filled idr_out.run_history's removal columns of 2 earlier run(s)" in changes
    assert removals(a, full.run_id) == {"soft_delete": 0, "erasure": 0, "reconciliation": 0}
    assert removals(a, incr.run_id) == {"soft_delete": 1, "erasure": 1, "reconciliation": None}
    assert not [c for c in init_schema(a) if "filled" in c]  # once

    # After the upgrade, runs write the columns themselves.
    w.soft_delete("crm", "1")
    r = w.run("INCR")
    assert r.ok and removals(a, r.run_id) == {"soft_delete": 1, "erasure": 0, "reconciliation": 0}
