"""The write floor: how long DuckDB takes to write a FULL run's state tables, and nothing else.

    python bench/run.py --records 1000000 --delta 0 --keep --db /tmp/b1m.duckdb   # a FULL run's state
    python bench/write_floor.py /tmp/b1m.duckdb [--repeat 3]

Copies the production state tables a FULL run writes (golden profile, edges, stored
identifiers, membership, clusters) into memory, then times writing each into a new
database file (created beside the input and deleted afterwards; the input is only read),
checkpoint included. No run can publish faster than this on the same machine with the
same DuckDB and the same tables, so it bounds the FULL targets from below.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import duckdb

TABLES = (
    "golden_profile_current",
    "identity_edges_current",
    "identifiers_current",
    "identity_resolved_membership_current",
    "identity_clusters_current",
)


def _remove(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".wal")):
        p.unlink(missing_ok=True)


def measure(db: Path, repeat: int) -> dict[str, list[float]]:
    """Seconds per table per repetition."""
    out_path = db.with_name(db.stem + ".write_floor.duckdb")
    _remove(out_path)
    conn = duckdb.connect()  # in memory: the copies live here
    conn.execute("SET preserve_insertion_order = false")  # as the pipeline's connections
    try:
        conn.execute("ATTACH $p AS src (READ_ONLY)", {"p": str(db)})
        for t in TABLES:
            conn.execute(f'CREATE TABLE memory.main."{t}" AS SELECT * FROM src.idr_out."{t}"')
        conn.execute("DETACH src")
        times: dict[str, list[float]] = {t: [] for t in TABLES}
        for _ in range(repeat):
            conn.execute("ATTACH $p AS out", {"p": str(out_path)})
            for t in TABLES:
                start = time.perf_counter()
                conn.execute(f'CREATE TABLE out.main."{t}" AS SELECT * FROM memory.main."{t}"')
                conn.execute("CHECKPOINT out")
                times[t].append(time.perf_counter() - start)
            conn.execute("DETACH out")
            _remove(out_path)
        return times
    finally:
        conn.close()
        _remove(out_path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("db", type=Path, help="DuckDB file holding a FULL run's idr_out tables")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions; the median is reported (default 3)")
    args = ap.parse_args(argv)
    if not args.db.exists():
        print(f"error: {args.db} does not exist (make one with bench/run.py --keep --db PATH)", file=sys.stderr)
        return 2
    if args.repeat < 1:
        print("error: --repeat must be at least 1", file=sys.stderr)
        return 2
    try:
        times = measure(args.db, args.repeat)
    except duckdb.CatalogException as e:
        print(f"error: {args.db} holds no FULL run's state ({e})", file=sys.stderr)
        return 2
    with duckdb.connect(str(args.db), read_only=True) as conn:
        counts = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM idr_out.\"{t}\"" for t in TABLES)
        rows = dict(conn.execute(counts).fetchall())
    print(f"write floor of {args.db} (median of {args.repeat}, checkpoint included)")
    print(f"  {'table':40s} {'rows':>12s} {'seconds':>8s}")
    total = 0.0
    for t in TABLES:
        med = statistics.median(times[t])
        total += med
        print(f"  {t:40s} {rows[t]:12,} {med:8.2f}")
    print(f"  {'total':40s} {sum(rows.values()):12,} {total:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
