"""Dry-run review from the CLI without SQL: list (whole ids), changes and clusters as tables,
JSON or CSV, filtered and paged; affected counts only entities whose id changes."""

from __future__ import annotations

import csv
import io
import json

import pytest

from app.platforms.duckdb import DuckDBAdapter


def _db_rows(path, sql, params=None):
    with DuckDBAdapter.from_path(str(path)) as a:
        return a.fetch_dicts(sql, params)


@pytest.mark.parametrize("columns", ["60", "80", "200"])
def test_list_never_cuts_run_ids(cli, demo_db, columns):
    path, run_id = demo_db
    r = cli("dry-runs", "list", "--db", str(path), env={"COLUMNS": columns})
    assert r.exit_code == 0, r.output
    assert run_id in r.stdout
    assert "…" not in r.stdout


def test_list_json_and_affected(cli, demo_db):
    path, run_id = demo_db
    r = cli("dry-runs", "list", "--db", str(path), "--format", "json")
    (row,) = json.loads(r.stdout)
    (counts,) = _db_rows(
        path,
        "SELECT count(*) FILTER (WHERE change_type <> 'UNCHANGED') AS changed, count(*) AS total "
        "FROM idr_out.dry_run_results WHERE run_id = $r",
        {"r": run_id},
    )
    assert row["run_id"] == run_id and row["status"] == "COMPLETE"
    assert 0 < row["affected_entities"] == counts["changed"] < counts["total"]


def test_show_counts_only_changed_entities_as_affected(cli, demo_db):
    path, run_id = demo_db
    r = cli("dry-runs", "show", run_id, "--db", str(path))
    assert r.exit_code == 0, r.output
    (s,) = _db_rows(path, "SELECT * FROM idr_out.dry_run_summary WHERE run_id = $r", {"r": run_id})
    affected = s["total_entities"] - s["unchanged_entities"]
    assert s["affected_entities"] == affected and s["unchanged_entities"] > 0
    line = next(x for x in r.stdout.splitlines() if "Entities Affected" in x)
    assert line.split()[-1] == f"{affected:,}"
    assert f"idr dry-runs changes {run_id}" in r.stdout


def test_changes_default_to_changed_entities_and_filter_by_type(cli, demo_db):
    path, run_id = demo_db
    expected = _db_rows(
        path,
        "SELECT entity_key, change_type FROM idr_out.dry_run_results WHERE run_id = $r "
        "AND change_type <> 'UNCHANGED' ORDER BY entity_key",
        {"r": run_id},
    )
    assert {e["change_type"] for e in expected} >= {"NEW", "MERGED", "REMOVED"}
    r = cli("dry-runs", "changes", run_id, "--db", str(path), "--format", "json", "--limit", "0")
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert [(g["entity_key"], g["change_type"]) for g in got] == [(e["entity_key"], e["change_type"]) for e in expected]
    r = cli("dry-runs", "changes", run_id, "--db", str(path), "--format", "csv", "--type", "merged,new", "--limit", "0")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert rows and {x["change_type"] for x in rows} == {"MERGED", "NEW"}
    assert len(rows) == sum(e["change_type"] in ("MERGED", "NEW") for e in expected)
    r = cli("dry-runs", "changes", run_id, "--db", str(path), "--type", "BOGUS")
    assert r.exit_code == 2 and "MERGED" in r.stderr


def test_changes_page_with_after(cli, demo_db):
    path, run_id = demo_db
    keys = []
    after: list[str] = []
    for _ in range(100):
        r = cli("dry-runs", "changes", run_id, "--db", str(path), "--format", "json", "--limit", "2", *after)
        page = json.loads(r.stdout)
        keys += [p["entity_key"] for p in page]
        if "--after" not in r.stderr:
            break
        after = ["--after", r.stderr.split("--after '", 1)[1].split("'", 1)[0]]
    everything = json.loads(
        cli("dry-runs", "changes", run_id, "--db", str(path), "--format", "json", "--limit", "0").stdout
    )
    assert keys == [e["entity_key"] for e in everything] and len(keys) > 2


def test_changes_table_keeps_entity_keys_whole(cli, demo_db):
    path, run_id = demo_db
    r = cli("dry-runs", "changes", run_id, "--db", str(path), "--limit", "0", env={"COLUMNS": "60"})
    assert r.exit_code == 0
    keys = [
        e["entity_key"]
        for e in json.loads(
            cli("dry-runs", "changes", run_id, "--db", str(path), "--format", "json", "--limit", "0").stdout
        )
    ]
    assert all(k in r.stdout for k in keys)


def test_clusters_lists_flows_with_members_that_moved(cli, demo_db):
    path, run_id = demo_db
    r = cli(
        "dry-runs",
        "clusters",
        run_id,
        "--db",
        str(path),
        "--format",
        "json",
        "--limit",
        "0",
        "--type",
        ",".join(["NEW", "MOVED", "MERGED", "SPLIT", "REMOVED", "UNCHANGED"]),
    )
    assert r.exit_code == 0, r.output
    flows = json.loads(r.stdout)
    assert flows and {f["change_type"] for f in flows} >= {"MERGED"}
    for f in flows:
        stayed = f["current_resolved_id"] == f["proposed_resolved_id"]
        assert f["members_moved"] == (0 if stayed else f["members"]), f
    r = cli("dry-runs", "clusters", run_id, "--db", str(path))
    assert r.exit_code == 0 and "moved" in r.stdout
    for f in flows:
        for rid in (f["current_resolved_id"], f["proposed_resolved_id"]):
            assert rid is None or rid in r.stdout


def test_unknown_dry_run_is_bad_input(cli, demo_db):
    path, _ = demo_db
    for cmd in ("show", "changes", "clusters"):
        r = cli("dry-runs", cmd, "dry_run_nope", "--db", str(path))
        assert r.exit_code == 2 and "not found" in r.stderr and "Traceback" not in r.output
