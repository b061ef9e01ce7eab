"""idr against the bare prototype of the same stages (../shared/floor), on the same data,
each as a whole process, one after the other: wall seconds, peak RSS and the ratios.

    python bench/floor_compare.py 1000000 [--delta 0.001,0.01] [--floor DIR] [--work DIR]

1. generates the prototype's data set (``gen_idr_data.py --entities N --seed S --truth
   --delta-frac max(delta)``), cached under ``--work``;
2. loads it into a DuckDB file (``load.py``) and copies it twice;
3. runs the prototype's FULL (``run_full.py DB A OUT --no-persist-ids``);
4. runs ``idr init``, ``idr config apply`` (``idr_config.py``: four rules, the junk
   values as exclusions, no attributes) and ``idr run --mode FULL`` on the other copy;
5. for each delta fraction: appends that share of the generator's delta rows to a copy
   of the post-FULL file and runs ``idr run --mode INCR`` (whole process);
6. checks every partition against the generator's truth (the ids of distinct
   resolved clusters, persons and pairs over the joined rows are equal, every truth row
   joins) and prints ``bench/machine.py``'s figures before and after.

Exit 1 if a run fails or a partition differs from the truth.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import machine  # noqa: E402

TABLES = ("crm_customers", "orders", "web_loyalty")


@dataclass
class Measured:
    label: str
    seconds: float
    peak_mb: float
    ok: bool
    detail: str = ""
    cpu: float = 0.0  # user + system seconds of the process: less moved by a busy machine than wall time


# A child's ru_maxrss counts the memory it had before exec, which after a fork of this
# (large) process is ours: a tiny interpreter forks the command instead and reports its usage.
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, u = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{u.ru_maxrss} {u.ru_utime + u.ru_stime}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(label: str, cmd: list[str], env: dict[str, str] | None = None) -> Measured:
    """One whole process: wall seconds, CPU seconds and its own peak RSS."""
    with tempfile.NamedTemporaryFile("r", suffix=".usage") as usage:
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-S", "-c", _LAUNCHER, usage.name, *cmd],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
        )
        seconds = time.perf_counter() - start
        maxrss_kib, cpu = usage.read().split() or ("0", "0")
    ok = proc.returncode == 0
    if not ok:
        print(f"--- {label} failed:\n{proc.stdout}", file=sys.stderr)
    return Measured(label, seconds, int(maxrss_kib) / 1024, ok, proc.stdout, float(cpu))


def generate(floor: Path, work: Path, n: int, seed: int, delta: float) -> Path:
    data = work / f"data_{n}_{seed}_{delta}"
    if not (data / "manifest.json").exists():
        shutil.rmtree(data, ignore_errors=True)
        subprocess.run(
            [
                sys.executable,
                str(floor / "gen_idr_data.py"),
                "--entities",
                str(n),
                "--seed",
                str(seed),
                "--out",
                str(data),
                "--truth",
                "--delta-frac",
                str(delta),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return data


def copy_db(src: Path, dst: Path) -> Path:
    for suffix in ("", ".wal"):
        if Path(f"{dst}{suffix}").exists():
            os.remove(f"{dst}{suffix}")
    shutil.copyfile(src, dst)
    return dst


def append_delta(db: Path, data: Path, fraction_of_delta: float) -> int:
    """Append the first share of each delta table to its source table; returns rows added."""
    con = duckdb.connect(str(db))
    added = 0
    try:
        for t in TABLES:
            f = data / "delta" / f"{t}.parquet"
            if not f.exists():
                continue
            n = con.execute("SELECT count(*) FROM read_parquet($f)", {"f": str(f)}).fetchall()[0][0]
            k = round(n * fraction_of_delta)
            con.execute(f"INSERT INTO src.{t} SELECT * FROM read_parquet($f) LIMIT {k}", {"f": str(f)})
            added += k
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return added


def truth_check(db: Path, data: Path, membership_sql: str, with_delta: bool) -> tuple[bool, str]:
    """The partition equals the generator's: every truth row joins, and distinct clusters =
    distinct persons = distinct (cluster, person) pairs."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        truth = (
            "SELECT table_id || ':' || CAST(entity_id AS VARCHAR) AS k, person_id "
            f"FROM read_parquet('{data}/truth.parquet')"
        )
        if with_delta:
            truth += (
                f" UNION ALL SELECT table_id || ':' || CAST(entity_id AS VARCHAR), person_id "
                f"FROM read_parquet('{data}/delta/truth.parquet') "
                f"WHERE table_id || ':' || CAST(entity_id AS VARCHAR) IN (SELECT k FROM ({membership_sql}))"
            )
        row = con.execute(
            f"WITH t AS ({truth}), m AS ({membership_sql}) "
            "SELECT count(*), count(m.k), count(DISTINCT m.c), count(DISTINCT t.person_id), "
            "count(DISTINCT (m.c, t.person_id)) FROM t LEFT JOIN m ON m.k = t.k"
        ).fetchall()[0]
    finally:
        con.close()
    rows, joined, clusters, persons, pairs = row
    ok = rows == joined and clusters == persons == pairs
    return ok, f"{rows:,} rows, {clusters:,} clusters, {persons:,} persons, {pairs:,} pairs"


def idr_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", *args]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("records", type=int)
    p.add_argument("--delta", default="0.001,0.01", help="delta fractions of N for the INCR runs ('' for none)")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument(
        "--floor", type=Path, default=Path(os.environ.get("IDR_FLOOR_DIR", ROOT.parent / "shared" / "floor"))
    )
    p.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "floor")
    p.add_argument("--variant", default="A", choices=("A", "B"), help="prototype's components: A SQL, B scipy")
    args = p.parse_args(argv)
    deltas = [float(x) for x in args.delta.split(",") if x.strip()]
    if args.records < 1 or any(not 0 < d <= 0.5 for d in deltas):
        print("records must be positive and each delta in (0, 0.5]", file=sys.stderr)
        return 2
    if not (args.floor / "run_full.py").exists():
        print(f"the floor prototype is not at {args.floor} (--floor DIR or IDR_FLOOR_DIR)", file=sys.stderr)
        return 2
    args.work.mkdir(parents=True, exist_ok=True)
    n = args.records
    print(machine.measure().line(), flush=True)
    data = generate(args.floor, args.work, n, args.seed, max(deltas, default=0.001))
    loaded = args.work / f"loaded_{n}_{args.seed}.duckdb"
    if not loaded.exists():
        subprocess.run(
            [sys.executable, str(args.floor / "load.py"), str(data), str(loaded)], check=True, stdout=subprocess.DEVNULL
        )
    floor_db = copy_db(loaded, args.work / "floor.duckdb")
    idr_db = copy_db(loaded, args.work / "idr.duckdb")
    cfg = args.work / "floor-config.yml"
    cfg.write_text(
        subprocess.run(
            [sys.executable, str(args.floor / "idr_config.py"), str(data)], check=True, capture_output=True, text=True
        ).stdout
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    results: list[tuple[Measured, str]] = []

    floor = run_measured(
        "prototype FULL",
        [
            sys.executable,
            str(args.floor / "run_full.py"),
            str(floor_db),
            args.variant,
            str(args.work / "floor.json"),
            "--no-persist-ids",
        ],
    )
    ok, d = truth_check(floor_db, data, "SELECT entity_key AS k, resolved_id AS c FROM idr_membership", False)
    results.append((floor, d if ok else "DIFFERS: " + d))
    for step in (idr_cmd("init", "--db", str(idr_db)), idr_cmd("config", "apply", str(cfg), "--db", str(idr_db))):
        subprocess.run(step, check=True, env=env, stdout=subprocess.DEVNULL)
    idr_membership = "SELECT entity_key AS k, resolved_id AS c FROM idr_out.identity_resolved_membership_current"
    full = run_measured("idr FULL", idr_cmd("run", "--mode", "FULL", "--db", str(idr_db)), env)
    ok_full, d = truth_check(idr_db, data, idr_membership, False) if full.ok else (False, "run failed")
    results.append((full, d if ok_full else "DIFFERS: " + d))
    all_ok = floor.ok and ok and full.ok and ok_full
    biggest = max(deltas, default=0)
    for fr in deltas:
        db = copy_db(idr_db, args.work / f"idr_incr_{fr}.duckdb")
        added = append_delta(db, data, fr / biggest)
        incr = run_measured(
            f"idr INCR {fr:.1%} ({added:,} rows)", idr_cmd("run", "--mode", "INCR", "--db", str(db)), env
        )
        ok_i, d = truth_check(db, data, idr_membership, True) if incr.ok else (False, "run failed")
        results.append((incr, d if ok_i else "DIFFERS: " + d))
        all_ok = all_ok and incr.ok and ok_i
        os.remove(db)
    print(machine.measure().line(), flush=True)
    base, base_cpu = floor.seconds, floor.cpu
    print(f"\n{n:,} records · prototype variant {args.variant} · each a whole process\n")
    print("| run | wall s | / prototype FULL | CPU s | / prototype FULL | peak RSS MB | truth |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for m, d in results:
        print(
            f"| {m.label} | {m.seconds:.2f} | {m.seconds / base:.2f} | {m.cpu:.2f} | {m.cpu / base_cpu:.2f} "
            f"| {m.peak_mb:,.0f} | {d} |"
        )
    runs = [
        {
            "label": m.label,
            "seconds": round(m.seconds, 3),
            "cpu": round(m.cpu, 3),
            "peak_mb": round(m.peak_mb),
            "ratio": round(m.seconds / base, 3),
            "cpu_ratio": round(m.cpu / base_cpu, 3),
        }
        for m, _ in results
    ]
    print(json.dumps({"records": n, "runs": runs}))
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
