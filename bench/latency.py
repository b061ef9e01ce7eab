"""What a run costs on a warehouse where every request has a fixed latency.

    python bench/latency.py --platform snowflake|bigquery|spark [--latency-ms 500] [--records 100000]

Generates the demo dataset on DuckDB (the reference), copies the three source tables to
the platform's local stand-in (fakesnow, bqemulator, local PySpark), runs FULL, changes
``--delta`` of the records (on the reference, then copies the changed rows over), runs
INCR, and prints each run's round trips (requests to the warehouse, counted by the
adapter: ``Adapter.count_round_trip``) and wall time. ``--latency-ms`` adds that delay to
every round trip of the runs (not of the loading), as a remote warehouse would. Each
run's membership is compared with DuckDB's; exits 1 on a difference or a failed run.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO, REPO / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import machine  # noqa: E402  bench/machine.py

from app.config.apply import apply_config  # noqa: E402
from app.demo.generator import TABLES, demo_config, generate, make_delta  # noqa: E402
from app.pipeline.runner import run_pipeline  # noqa: E402
from app.platforms.base import Adapter  # noqa: E402
from app.platforms.duckdb import DuckDBAdapter  # noqa: E402
from app.schema import init_schema  # noqa: E402

KEYS = {"customers": "customer_id", "orders": "order_id", "members": "member_id"}


def with_latency(a: Adapter, seconds: float) -> None:
    """Every round trip of ``a`` waits ``seconds`` (the adapter's one counting hook)."""
    count = a.count_round_trip

    def slow(n: int = 1) -> None:
        count(n)
        if seconds:
            time.sleep(seconds * n)

    a.count_round_trip = slow  # type: ignore[method-assign]


def _load(dst: Adapter, schema: str, table: str, names: list[str], rows: list[dict[str, Any]]) -> None:
    """Bulk rows in through the platform's own loader (not counted: the bench measures
    runs); a multi-row INSERT per chunk elsewhere."""
    if not rows:
        return
    if dst.platform == "bigquery":  # a load job (the emulator's streaming insert fails)
        import io
        import json

        from google.cloud import bigquery

        def plain(v: Any) -> Any:
            return v.isoformat(sep=" ") if hasattr(v, "isoformat") else str(v) if hasattr(v, "as_tuple") else v

        lines = (json.dumps({k: plain(v) for k, v in r.items()}) for r in rows)
        job = dst.conn.load_table_from_file(
            io.BytesIO("\n".join(lines).encode()),
            f"{dst.conn.project}.{schema}.{table}",
            job_config=bigquery.LoadJobConfig(source_format="NEWLINE_DELIMITED_JSON"),
        )
        job.result()
        return
    if dst.platform == "snowflake":  # write_pandas (PUT + COPY INTO on Snowflake; fakesnow loads in place)
        import pandas as pd
        from snowflake.connector.pandas_tools import write_pandas

        df = pd.DataFrame([[r[c] for c in names] for r in rows], columns=[c.upper() for c in names])
        write_pandas(dst.conn, df, table.upper(), schema=schema.upper())
        return
    if dst.platform == "databricks" and hasattr(dst.conn, "createDataFrame"):
        schema_ddl = dst.conn.table(f"{schema}.{table}").schema
        df = dst.conn.createDataFrame([tuple(r[c] for c in names) for r in rows], schema=schema_ddl)
        df.write.insertInto(f"{schema}.{table}")
        return
    fqn = dst.table(schema, table)
    dst.executemany(
        f"INSERT INTO {fqn} ({', '.join(dst.ident(c) for c in names)}) "
        f"VALUES ({', '.join(f'$c{i}' for i in range(len(names)))})",
        [{f"c{i}": r[c] for i, c in enumerate(names)} for r in rows],
    )


def copy_sources(src: DuckDBAdapter, dst: Adapter) -> int:
    n = 0
    for _, schema, table in TABLES:
        cols = src.fetchall(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $s "
            "AND table_name = $t ORDER BY ordinal_position",
            {"s": schema, "t": table},
        )
        dst.execute(f"CREATE SCHEMA IF NOT EXISTS {dst.ident(schema)}")
        dst.execute(f"CREATE TABLE {dst.table(schema, table)} ({', '.join(f'{dst.ident(c)} {t}' for c, t in cols)})")
        rows = src.fetch_dicts(f"SELECT * FROM {src.table(schema, table)}")
        _load(dst, schema, table, [c for c, _ in cols], rows)
        n += len(rows)
    return n


def copy_delta(src: DuckDBAdapter, dst: Adapter, since: Any) -> int:
    """Rows changed on the reference after ``since``: replaced by key on the stand-in."""
    n = 0
    for _, schema, table in TABLES:
        key = KEYS[table]
        rows = src.fetch_dicts(f"SELECT * FROM {src.table(schema, table)} WHERE updated_at > $t", {"t": since})
        fqn = dst.table(schema, table)
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            keys = {f"k{i}": r[key] for i, r in enumerate(chunk)}
            dst.execute(f"DELETE FROM {fqn} WHERE {dst.ident(key)} IN ({', '.join('$' + k for k in keys)})", keys)
        if rows:
            _load(dst, schema, table, list(rows[0]), rows)
        n += len(rows)
    return n


def membership(a: Adapter) -> dict[str, str]:
    return dict(a.fetchall("SELECT entity_key, resolved_id FROM idr_out.identity_resolved_membership_current"))


def make_platform(name: str, stack: ExitStack) -> Adapter:
    if name == "snowflake":
        from app.platforms.snowflake import SnowflakeAdapter, snowflake_connector
        from tests.platforms import snowflake_standin  # fakesnow + multi-statement requests

        stack.enter_context(snowflake_standin.patch())
        return SnowflakeAdapter(snowflake_connector({"account": "fake", "user": "u", "password": "p", "database": "B"}))
    if name == "bigquery":
        from tests.platforms.bq_emulator import start_emulator

        emu = start_emulator()
        stack.callback(emu.stop)
        return emu.adapter("bench")
    if name == "spark":
        from app.platforms.spark import SparkSessionAdapter, local_spark_session

        spark = local_spark_session()
        stack.callback(spark.stop)
        return SparkSessionAdapter(lambda: spark)
    raise SystemExit(f"unknown platform {name!r} (snowflake, bigquery, spark)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--platform", required=True, choices=["snowflake", "bigquery", "spark"])
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--delta", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)
    print(machine.measure().line())
    ref = DuckDBAdapter.from_path(":memory:")
    generate(ref, args.records, args.seed)
    init_schema(ref)
    apply_config(ref, demo_config(records=args.records))
    failed = False
    with ExitStack() as stack:
        a = make_platform(args.platform, stack)
        t = time.perf_counter()
        loaded = copy_sources(ref, a)
        init_schema(a)
        apply_config(a, demo_config(records=args.records))
        print(f"{args.platform}: loaded {loaded} rows in {time.perf_counter() - t:.1f}s; "
              f"latency {args.latency_ms:g} ms per round trip")
        with_latency(a, args.latency_ms / 1000)
        for mode in ("FULL", "INCR"):
            if mode == "INCR":
                since = ref.scalar(
                    "SELECT max(m) FROM (SELECT max(updated_at) AS m FROM crm.customers UNION ALL "
                    "SELECT max(updated_at) FROM shop.orders UNION ALL SELECT max(updated_at) FROM loyalty.members)"
                )
                make_delta(ref, args.delta, args.seed + 1)
                lat, a.count_round_trip = a.count_round_trip, Adapter.count_round_trip.__get__(a)  # type: ignore
                changed = copy_delta(ref, a, since)
                a.count_round_trip = lat  # type: ignore[method-assign]
                print(f"  delta: {changed} changed rows copied")
            want = run_pipeline(ref, mode)
            before = a.round_trips
            t = time.perf_counter()
            r = run_pipeline(a, mode)
            wall = time.perf_counter() - t
            total = a.round_trips - before
            ok = r.ok and want.ok and membership(a) == membership(ref)
            failed |= not ok
            print(
                f"  {mode:4s} {r.statements:5d} round trips (run_history; {total} with metrics)  "
                f"{r.lp_iterations} component rounds  {wall:7.1f}s wall  "
                f"{'same membership as DuckDB' if ok else 'DIFFERS / FAILED: ' + str(r.error_message)}"
            )
    print(machine.measure().line())
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
