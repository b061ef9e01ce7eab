"""How fast this machine is right now: a fixed CPU task and the cost of fresh memory.

    python bench/machine.py [--repeat 3]

Benchmark figures on a VM move with the VM: the same FULL run on 1M records took 3.28 s
and 5.91 s a few hours later on the project's VM, with the same code. Printed beside a
run's figures (bench/run.py prints them first), these two numbers tell a slower machine
from a slower run:

- cpu: seconds DuckDB takes, on one thread, to hash and sum 200 million integers. Always
  the same work, so it moves only with the machine (best of ``--repeat``).
- fresh memory: wall and kernel seconds per GiB to write one byte into every page of
  memory this process has never used. Every run pays this for its peak memory; on a VM
  that hands freed guest memory back to its host it is large and varies with what ran
  before (bench/README.md: 0.3 to 2.5 s per GiB).
"""

from __future__ import annotations

import argparse
import mmap
import resource
import sys
import time
from dataclasses import dataclass

import duckdb
import numpy as np

CPU_ROWS = 200_000_000
PAGE = mmap.PAGESIZE


@dataclass(frozen=True)
class Machine:
    cpu_s: float  # the fixed DuckDB task, best of the repeats
    memory_s_per_gib: float  # wall seconds to touch a GiB of fresh memory
    memory_kernel_s_per_gib: float  # of which kernel (system) time

    def line(self) -> str:
        return (
            f"machine now: cpu {self.cpu_s:.2f} s (DuckDB, 1 thread, {CPU_ROWS:,} hashes; lower is faster), "
            f"fresh memory {self.memory_s_per_gib:.2f} s/GiB (kernel {self.memory_kernel_s_per_gib:.2f} s/GiB)"
        )


def cpu_seconds(rows: int = CPU_ROWS, repeat: int = 3) -> float:
    """Best time of a fixed, allocation-free DuckDB query on one thread."""
    with duckdb.connect() as conn:
        conn.execute("SET threads = 1")
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            conn.execute("SELECT sum(hash(i) >> 8) FROM range($n) AS t(i)", {"n": rows}).fetchall()
            best = min(best, time.perf_counter() - start)
    return best


def fresh_memory_seconds(gib: float = 1.0) -> tuple[float, float]:
    """(wall, kernel) seconds per GiB to fault in ``gib`` of anonymous memory never used
    before by this process: one byte written per page, then the mapping is released."""
    size = max(int(gib * (1 << 30)) // PAGE, 1) * PAGE
    buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        pages = np.frombuffer(buf, dtype=np.uint8)
        k0 = resource.getrusage(resource.RUSAGE_SELF).ru_stime
        start = time.perf_counter()
        pages[::PAGE] = 1
        wall = time.perf_counter() - start
        kernel = resource.getrusage(resource.RUSAGE_SELF).ru_stime - k0
        del pages  # the array holds a view of the mapping, which cannot close while exported
    finally:
        buf.close()
    per = (1 << 30) / size
    return wall * per, kernel * per


def measure(repeat: int = 3, gib: float = 1.0) -> Machine:
    mem_wall, mem_kernel = fresh_memory_seconds(gib)
    return Machine(cpu_seconds(repeat=repeat), mem_wall, mem_kernel)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="CPU task repetitions; the best is reported (default 3)")
    ap.add_argument("--gib", type=float, default=1.0, help="fresh memory to touch, in GiB (default 1)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        print("error: --repeat must be at least 1", file=sys.stderr)
        return 2
    if not 0 < args.gib <= 64:
        print("error: --gib must be in (0, 64]", file=sys.stderr)
        return 2
    print(measure(args.repeat, args.gib).line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
