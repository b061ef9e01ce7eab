"""bench/write_floor.py: times writing a FULL run's state tables, reading its input only."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from app.demo import demo_config, generate
from app.pipeline.runner import run_pipeline
from app.platforms.duckdb import DuckDBAdapter
from app.schema import init_schema

REPO = Path(__file__).resolve().parents[2]


def _load(name: str, script: str) -> ModuleType:
    """bench/ holds scripts, not a package: load one by path (registered, for its dataclasses)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "bench" / script)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def _script() -> ModuleType:
    return _load("idr_write_floor", "write_floor.py")


def test_reports_every_state_table_and_leaves_the_input_as_it_was(tmp_path, capsys):
    db = tmp_path / "state.duckdb"
    a = DuckDBAdapter.from_path(str(db))
    generate(a, 2_000, seed=3)
    init_schema(a)
    _load("idr_bench_run", "run.py").apply_demo_config(a, demo_config(records=2_000))
    assert run_pipeline(a, "FULL").status.startswith("SUCCESS")
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
