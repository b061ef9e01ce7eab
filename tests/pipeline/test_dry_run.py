"""Dry runs: zero production impact, exact diffs, apply-what-you-reviewed, retention."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from app.core.errors import ConflictError, NotFoundError
from app.pipeline import dryrun, runner
from app.pipeline.context import utcnow
from app.pipeline.runner import run_pipeline
from app.platforms.duckdb import DuckDBAdapter
from app.services.runs import stages_total
from tests.pipeline.world import World, clone


def results(w: World, run_id: str) -> dict[str, tuple]:
    rows = w.adapter.fetchall(
        "SELECT entity_key, change_type, current_resolved_id, proposed_resolved_id, current_cluster_size, "
        "proposed_cluster_size FROM idr_out.dry_run_results WHERE run_id = $r",
        {"r": run_id},
    )
    return {r[0]: r[1:] for r in rows}


def summary(w: World, run_id: str) -> dict:
    return dryrun.get_summary(w.adapter, run_id)


def _two_clusters() -> World:
    w = World.create()
    w.upsert("crm", "a1", email="a@x.com")
    w.upsert("crm", "a2", email="a@x.com")
    w.upsert("crm", "a3", email="a@x.com")
    w.upsert("crm", "b1", email="b@x.com")
    w.upsert("crm", "b2", email="b@x.com")
    assert w.run().ok
    return w


@pytest.mark.parametrize("mode", ["FULL", "INCR"])
def test_dry_run_has_zero_production_impact(mode):
    w = _two_clusters()
    w.upsert("crm", "c", email="a@x.com", phone="1")
    w.upsert("crm", "b2", email="b@x.com", phone="1")
    w.delete("crm", "a3")
    before = w.snapshot()
    r = w.run(mode, dry_run=True)
    assert r.status == "DRY_RUN_COMPLETE", r.error_message
    assert w.snapshot() == before
    hist = w.adapter.fetchone("SELECT status, dry_run FROM idr_out.run_history WHERE run_id = $r", {"r": r.run_id})
    assert hist == ("DRY_RUN_COMPLETE", True)
    stages = w.adapter.fetchall("SELECT stage_name FROM idr_out.stage_metrics WHERE run_id = $r", {"r": r.run_id})
    assert ("dry_run_diff",) in stages and ("components",) in stages
    # The diff compares memberships only, so a dry run builds no golden profile.
    assert ("golden_profile",) not in stages
    # The service's progress bar counts the stages the runner will record.
    assert len(stages) == stages_total(dry_run=True, apply=False)
    real = w.run(mode)
    n_real = w.adapter.scalar("SELECT count(*) FROM idr_out.stage_metrics WHERE run_id = $r", {"r": real.run_id})
    assert n_real == stages_total(dry_run=False, apply=False)


def test_dry_run_failing_midway_has_zero_impact_and_leaves_no_results(monkeypatch):
    w = _two_clusters()
    w.upsert("crm", "c", email="a@x.com", phone="1")
    before = w.snapshot()
    real = dryrun.RunContext.run

    def failing(self, ref, params=None):
        if ref == "dryrun.cluster_changes":  # after results were inserted, inside the diff transaction
            raise RuntimeError("boom")
        return real(self, ref, params)

    monkeypatch.setattr(dryrun.RunContext, "run", failing)
    r = w.run("INCR", dry_run=True)
    assert (r.status, r.error_stage) == ("FAILED", "dry_run_diff")
    assert w.snapshot() == before
    assert results(w, r.run_id) == {}


def test_new_record_joining_an_existing_cluster():
    w = _two_clusters()
    rid_a = w.membership()["crm:a1"]
    w.upsert("crm", "a4", email="A@x.com")
    r = w.run("INCR", dry_run=True)
    assert results(w, r.run_id) == {
        "crm:a1": ("UNCHANGED", rid_a, rid_a, 3, 4),
        "crm:a2": ("UNCHANGED", rid_a, rid_a, 3, 4),
        "crm:a3": ("UNCHANGED", rid_a, rid_a, 3, 4),
        "crm:a4": ("NEW", None, rid_a, None, 4),
    }
    s = summary(w, r.run_id)
    assert (s["total_entities"], s["new_entities"], s["unchanged_entities"]) == (4, 1, 3)
    assert (s["merged_clusters"], s["split_clusters"], s["largest_proposed_cluster"]) == (0, 0, 4)
    assert s["edges_would_create"] == 1


def test_bridge_record_merging_two_clusters():
    w = _two_clusters()
    m = w.membership()
    rid_a, rid_b = m["crm:a1"], m["crm:b1"]
    w.upsert("crm", "bridge", email="a@x.com", phone="7")
    w.upsert("crm", "b1", email="b@x.com", phone="7")
    r = w.run("INCR", dry_run=True)
    res = results(w, r.run_id)
    # The larger current cluster (a: 3 members) keeps its id.
    assert {k: v[0] for k, v in res.items()} == {
        "crm:a1": "MERGED",
        "crm:a2": "MERGED",
        "crm:a3": "MERGED",
        "crm:b1": "MERGED",
        "crm:b2": "MERGED",
        "crm:bridge": "NEW",
    }
    assert {v[2] for v in res.values()} == {rid_a}
    assert res["crm:b2"] == ("MERGED", rid_b, rid_a, 2, 6)
    s = summary(w, r.run_id)
    assert (s["merged_clusters"], s["split_clusters"], s["largest_proposed_cluster"]) == (1, 0, 6)
    flows = dryrun.list_cluster_changes(w.adapter, r.run_id)
    # members: the flow from one current cluster into one proposed cluster; members_moved:
    # those whose id changes (a's three members keep theirs).
    assert {
        (f["current_resolved_id"], f["proposed_resolved_id"], f["members"], f["members_moved"], f["change_type"])
        for f in flows
    } == {
        (rid_a, rid_a, 3, 0, "MERGED"),
        (rid_b, rid_a, 2, 2, "MERGED"),
        (None, rid_a, 1, 1, "NEW"),
    }


def test_full_dry_run_after_the_linking_record_was_removed_splits_the_cluster():
    w = World.create()
    w.upsert("crm", "1", email="a@x.com")
    w.upsert("crm", "2", email="a@x.com", phone="5")
    w.upsert("crm", "3", phone="5")
    w.run()
    (rid,) = set(w.membership().values())
    w.delete("crm", "2")
    r = w.run("FULL", dry_run=True)
    res = results(w, r.run_id)
    assert res["crm:1"] == ("SPLIT", rid, rid, 3, 1)  # tie: the part with the smallest key keeps the id
    assert res["crm:3"][:3] == ("SPLIT", rid, "R00000000002")
    assert res["crm:2"] == ("REMOVED", rid, None, 3, None)
    s = summary(w, r.run_id)
    assert (s["split_clusters"], s["merged_clusters"], s["removed_entities"]) == (1, 0, 1)


def test_removed_source_record():
    w = _two_clusters()
    w.delete("crm", "b2")
    r = w.run("FULL", dry_run=True)
    res = results(w, r.run_id)
    rid_b = w.membership()["crm:b1"]
    assert res["crm:b2"] == ("REMOVED", rid_b, None, 2, None)
    assert res["crm:b1"] == ("UNCHANGED", rid_b, rid_b, 2, 1)
    assert summary(w, r.run_id)["removed_entities"] == 1


@pytest.mark.parametrize("mode", ["FULL", "INCR"])
def test_proposal_equals_what_the_real_run_writes_and_apply_matches_a_real_run(mode):
    w = _two_clusters()
    w.upsert("crm", "bridge", email="a@x.com", phone="7")
    w.upsert("crm", "b1", email="b@x.com", phone="7")
    w.upsert("crm", "a3", email="other@x.com")
    other = clone(w)
    r = w.run(mode, dry_run=True)
    proposed = {k: v[2] for k, v in results(w, r.run_id).items() if v[2] is not None}
    applied = runner.apply_dry_run(w.adapter, r.run_id)
    assert applied.ok, applied.error_message
    hist = w.adapter.fetchone(
        "SELECT applied_dry_run_id FROM idr_out.run_history WHERE run_id = $r", {"r": applied.run_id}
    )
    assert hist == (r.run_id,)
    assert {k: v for k, v in w.membership().items() if k in proposed} == proposed
    real = other.run(mode)
    assert real.ok
    skip = {"idr_meta.run_state"}  # holds run ids
    tables = [t for t in w.snapshot() if t not in skip]
    strip = lambda rows: sorted(tuple(c for c in row if not hasattr(c, "year")) for row in rows)  # noqa: E731
    a, b = w.snapshot(tables), other.snapshot(tables)
    for t in tables:
        a[t] = strip(x for x in a[t] if not any(isinstance(c, str) and c.startswith("run_") for c in x))
        b[t] = strip(x for x in b[t] if not any(isinstance(c, str) and c.startswith("run_") for c in x))
    assert a == b


def test_apply_is_refused_after_a_source_change_and_writes_nothing():
    w = _two_clusters()
    w.upsert("crm", "c", email="a@x.com")
    r = w.run("INCR", dry_run=True)
    w.adapter.execute("UPDATE src.crm SET name = 'changed' WHERE id = 'b1'")
    before = w.snapshot()
    runs_before = w.adapter.scalar("SELECT count(*) FROM idr_out.run_history")
    with pytest.raises(ConflictError, match="source crm changed"):
        runner.apply_dry_run(w.adapter, r.run_id)
    assert w.snapshot() == before
    assert w.adapter.scalar("SELECT count(*) FROM idr_out.run_history") == runs_before


def test_apply_is_refused_after_another_run_and_after_a_config_change():
    w = _two_clusters()
    w.upsert("crm", "c", email="a@x.com")
    r1 = w.run("INCR", dry_run=True)
    w.adapter.execute("UPDATE idr_meta.rule SET max_group_size = 3 WHERE rule_id = 'R_EMAIL'")
    with pytest.raises(ConflictError, match="configuration"):
        runner.apply_dry_run(w.adapter, r1.run_id)
    r2 = w.run("INCR", dry_run=True)
    assert w.run("INCR").ok
    with pytest.raises(ConflictError, match="production state changed"):
        runner.apply_dry_run(w.adapter, r2.run_id)


def test_cleanup_removes_only_expired_dry_runs_and_never_real_runs(monkeypatch):
    w = _two_clusters()
    old1 = w.run("FULL", dry_run=True).run_id
    old2 = w.run("FULL", dry_run=True).run_id
    fresh = w.run("FULL", dry_run=True).run_id
    real = w.run("FULL").run_id
    ago = utcnow() - timedelta(days=10)
    for rid in (old1, old2, real):
        w.adapter.execute("UPDATE idr_out.run_history SET started_at = $t WHERE run_id = $r", {"t": ago, "r": rid})
    w.adapter.execute(
        "INSERT INTO idr_out.skipped_identifier_groups (run_id, identifier_type) VALUES ($r, 'EMAIL')", {"r": real}
    )
    w.adapter.execute("UPDATE idr_meta.config SET config_value = '1' WHERE config_key = 'dry_run_keep_last'")
    assert sorted(dryrun.cleanup(w.adapter)) == sorted([old1, old2])
    assert results(w, old1) == {} and results(w, old2) == {}
    assert results(w, fresh) != {}
    assert (
        w.adapter.scalar("SELECT count(*) FROM idr_out.skipped_identifier_groups WHERE run_id = $r", {"r": real}) == 1
    )
    assert dryrun.cleanup(w.adapter) == []  # idempotent
    # keep_last keeps the newest regardless of age
    w.adapter.execute("UPDATE idr_out.run_history SET started_at = $t WHERE run_id = $r", {"t": ago, "r": fresh})
    assert dryrun.cleanup(w.adapter) == []
    with pytest.raises(NotFoundError):
        dryrun.delete_dry_run(w.adapter, real)  # a real run is never a dry run
    assert dryrun.delete_dry_run(w.adapter, fresh) is True
    assert dryrun.delete_dry_run(w.adapter, fresh) is False


def test_concurrent_dry_runs_and_a_real_run(tmp_path):
    path = str(tmp_path / "w.duckdb")
    w = World.create(path=path)
    for i in range(30):
        w.upsert("crm", str(i), email=f"e{i % 7}@x.com", phone=f"{i % 5}")
    w.run()
    w.upsert("crm", "new", email="e1@x.com", phone="9")
    w.adapter.close()
    out: dict[str, object] = {}

    def go(name: str, dry: bool) -> None:
        a = DuckDBAdapter.from_path(path)
        try:
            out[name] = run_pipeline(a, "INCR", dry_run=dry)
        finally:
            a.close()

    threads = [threading.Thread(target=go, args=(n, d)) for n, d in (("d1", True), ("d2", True), ("real", False))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = {k: (v.status, v.error_message) for k, v in out.items()}
    assert statuses["d1"][0] == statuses["d2"][0] == "DRY_RUN_COMPLETE", statuses
    assert statuses["real"][0] == "SUCCESS", statuses
    a = DuckDBAdapter.from_path(path)
    d1 = a.fetchall(
        "SELECT entity_key, proposed_resolved_id FROM idr_out.dry_run_results WHERE run_id = $r ORDER BY 1",
        {"r": out["d1"].run_id},
    )
    d2 = a.fetchall(
        "SELECT entity_key, proposed_resolved_id FROM idr_out.dry_run_results WHERE run_id = $r ORDER BY 1",
        {"r": out["d2"].run_id},
    )
    assert d1 == d2 and d1
    assert a.list_tables("idr_work") == []
    a.close()


def test_runner_refuses_unknown_mode():
    w = World.create()
    with pytest.raises(runner.PipelineError):
        run_pipeline(w.adapter, "SOMETIMES")
