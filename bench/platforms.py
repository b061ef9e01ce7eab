"""Same benchmark dataset, every platform: is the partition (and are the ids) identical?

    python bench/platforms.py [--records 10000] [--platforms snowflake,bigquery,spark]

Generates the synthetic dataset on DuckDB (the reference), copies the three source tables
to each platform's local stand-in (fakesnow, bqemulator, local PySpark) with multi-row
INSERTs through the adapter (bound values), applies the same configuration, runs FULL,
and compares membership with DuckDB's. Prints wall times; exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from app.config.apply import apply_config  # noqa: E402
from app.demo.generator import TABLES, demo_config, generate  # noqa: E402
from app.pipeline.runner import run_pipeline  # noqa: E402
from app.platforms.base import Adapter  # noqa: E402
from app.platforms.duckdb import DuckDBAdapter  # noqa: E402
from app.schema import init_schema  # noqa: E402


def copy_sources(src: DuckDBAdapter, dst: Adapter) -> int:
    rows = 0
    for _, schema, table in TABLES:
        cols = src.fetchall(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $s "
            "AND table_name = $t ORDER BY ordinal_position",
            {"s": schema, "t": table},
        )
        dst.execute(f"CREATE SCHEMA IF NOT EXISTS {dst.ident(schema)}")
        col_sql = ", ".join(f"{dst.ident(c)} {t}" for c, t in cols)
        dst.execute(f"CREATE TABLE {dst.table(schema, table)} ({col_sql})")
        data = src.fetch_dicts(f"SELECT * FROM {src.table(schema, table)}")
        names = [c for c, _ in cols]
        params = ", ".join(f"$c{i}" for i in range(len(names)))
        dst.executemany(
            f"INSERT INTO {dst.table(schema, table)} ({', '.join(dst.ident(c) for c in names)}) VALUES ({params})",
            [{f"c{i}": r[c] for i, c in enumerate(names)} for r in data],
        )
        rows += len(data)
    return rows


def resolve(a: Adapter, records: int) -> tuple[dict[str, str], float, str]:
    init_schema(a)
    apply_config(a, demo_config(records=records))
    t = time.perf_counter()
    r = run_pipeline(a, "FULL")
    secs = time.perf_counter() - t
    if not r.ok:
        raise SystemExit(f"{a.platform}: run failed in {r.error_stage}: {r.error_message}")
    rows = a.fetchall("SELECT entity_key, resolved_id FROM idr_out.identity_resolved_membership_current")
    return dict(rows), secs, r.status


def partition(m: dict[str, str]) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for k, rid in m.items():
        groups.setdefault(rid, set()).add(k)
    return {frozenset(g) for g in groups.values()}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--platforms", default="snowflake,bigquery,spark")
    args = ap.parse_args()

    ref_adapter = DuckDBAdapter.from_path(":memory:")
    generate(ref_adapter, args.records, args.seed)
    ref, secs, _ = resolve(ref_adapter, args.records)
    ref_part = partition(ref)
    print(f"duckdb     FULL {secs:7.1f}s  entities={len(ref)} clusters={len(ref_part)}")
    failed = False
    with ExitStack() as stack:
        factories: dict[str, Callable[[], Adapter]] = {}
        if "snowflake" in args.platforms:
            from app.platforms.snowflake import SnowflakeAdapter, snowflake_connector
            from tests.platforms import snowflake_standin  # fakesnow + multi-statement requests

            stack.enter_context(snowflake_standin.patch())
            factories["snowflake"] = lambda: SnowflakeAdapter(
                snowflake_connector({"account": "fake", "user": "u", "password": "p", "database": "BENCH"})
            )
        if "bigquery" in args.platforms:
            from tests.platforms.bq_emulator import start_emulator

            emu = start_emulator()
            stack.callback(emu.stop)
            factories["bigquery"] = lambda: emu.adapter("bench")
        if "spark" in args.platforms:
            from app.platforms.spark import SparkSessionAdapter, local_spark_session

            spark = local_spark_session()
            stack.callback(spark.stop)
            factories["spark"] = lambda: SparkSessionAdapter(lambda: spark)
        for name, make in factories.items():
            a = make()
            t = time.perf_counter()
            n = copy_sources(ref_adapter, a)
            load = time.perf_counter() - t
            got, secs, _ = resolve(a, args.records)
            same_part = partition(got) == ref_part
            same_ids = got == ref
            failed |= not (same_part and same_ids)
            print(
                f"{name:10s} FULL {secs:7.1f}s  (load {n} rows {load:5.1f}s)  entities={len(got)} "
                f"clusters={len(partition(got))}  partition equal: {same_part}  ids equal: {same_ids}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
