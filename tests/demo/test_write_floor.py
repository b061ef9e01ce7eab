"""bench/write_floor.py: times writing a FULL run's state tables, reading its input only."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import ModuleType

import pytest

from app.demo import demo_config, generate
from app.pipeline.runner import run_pipeline
from app.platforms.duckdb import DuckDBAdapter
from app.schema import init_schema
from tests.demo.bench_scripts import load


def _script() -> ModuleType:
    return load("write_floor.py")


def _full_state(tmp_path, seed: int) -> tuple[Path, DuckDBAdapter]:
    """A database holding a FULL run's state over 2,000 generated records (left open)."""
    db = tmp_path / "state.duckdb"
    a = DuckDBAdapter.from_path(str(db))
    generate(a, 2_000, seed=seed)
    init_schema(a)
    load("run.py").apply_demo_config(a, demo_config(records=2_000))
    assert run_pipeline(a, "FULL").status.startswith("SUCCESS")
    return db, a


def test_reports_every_state_table_and_leaves_the_input_as_it_was(tmp_path, capsys):
    db, a = _full_state(tmp_path, seed=3)
    counts = {t: a.scalar(f'SELECT count(*) FROM idr_out."{t}"') for t in _script().TABLES}
    a.close()
    before = hashlib.sha256(db.read_bytes()).hexdigest()

    wf = _script()
    times = wf.measure(db, repeat=2)
    assert set(times) == set(wf.TABLES) and all(len(v) == 2 and min(v) > 0 for v in times.values())
    assert wf.main([str(db), "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    for t, n in counts.items():
        assert n > 0
        assert f"{n:,}" in next(line for line in out.splitlines() if t in line)
    assert f"{sum(counts.values()):,}" in next(line for line in out.splitlines() if "total" in line)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before  # read only
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.duckdb"]  # its output file is gone


def test_refuses_a_missing_file_or_a_database_without_state(tmp_path, capsys):
    wf = _script()
    assert wf.main([str(tmp_path / "absent.duckdb")]) == 2
    empty = tmp_path / "empty.duckdb"
    DuckDBAdapter.from_path(str(empty)).execute("CREATE TABLE t (x INT)")
    assert wf.main([str(empty)]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "holds no FULL run's state" in err


def test_integer_layouts_hold_the_same_facts(tmp_path, capsys):
    """--layout integer-keys[-wide]: the same rows (golden: one per cluster when wide),
    every entity key once, and nothing lost in the joins to the integer ids."""
    db, a = _full_state(tmp_path, seed=5)
    n = {t: int(a.scalar(f'SELECT count(*) FROM idr_out."{t}"')) for t in _script().TABLES}
    keys = int(a.scalar("SELECT count(*) FROM idr_out.identity_resolved_membership_current"))
    clusters_with_golden = int(a.scalar("SELECT count(DISTINCT resolved_id) FROM idr_out.golden_profile_current"))
    a.close()

    wf = _script()
    rows, times = wf._measure(db, 1, "integer-keys")
    assert rows == {"entity_keys": keys, **n}  # every join to an id kept every row
    assert all(len(v) == 1 and v[0] > 0 for v in times.values())
    wide, _ = wf._measure(db, 1, "integer-keys-wide")
    assert wide == {**rows, "golden_profile_current": clusters_with_golden}
    assert clusters_with_golden < n["golden_profile_current"]

    assert wf.main([str(db), "--repeat", "1", "--layout", "integer-keys-wide"]) == 0
    out = capsys.readouterr().out
    assert "layout integer-keys-wide" in out.splitlines()[0]
    assert f"{keys:,}" in next(line for line in out.splitlines() if line.lstrip().startswith("entity_keys"))
    with pytest.raises(SystemExit):
        wf.main([str(db), "--layout", "strings"])  # argparse refuses an unknown layout
    assert "invalid choice" in capsys.readouterr().err
