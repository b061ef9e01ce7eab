"""The fault-injection hook bench/faults.py relies on (app/core/faults.py): an armed point
stops the process there (SIGSTOP) and nothing after it runs; other points and an unarmed
hook do nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
from app.core import faults
faults.reached("stage:edges")  # not armed yet: nothing
faults.arm("stage:components")
faults.reached("stage:edges")  # another point: nothing
print("before", flush=True)
faults.reached("stage:components")
print("after", flush=True)
"""


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_an_armed_point_stops_the_process_there():
    p = subprocess.Popen(
        [sys.executable, "-c", SCRIPT], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "before"
        deadline = time.monotonic() + 30
        while _state(p.pid) not in ("T", "t"):
            assert time.monotonic() < deadline, "the process did not stop"
            time.sleep(0.01)
    finally:
        os.kill(p.pid, signal.SIGKILL)
    out, err = p.communicate(timeout=30)
    assert "after" not in out
    assert "idr-fault: stopped at stage:components" in err
