"""The same story on every platform ends with exactly DuckDB's membership, ids,
clusters, edges, golden profiles, audit rows and dry-run diffs, step by step."""

from __future__ import annotations

import pytest

from app.pipeline.publish import NOT_ATOMIC
from tests.platforms.conftest import PLATFORMS
from tests.platforms.story import EVIL, ODD, Warehouse, story_steps

_reference: dict[str, list] = {}


def reference(make_adapter) -> list:
    if "steps" not in _reference:
        _reference["steps"] = story_steps(Warehouse(make_adapter("duckdb")))
    return _reference["steps"]


def test_reference_story_on_duckdb_shows_each_scenario(make_adapter):
    """The reference itself is right (so equality with it means something)."""
    steps = dict(reference(make_adapter))
    full = steps["FULL"]["production"]
    m = dict(full["membership"])
    chain_a = {m[f"{'crm' if i % 3 else 'shop'}:a{i:02d}"] for i in range(12)}
    assert len(chain_a) == 1, "a 12-record chain across two sources is one cluster"
    assert len({m[f"crm:b{i:02d}"] for i in range(10)}) == 1
    assert m["crm:c1"] == m["shop:c2"] == m["crm:c3"]
    assert len({m[f"crm:j{i}"] for i in range(7)}) == 4, "junk email skipped; phone pairs still link"
    assert len({m["crm:x1"], m["shop:x2"], m["crm:x3"], m["crm:x4"]}) == 4, "excluded values link nothing"
    assert m[f"crm:{EVIL}"] == m["shop:q2"]
    assert all(f"crm:odd{i}:{v}" in m for i, v in enumerate(ODD))
    assert steps["FULL"]["skipped"][0][:4] == ("EMAIL", "test@test.com", 7, 5)
    dry = steps["dry INCR"]
    kinds = {k: t for k, _cur, _new, t, _cs, _ps in dry["dry_run_results"]}
    assert kinds["shop:bridge"] == "NEW" and kinds["crm:b00"] == "MERGED"
    assert kinds["crm:c1"] == "SPLIT" and kinds["crm:c3"] == "SPLIT"
    incr = dict(steps["INCR"]["production"]["membership"])
    assert incr["crm:b00"] == incr["shop:a00"] == m["shop:a00"], "merge keeps the larger cluster's id"
    assert len({incr["crm:c1"], incr["shop:c2"], incr["crm:c3"]}) == 3
    changes = {k: t for k, _c, _p, t, _a, _b in steps["dry FULL with a delete"]["dry_run_results"]}
    assert changes["crm:s1"] == "REMOVED"
    assert set(changes.values()) == {"REMOVED", "UNCHANGED"}, "FULL after INCR changes nothing else"
    # Deletes INCR sees: the soft-deleted bridge splits the merged chains again (A keeps its
    # id: most members, B gets a new one); reconciliation removes the hard-deleted crm:s1.
    kinds = {k: (t, cur, new) for k, cur, new, t, _cs, _ps in steps["dry INCR with deletes"]["dry_run_results"]}
    assert kinds["shop:bridge"][0] == "REMOVED" and kinds["crm:s1"][0] == "REMOVED"
    assert kinds["crm:b00"][0] == kinds["shop:a00"][0] == "SPLIT"
    after = dict(steps["INCR with deletes"]["production"]["membership"])
    assert "shop:bridge" not in after and "crm:s1" not in after
    assert after["shop:a00"] == incr["shop:a00"] and after["crm:b00"] not in (incr["crm:b00"], m["crm:b00"])
    assert steps["INCR with deletes"]["result"][-3] == [("erasure", 0), ("reconciliation", 1), ("soft_delete", 1)]
    assert steps["INCR with deletes"]["removals"] == [(1, 0, 1)]
    erased = {k: t for k, _c, _p, t, _a, _b in steps["dry INCR with an erasure"]["dry_run_results"]}
    assert erased[f"crm:{EVIL}"] == erased["shop:q2"] == "REMOVED"
    for step in ("INCR with an erasure", "INCR with a re-sent erased row"):
        gone = dict(steps[step]["production"]["membership"])
        assert f"crm:{EVIL}" not in gone and "shop:q2" not in gone, step
    assert steps["INCR with an erasure"]["result"][-2:] == ([2], 0)
    assert steps["INCR with an erasure"]["removals"] == [(0, 2, 0)]
    # Both sources deleted their row holding the email: lifted; the new record then resolves.
    assert steps["INCR with a re-sent erased row"]["result"][-1] == 0
    assert steps["INCR lifting the erasure"]["result"][-1] == 1
    assert "shop:q9" in dict(steps["INCR after the lift"]["production"]["membership"])


# Round trips per run of the story, (published runs, dry runs): the target is 40
# per FULL / INCR run (the bench's demo data); a dry run also reads its proposal's
# figures (the story's dry runs reach 41 on BigQuery, 40 on Spark). Snowflake
# sends multi-statement requests (its stand-in, tests/platforms/snowflake_standin.py, runs
# one as one call) but has no server-side loop: each component round is one round trip.
ROUND_TRIP_BUDGET = {"snowflake": (40, 45), "bigquery": (40, 45), "spark": (40, 45)}


@pytest.mark.parametrize("platform", [p for p in PLATFORMS if p != "duckdb"])
def test_story_matches_duckdb(platform, make_adapter):
    ref = reference(make_adapter)
    wh = Warehouse(make_adapter(platform))
    got = story_steps(wh)
    assert [name for name, _ in got] == [name for name, _ in ref]
    for (name, obs), (_, want) in zip(got, ref, strict=True):
        for key in want:
            assert obs[key] == want[key], f"{platform}: step {name!r}, {key} differs from DuckDB"
    # How each real run was published: Spark's per-table swaps say they are not atomic.
    for r in wh.runs:
        flagged = [w for w in r.warnings if NOT_ATOMIC in w]
        assert len(flagged) == (platform == "spark" and not r.dry_run), (r.run_id, r.warnings)
        if flagged:
            assert r.status == "SUCCESS_WITH_WARNINGS" and "per-table swaps" in flagged[0]
    trips = ", ".join(f"{r.mode}{' dry' if r.dry_run else ''} {r.statements}" for r in wh.runs)
    print(f"{platform}: story of {len(got)} runs in {wh.seconds:.1f}s; round trips per run: {trips}")
    published, dry = ROUND_TRIP_BUDGET[platform]
    assert all(0 < r.statements <= (dry if r.dry_run else published) for r in wh.runs), trips
