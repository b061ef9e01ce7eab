"""bench/machine.py: the machine-speed figures printed beside every benchmark."""

from __future__ import annotations

from tests.demo.bench_scripts import load


def _script():
    return load("machine.py")


def test_cpu_task_grows_with_its_work():
    m = _script()
    small = m.cpu_seconds(rows=2_000_000, repeat=3)
    large = m.cpu_seconds(rows=40_000_000, repeat=3)
    assert 0 < small < large  # a fixed task: 20x the rows cannot take less time


def test_fresh_memory_is_reported_per_gib():
    wall, kernel = _script().fresh_memory_seconds(gib=0.125)
    assert wall > 0 and kernel >= 0
    assert kernel <= wall * 2 + 0.5  # kernel time of one thread cannot far exceed its wall time


def test_main_prints_one_line_and_refuses_bad_arguments(capsys):
    m = _script()
    assert m.main(["--repeat", "1", "--gib", "0.0625"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("machine now: cpu ") and "s/GiB" in out[0]
    assert m.main(["--repeat", "0"]) == 2
    assert m.main(["--gib", "0"]) == 2
    assert "--gib must be" in capsys.readouterr().err
