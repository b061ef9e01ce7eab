"""A failing run changes no production table and says where it failed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.pipeline import runner, steps
from app.platforms.changes import Statement
from app.platforms.duckdb import DuckDBAdapter
from tests.pipeline.world import World


def _seeded() -> World:
    w = World.create()
    w.upsert("crm", "1", email="a@x.com", name="Ann")
    w.upsert("crm", "2", email="a@x.com")
    w.upsert("crm", "3", email="b@x.com")
    assert w.run().ok
    w.upsert("crm", "4", email="b@x.com", phone="1")
    w.upsert("crm", "5", phone="1")
    return w


def _history(w: World, run_id: str):
    return w.adapter.fetchone(
        "SELECT status, error_stage, error_message FROM idr_out.run_history WHERE run_id = $r", {"r": run_id}
    )


@pytest.mark.parametrize("mode", ["FULL", "INCR"])
def test_broken_identifier_expression_fails_in_extract_and_changes_nothing(mode):
    w = _seeded()
    before = w.snapshot()
    # Bypass config validation, as a user editing idr_meta by hand could.
    w.adapter.execute(
        "UPDATE idr_meta.identifier_mapping SET identifier_value_expr = 'CAST(email AS INTEGER)' "
        "WHERE identifier_type = 'EMAIL'"
    )
    r = w.run(mode)
    assert r.status == "FAILED"
    assert r.error_stage == "extract_entities"
    assert "Conversion Error" in r.error_message or "convert" in r.error_message.lower()
    assert w.snapshot() == before
    assert _history(w, r.run_id)[:2] == ("FAILED", "extract_entities")
    # No scratch tables are left behind.
    assert w.adapter.list_tables("idr_work") == []


def test_failure_in_a_later_stage(monkeypatch):
    w = _seeded()
    before = w.snapshot()

    def boom(ctx):
        raise RuntimeError("disk full")

    monkeypatch.setattr(
        steps, "STEPS", tuple(replace(s, sql=None, build=boom) if s.name == "comp_ids" else s for s in steps.STEPS)
    )
    r = w.run("INCR")
    assert (r.status, r.error_stage) == ("FAILED", "resolve_ids")
    assert "disk full" in r.error_message
    assert w.snapshot() == before


def test_failure_inside_the_publish_transaction_rolls_everything_back(monkeypatch):
    w = _seeded()
    before = w.snapshot()
    real_send = DuckDBAdapter.send_write
    sent = []

    def failing_send(self, write):
        sent.append(write)
        if isinstance(write, Statement) and "resolved_id_sequence" in write.sql:
            raise RuntimeError("connection lost")  # late in the change set: most tables already written
        return real_send(self, write)

    monkeypatch.setattr(DuckDBAdapter, "send_write", failing_send)
    r = w.run("INCR")
    assert (r.status, r.error_stage) == ("FAILED", "publish")
    assert w.snapshot() == before
    assert len(sent) > 10  # the state tables' writes had been sent
    monkeypatch.undo()
    # ... and the same run simply works when repeated.
    r2 = w.run("INCR")
    assert r2.ok
    assert len({w.membership()[k] for k in ("crm:3", "crm:4", "crm:5")}) == 1


def test_component_cap_fails_loudly_instead_of_returning_a_wrong_partition():
    w = World.create()
    for i in range(40):
        w.upsert("crm", f"{i:02d}", email=f"e{(i + 1) // 2}@x.com", phone=f"{i // 2:04d}")
    before = w.snapshot()
    w.adapter.execute("UPDATE idr_meta.config SET config_value = '1' WHERE config_key = 'max_cc_rounds'")
    r = w.run(engine="sql")
    assert (r.status, r.error_stage) == ("FAILED", "components")
    assert "max_cc_rounds" in r.error_message
    assert w.snapshot() == before


def test_a_run_that_lost_a_publish_race_writes_nothing(monkeypatch):
    w = _seeded()
    real_prepare = runner.publish.prepare

    def sneaky(ctx):
        # Another writer publishes while this run is between compute and publish.
        w.adapter.execute(
            "INSERT INTO idr_out.run_history (run_id, run_mode, status, started_at, ended_at, dry_run) "
            "VALUES ('run_other', 'INCR', 'SUCCESS', now(), now() + INTERVAL 1 HOUR, FALSE)"
        )
        return real_prepare(ctx)

    before = w.snapshot()
    monkeypatch.setattr(runner.publish, "prepare", sneaky)
    r = w.run("INCR")
    assert (r.status, r.error_stage) == ("FAILED", "publish")
    assert "another run was published" in r.error_message
    assert w.snapshot() == before


def test_config_change_makes_incr_run_as_full():
    w = _seeded()
    assert w.run("INCR").ok
    w.adapter.execute(
        "INSERT INTO idr_meta.identifier_exclusion (identifier_type, identifier_value_pattern, match_type) "
        "VALUES ('EMAIL', 'a@x.com', 'EXACT')"
    )
    r = w.run("INCR")
    assert r.status == "SUCCESS_WITH_WARNINGS"
    assert any("INCR ran as FULL" in x for x in r.warnings)
    assert w.membership()["crm:1"] != w.membership()["crm:2"]  # the excluded email no longer links them


def test_scratch_tables_of_a_dead_run_are_swept_by_the_next_run():
    w = _seeded()
    # A run killed mid-way leaves its scratch tables and a RUNNING history row behind.
    w.adapter.execute("CREATE TABLE idr_work.wdeadbeef00_entities AS SELECT 1 AS x")
    w.adapter.execute("CREATE TABLE idr_work.wlivebeef00_entities AS SELECT 1 AS x")
    w.adapter.execute(
        "INSERT INTO idr_out.run_history (run_id, status, started_at, work_tag, dry_run) "
        "VALUES ('run_dead', 'FAILED', now(), 'wdeadbeef00', FALSE), "
        "('run_live', 'RUNNING', now(), 'wlivebeef00', TRUE)"
    )
    assert w.run("INCR").ok
    assert w.adapter.list_tables("idr_work") == ["wlivebeef00_entities"]
