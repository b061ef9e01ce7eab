"""Every command that reads or writes a warehouse takes --target NAME (and defaults like the rest)."""

from __future__ import annotations

import json

import yaml

from app.platforms.duckdb import DuckDBAdapter


def test_every_warehouse_command_takes_target(cli, demo_db, tmp_path):
    path, run_id = demo_db
    env = {
        "IDR_TARGETS__OTHER__PLATFORM": "duckdb",
        "IDR_TARGETS__OTHER__PATH": str(path),
        "IDR_DUCKDB_PATH": str(tmp_path / "not-this-one.duckdb"),
    }
    t = ("--target", "other")
    assert cli("init", *t, env=env).exit_code == 0
    shown = cli("config", "show", *t, env=env)
    assert shown.exit_code == 0 and "crm_customers" in shown.stdout
    cfg = tmp_path / "cfg.yml"
    doc = yaml.safe_load(shown.stdout)
    doc["settings"] = {**doc.get("settings", {}), "dry_run_keep_last": 5}
    cfg.write_text(yaml.safe_dump(doc))
    assert cli("config", "apply", str(cfg), *t, env=env).exit_code == 0
    assert "dry_run_keep_last: 5" in cli("config", "show", *t, "--format", "yaml", env=env).stdout
    listed = cli("dry-runs", "list", *t, "--format", "json", env=env)
    assert [r["run_id"] for r in json.loads(listed.stdout)] == [run_id]
    assert cli("dry-runs", "show", run_id, *t, env=env).exit_code == 0
    assert cli("dry-runs", "changes", run_id, *t, env=env).exit_code == 0
    assert cli("dry-runs", "clusters", run_id, *t, env=env).exit_code == 0
    assert cli("dry-runs", "cleanup", *t, env=env).exit_code == 0
    r = cli("run", "--mode", "FULL", "--dry-run", "-q", *t, env=env)
    assert r.exit_code == 0, r.output
    r = cli("metrics", "export", "--provider", "stdout", *t, env=env)
    assert r.exit_code == 0 and "exported" in r.stderr
    # The configuration changed (a setting only: the partition's inputs did not), so the
    # reviewed dry run still applies.
    r = cli("dry-runs", "apply", run_id, *t, env=env)
    assert r.exit_code == 0, r.output
    assert cli("dry-runs", "delete", run_id, *t, env=env).exit_code == 0
    assert not (tmp_path / "not-this-one.duckdb").exists()
    with DuckDBAdapter.from_path(str(path)) as a:
        assert a.scalar("SELECT count(*) FROM idr_out.run_history WHERE applied_dry_run_id = $r", {"r": run_id}) == 1


def test_metrics_export_defaults_to_the_configured_warehouse(cli, demo_db):
    path, _ = demo_db
    r = cli("metrics", "export", "--provider", "stdout", env={"IDR_DUCKDB_PATH": str(path)})
    assert r.exit_code == 0, r.output
    assert any(line.startswith("{") for line in r.stdout.splitlines())
