"""What the golden profile adds to a FULL run: the same data (app/demo's generator, as
bench/run.py), FULL with the demo's attributes and FULL without any, each as a whole
process (`idr run`) on a fresh copy, alternating (with, without, without, with) so the
machine's drift hits both alike.

    python bench/golden_cost.py --records 1000000 [--work DIR]

Prints wall seconds and peak RSS per run and the overhead (with / without - 1) of the
medians; bench/machine.py's figures before and after.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

import machine  # noqa: E402
from floor_compare import copy_db, idr_cmd, run_measured  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "golden")
    args = p.parse_args(argv)
    if args.records < 1:
        print("--records must be positive", file=sys.stderr)
        return 2
    from app.demo.generator import demo_config, generate
    from app.platforms.duckdb import DuckDBAdapter

    args.work.mkdir(parents=True, exist_ok=True)
    print(machine.measure().line(), flush=True)
    template = args.work / f"demo_{args.records}_{args.seed}.duckdb"
    if not template.exists():
        a = DuckDBAdapter.from_path(str(template))
        generate(a, args.records, seed=args.seed)
        a.execute("CHECKPOINT")
        a.close()
    with_attrs = demo_config(records=args.records)
    without = {**with_attrs, "attribute_mappings": [], "survivorship_rules": []}
    configs = {}
    for name, doc in (("with", with_attrs), ("without", without)):
        configs[name] = args.work / f"config_{name}.json"
        configs[name].write_text(json.dumps(doc))
    times: dict[str, list[float]] = {"with": [], "without": []}
    cpu: dict[str, list[float]] = {"with": [], "without": []}
    ok = True
    for name in ("with", "without", "without", "with"):
        db = copy_db(template, args.work / "run.duckdb")
        for step in (idr_cmd("init", "--db", str(db)), idr_cmd("config", "apply", str(configs[name]), "--db", str(db))):
            subprocess.run(step, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        m = run_measured(f"FULL {name} attributes", idr_cmd("run", "--mode", "FULL", "--db", str(db), "-q"))
        ok &= m.ok
        times[name].append(m.seconds)
        cpu[name].append(m.cpu)
        print(f"| {m.label} | {m.seconds:.2f} s | CPU {m.cpu:.2f} s | {m.peak_mb:,.0f} MB |", flush=True)
    print(machine.measure().line())
    w, wo = statistics.median(times["with"]), statistics.median(times["without"])
    print(
        f"\n{args.records:,} records: FULL with attributes {w:.2f} s, without {wo:.2f} s (medians): "
        f"the golden profile adds {100 * (w / wo - 1):.0f}%"
    )
    cw, cwo = statistics.median(cpu["with"]), statistics.median(cpu["without"])
    print(f"CPU seconds (medians): with {cw:.2f}, without {cwo:.2f}: {100 * (cw / cwo - 1):.0f}%")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
