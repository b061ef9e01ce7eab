"""Scrape latency of the /metrics collector with N rows in idr_out.metrics_export.

    python bench/bench_scrape.py --rows 100000

Seeds a fresh DuckDB file with a realistic mix (about 60 rows per run: run metrics,
status state set, stages, rules, cluster metrics), then times full scrapes: open a
read-only connection, aggregate, render the exposition text, close.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.run_record import RunResult, StageResult  # noqa: E402
from app.metrics.cli import read_only_factory  # noqa: E402
from app.metrics.collector import file_state_key, make_registry, render  # noqa: E402
from app.metrics.recorder import run_metric_records  # noqa: E402
from app.platforms.duckdb import DuckDBAdapter  # noqa: E402
from app.schema import init_schema  # noqa: E402


def seed_sql(path: str, rows: int) -> None:
    """Bulk seed in SQL: 100k bound single-row inserts would time the seeding, not the scrape."""
    now = datetime(2024, 1, 1)
    template = run_metric_records(
        RunResult(
            run_id="x",
            mode="INCR",
            dry_run=False,
            platform="duckdb",
            started_at=now,
            status="SUCCESS",
            stages=[StageResult(f"stage_{i}", i, now) for i in range(8)],
            rule_stats={f"rule_{i}": {"edges": 1} for i in range(4)},
        ),
        {"idr_total_clusters": 1.0, "idr_largest_cluster_size": 1.0, "idr_avg_cluster_size": 1.0},
    )
    import json

    adapter = DuckDBAdapter.from_path(path)
    init_schema(adapter)
    adapter.execute("CREATE TEMP TABLE tpl (k INTEGER, name VARCHAR, mtype VARCHAR, dims VARCHAR)")
    adapter.executemany(
        "INSERT INTO tpl VALUES ($k, $n, $t, $d)",
        [
            {
                "k": i,
                "n": r.name,
                "t": r.metric_type,
                "d": json.dumps(dict(r.dimensions or {}), sort_keys=True),
            }
            for i, r in enumerate(template)
        ],
    )
    n = len(template)
    adapter.execute(
        "INSERT INTO idr_out.metrics_export "
        "(run_id, metric_name, metric_value, metric_type, dimensions, recorded_at) "
        "SELECT 'run_' || (g // $n), tpl.name, random() * 1000, tpl.mtype, tpl.dims, "
        "TIMESTAMP '2024-01-01' + to_seconds((g // $n) * 60) "
        "FROM range($rows) r(g) JOIN tpl ON tpl.k = g % $n",
        {"n": n, "rows": rows},
    )
    adapter.close()


def _time(registry, scrapes: int, touch: str | None = None) -> tuple[list[float], bytes]:
    body, _ = render(registry)  # warm-up (imports, OS file cache)
    times = []
    for _ in range(scrapes):
        t0 = time.perf_counter()
        body, _ = render(registry)
        times.append((time.perf_counter() - t0) * 1000)
    assert b"idr_metrics_export_up 1.0" in body, "scrape failed"
    return times, body


def _fmt(times: list[float]) -> str:
    p95 = sorted(times)[int(0.95 * (len(times) - 1))]
    return f"median {statistics.median(times):.1f} ms, p95 {p95:.1f} ms, max {max(times):.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--scrapes", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "bench.duckdb")
        seed_sql(path, args.rows)
        # Cold: what a scrape costs right after a run changed the file (open + aggregate + render).
        cold, body = _time(make_registry(read_only_factory(path)), args.scrapes)
        # Warm: `idr metrics serve` reuses the last result while the file is unchanged.
        warm, _ = _time(
            make_registry(read_only_factory(path), cache_key=file_state_key(path, f"{path}.wal")),
            args.scrapes,
        )
        series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        print(f"scrape of {args.rows} metrics_export rows ({series} series, {len(body)} bytes, {args.scrapes} scrapes)")
        print(f"  cold (file changed: connect + query + render): {_fmt(cold)}")
        print(f"  warm (file unchanged, cached):                 {_fmt(warm)}")


if __name__ == "__main__":
    main()
