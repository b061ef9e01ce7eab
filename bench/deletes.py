"""What deletes cost INCR runs, against the floor prototype's FULL on the same data (each a
whole process, one after the other): wall and CPU seconds, peak RSS, ratios.

    python bench/deletes.py 1000000 [--fraction 0.001] [--floor DIR] [--work DIR]

On the prototype's data set (``bench/floor_compare.py`` makes and caches it):

1. the prototype's FULL (the base of every ratio);
2. ``idr init``, ``idr config apply`` (the prototype's configuration, every source with
   ``deleted_flag_expr: is_deleted`` over an added ``is_deleted`` column) and ``idr run
   --mode FULL``;
3. **soft deletes**: on a copy, ``--fraction`` of each source's rows get ``is_deleted =
   TRUE`` and a new watermark; ``idr run --mode INCR``;
4. **reconciliation**: on a copy, every source ``reconcile_deletes: every_run`` and
   ``--fraction`` of each source's rows deleted outright; ``idr run --mode INCR`` (an INCR
   with no new rows: what comparing every key costs), and the same INCR without
   reconciliation (``never``) as its baseline;
5. each INCR's membership is compared with a FULL run over the same copy (exit 1 on a
   difference), and ``bench/machine.py``'s figures are printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import machine  # noqa: E402
from floor_compare import TABLES, Measured, copy_db, generate, idr_cmd, run_measured  # noqa: E402

MEMBERSHIP = "SELECT entity_key, resolved_id FROM idr_out.identity_resolved_membership_current"


def sql(db: Path, *statements: str) -> None:
    con = duckdb.connect(str(db))
    try:
        for s in statements:
            con.execute(s)
        con.execute("CHECKPOINT")
    finally:
        con.close()


def membership(db: Path) -> set[tuple[str, str]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return set(con.execute(MEMBERSHIP).fetchall())
    finally:
        con.close()


def apply(db: Path, cfg: dict, path: Path, env: dict[str, str]) -> None:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    subprocess.run(
        idr_cmd("config", "apply", str(path), "--db", str(db)), check=True, env=env, stdout=subprocess.DEVNULL
    )


def pick(fraction: float) -> str:
    """A deterministic ``fraction`` of a table's rows (by key hash), as a WHERE condition."""
    return f"hash(CAST(rowid AS VARCHAR)) % 1000000 < {round(fraction * 1_000_000)}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("records", type=int)
    p.add_argument("--fraction", type=float, default=0.001, help="share of each source's rows deleted")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument(
        "--floor", type=Path, default=Path(os.environ.get("IDR_FLOOR_DIR", ROOT.parent / "shared" / "floor"))
    )
    p.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "floor")
    args = p.parse_args(argv)
    if args.records < 1 or not 0 < args.fraction <= 0.5:
        print("records must be positive and --fraction in (0, 0.5]", file=sys.stderr)
        return 2
    if not (args.floor / "run_full.py").exists():
        print(f"the floor prototype is not at {args.floor} (--floor DIR or IDR_FLOOR_DIR)", file=sys.stderr)
        return 2
    args.work.mkdir(parents=True, exist_ok=True)
    n, w = args.records, args.work
    print(machine.measure().line(), flush=True)
    data = generate(args.floor, w, n, args.seed, 0.01)
    loaded = w / f"loaded_{n}_{args.seed}.duckdb"
    if not loaded.exists():
        subprocess.run(
            [sys.executable, str(args.floor / "load.py"), str(data), str(loaded)], check=True, stdout=subprocess.DEVNULL
        )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    floor_db = copy_db(loaded, w / "del_floor.duckdb")
    floor = run_measured(
        "prototype FULL",
        [
            sys.executable,
            str(args.floor / "run_full.py"),
            str(floor_db),
            "A",
            str(w / "del_floor.json"),
            "--no-persist-ids",
        ],
    )
    os.remove(floor_db)
    cfg = yaml.safe_load(
        subprocess.run(
            [sys.executable, str(args.floor / "idr_config.py"), str(data)], check=True, capture_output=True, text=True
        ).stdout
    )
    for s in cfg["sources"]:
        s["deleted_flag_expr"] = "is_deleted"
    idr_db = copy_db(loaded, w / "del_idr.duckdb")
    sql(idr_db, *(f"ALTER TABLE src.{t} ADD COLUMN is_deleted BOOLEAN" for t in TABLES))
    subprocess.run(idr_cmd("init", "--db", str(idr_db)), check=True, env=env, stdout=subprocess.DEVNULL)
    apply(idr_db, cfg, w / "del-config.yml", env)
    full = run_measured("idr FULL", idr_cmd("run", "--mode", "FULL", "--db", str(idr_db)), env)
    results: list[tuple[Measured, str]] = [(floor, ""), (full, "")]
    all_ok = floor.ok and full.ok
    con = duckdb.connect(str(idr_db), read_only=True)
    counts = {
        t: con.execute(f"SELECT count(*) FROM src.{t} WHERE {pick(args.fraction)}").fetchall()[0][0] for t in TABLES
    }
    con.close()
    touched = sum(counts.values())

    def check(label: str, db: Path, m: Measured) -> None:
        nonlocal all_ok
        if not m.ok:
            results.append((m, "run failed"))
            all_ok = False
            return
        incr = membership(db)
        ref = copy_db(db, w / "del_ref.duckdb")
        subprocess.run(
            idr_cmd("run", "--mode", "FULL", "--db", str(ref)), check=True, env=env, stdout=subprocess.DEVNULL
        )
        same = membership(ref) == incr
        os.remove(ref)
        results.append((m, f"{len(incr):,} members; {'= FULL' if same else 'DIFFERS from FULL'}"))
        all_ok = all_ok and same

    # Soft deletes: flagged rows with a new watermark.
    db = copy_db(idr_db, w / "del_soft.duckdb")
    sql(
        db,
        *(
            f"UPDATE src.{t} SET is_deleted = TRUE, updated_at = TIMESTAMP '2100-01-01' WHERE {pick(args.fraction)}"
            for t in TABLES
        ),
    )
    m = run_measured(
        f"idr INCR, {args.fraction:.1%} soft-deleted ({touched:,} rows)",
        idr_cmd("run", "--mode", "INCR", "--db", str(db)),
        env,
    )
    check("soft", db, m)
    os.remove(db)

    # Hard deletes found by reconciliation, and the same INCR without it.
    for mode in ("never", "every_run"):
        db = copy_db(idr_db, w / f"del_rec_{mode}.duckdb")
        sql(db, *(f"DELETE FROM src.{t} WHERE {pick(args.fraction)}" for t in TABLES))
        for s in cfg["sources"]:
            s["reconcile_deletes"] = mode
        apply(db, cfg, w / "del-config-rec.yml", env)
        label = (
            f"idr INCR, reconcile_deletes: every_run, {touched:,} rows deleted"
            if mode == "every_run"
            else "idr INCR, no new rows, no reconciliation (baseline)"
        )
        m = run_measured(label, idr_cmd("run", "--mode", "INCR", "--db", str(db)), env)
        if mode == "every_run":
            check("rec", db, m)
        else:
            results.append((m, ""))
        os.remove(db)
    os.remove(idr_db)
    print(machine.measure().line(), flush=True)
    base, base_cpu = floor.seconds, floor.cpu
    print(f"\n{n:,} records · {args.fraction:.1%} of each source's rows deleted · each a whole process\n")
    print("| run | wall s | / prototype FULL | CPU s | / prototype FULL | peak RSS MB | check |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r, d in results:
        print(
            f"| {r.label} | {r.seconds:.2f} | {r.seconds / base:.2f} | {r.cpu:.2f} | {r.cpu / base_cpu:.2f} "
            f"| {r.peak_mb:,.0f} | {d} |"
        )
    print(
        json.dumps(
            {
                "records": n,
                "runs": [
                    {
                        "label": r.label,
                        "seconds": round(r.seconds, 3),
                        "cpu": round(r.cpu, 3),
                        "ratio": round(r.seconds / base, 3),
                    }
                    for r, _ in results
                ],
            }
        )
    )
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
