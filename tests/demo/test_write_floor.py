"""bench/write_floor.py: times writing a FULL run's state tables, reading its input only."""

from __future__ import annotations

import hashlib
from types import ModuleType

from app.demo import demo_config, generate
from app.pipeline.runner import run_pipeline
from app.platforms.duckdb import DuckDBAdapter
from app.schema import init_schema
from tests.demo.bench_scripts import load


def _script() -> ModuleType:
    return load("write_floor.py")


def test_reports_every_state_table_and_leaves_the_input_as_it_was(tmp_path, capsys):
    db = tmp_path / "state.duckdb"
    a = DuckDBAdapter.from_path(str(db))
    generate(a, 2_000, seed=3)
    init_schema(a)
    load("run.py").apply_demo_config(a, demo_config(records=2_000))
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
