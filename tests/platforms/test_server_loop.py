"""The components solver's server-side loop (BigQuery scripting, Spark SQL scripting)
gives the portable SQL rounds' partition in one request, however many rounds it takes."""

from __future__ import annotations

import random

import pytest

from app.core.settings import Settings
from app.pipeline.components import ServerLoop, solver_for
from app.pipeline.runner import run_pipeline
from tests.platforms.story import TABLES, Warehouse, base_rows

LOOPING = ["bigquery", "spark"]


def graph_rows() -> list[tuple[str, str, str | None, str | None, str | None]]:
    """The story's records, a 40-record chain (deep hook trees: several rounds) and a
    random graph."""
    rng = random.Random(11)
    rows = list(base_rows())
    for i in range(40):
        rows.append((TABLES[i % 2], f"chain{i:03d}", f"c{(i + 1) // 2}@x.io", f"c{i // 2:05d}", None))
    for i in range(60):
        rows.append((TABLES[i % 2], f"rnd{i:03d}", f"r{rng.randrange(30)}@x.io", f"r{rng.randrange(45):05d}", None))
    return rows


def partition(a) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for key, rid in a.fetchall("SELECT entity_key, resolved_id FROM idr_out.identity_resolved_membership_current"):
        groups.setdefault(rid, set()).add(key)
    return {frozenset(g) for g in groups.values()}


def run_counting_components(a, engine: str):
    """A FULL run, and the round trips its components stage made."""
    at: dict[str, int] = {}

    def progress(stage: str, event: str) -> None:
        if stage == "components":
            at[event] = a.round_trips

    r = run_pipeline(a, "FULL", settings=Settings(cc_engine=engine), progress=progress)
    return r, at.get("end", 0) - at.get("start", 0)


@pytest.mark.parametrize("platform", LOOPING)
def test_server_loop_gives_the_portable_partition(platform, make_adapter):
    a = make_adapter(platform)
    assert isinstance(solver_for(a), ServerLoop)  # the platform's default
    wh = Warehouse(a)
    wh.setup()
    wh.upsert_many(graph_rows())
    portable, portable_trips = run_counting_components(a, "sql")
    want = partition(a)
    script, script_trips = run_counting_components(a, "script")
    assert portable.ok and script.ok, (portable.error_message, script.error_message)
    assert partition(a) == want
    assert len(want) < len(graph_rows())  # records did link
    # Same keys per round: the same number of rounds, now turned in the warehouse.
    assert script.lp_iterations == portable.lp_iterations >= 3
    assert portable_trips >= portable.lp_iterations + 1
    assert script_trips == 2, script_trips  # the script, then the stage's counts
    print(f"{platform}: components stage {portable_trips} round trips (sql) -> {script_trips} (script), "
          f"{script.lp_iterations} rounds")


def test_server_loop_fails_at_the_round_cap(make_adapter):
    """Capped rounds fail the run (no partial result), as the portable path does."""
    a = make_adapter("bigquery")
    wh = Warehouse(a)
    wh.setup()
    wh.upsert_many(graph_rows())
    a.execute("UPDATE idr_meta.config SET config_value = '1' WHERE config_key = 'max_cc_rounds'")
    r, _ = run_counting_components(a, "script")
    assert r.status == "FAILED" and r.error_stage == "components"
    assert "max_cc_rounds=1" in (r.error_message or "")
    assert a.scalar("SELECT count(*) FROM idr_out.identity_resolved_membership_current") == 0
