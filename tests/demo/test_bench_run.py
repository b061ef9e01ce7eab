"""bench/run.py end to end on a small dataset: every run succeeds and is checked."""

from __future__ import annotations

from tests.demo.bench_scripts import load


def test_full_again_is_a_checked_full_over_the_state_the_incr_runs_left(tmp_path, capsys):
    db = tmp_path / "bench.duckdb"
    rc = load("run.py").main(["--records", "3000", "--delta", "0.01", "--full-again", "--check", "--db", str(db)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.count("== FULL: status SUCCESS") == 2 and out.count("== INCR: status SUCCESS") == 1
    assert out.index("FULL again") > out.index("== INCR: status")
    assert out.count("OK    partition identical") == 3  # after FULL, INCR and FULL again
    assert "DIFF" not in out and out.rstrip().endswith("result: OK")
    assert not db.exists()  # no --keep
    # Each run reports its kernel time, per stage and in total (the VM's page-fault cost).
    assert out.count("kernel CPU s") == 3
    header = next(line for line in out.splitlines() if line.lstrip().startswith("stage "))
    assert header.split()[-2:] == ["kernel", "s"]
    extract = next(line for line in out.splitlines() if line.lstrip().startswith("extract_entities"))
    assert float(extract.split()[-1]) >= 0
    # The machine's speed, before and after, so figures from different hours compare.
    machine = [line for line in out.splitlines() if line.startswith("machine now: cpu ")]
    assert len(machine) == 2 and out.index(machine[0]) < out.index("== FULL")
