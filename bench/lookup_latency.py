"""Latency of `GET /v1/entities/{key}` on the embedded service: N clients, each sending
its next request as soon as the last one answered, for a fixed time.

    python bench/lookup_latency.py DB [--clients 8] [--seconds 30] [--port 8765]

DB is a DuckDB file holding a resolved state (e.g. the idr.duckdb bench/floor_compare.py
leaves in bench/out/floor after a FULL run). The script starts `idr serve` on loopback
over it (its own state database in a temporary directory), samples 5,000 entity keys,
warms up for 2 s, measures, and prints p50 / p95 / p99 latency, requests per second and
errors, with bench/machine.py's figures.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import duckdb
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import machine  # noqa: E402


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process so far (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("db", type=Path)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--port", type=int, default=8765)
    args = p.parse_args(argv)
    if not args.db.exists() or args.clients < 1 or args.seconds <= 0:
        print("DB must exist; --clients and --seconds must be positive", file=sys.stderr)
        return 2
    con = duckdb.connect(str(args.db), read_only=True)
    try:
        keys = [
            r[0]
            for r in con.execute(
                "SELECT entity_key FROM idr_out.identity_resolved_membership_current USING SAMPLE 5000"
            ).fetchall()
        ]
        records = con.execute("SELECT count(*) FROM idr_state.entities").fetchall()[0][0]
    finally:
        con.close()
    print(machine.measure().line(), flush=True)
    api_key = "idr_" + secrets.token_urlsafe(24)
    tmp = tempfile.mkdtemp(prefix="idr-lookup-bench-")
    env = {
        **os.environ,
        "IDR_DUCKDB_PATH": str(args.db),
        "IDR_STATE_DB_URL": f"sqlite:///{tmp}/state.db",
        "IDR_BOOTSTRAP_API_KEY": api_key,
        "IDR_API_HOST": "127.0.0.1",
        "IDR_API_PORT": str(args.port),
        "PYTHONPATH": str(ROOT),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{args.port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            print("the service did not start", file=sys.stderr)
            return 1
        headers = {"Authorization": f"Bearer {api_key}"}
        latencies: list[list[float]] = [[] for _ in range(args.clients)]
        errors = [0] * args.clients
        stop_warm = time.time() + 2
        stop = stop_warm + args.seconds

        def client(i: int) -> None:
            rng = random.Random(i)
            with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
                while (now := time.time()) < stop:
                    key = rng.choice(keys)
                    t = time.perf_counter()
                    r = c.get(f"/v1/entities/{quote(key, safe='')}")
                    dt = time.perf_counter() - t
                    if now >= stop_warm:
                        latencies[i].append(dt)
                        if r.status_code != 200:
                            errors[i] += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        time.sleep(max(stop_warm - time.time(), 0))
        cpu0, own0 = cpu_seconds(server.pid), time.process_time()
        for t in threads:
            t.join()
        cpu1, own1 = cpu_seconds(server.pid), time.process_time()
    finally:
        server.terminate()
        server.wait(timeout=30)
    allv = sorted(x for lat in latencies for x in lat)
    print(machine.measure().line())
    if cpu0 is not None and cpu1 is not None and allv:
        # Closed loop on a shared machine: latency is about clients / throughput, and the
        # clients' own CPU competes with the service's. CPU per request says which costs.
        print(
            f"CPU per request: service {1000 * (cpu1 - cpu0) / len(allv):.2f} ms, "
            f"clients {1000 * (own1 - own0) / len(allv):.2f} ms"
        )
    print(
        f"\n{records:,} records · {args.clients} clients · {args.seconds:.0f} s: {len(allv):,} requests "
        f"({len(allv) / args.seconds:,.0f}/s), errors {sum(errors)}; "
        f"latency p50 {1000 * percentile(allv, 0.5):.1f} ms, "
        f"p95 {1000 * percentile(allv, 0.95):.1f} ms, p99 {1000 * percentile(allv, 0.99):.1f} ms"
    )
    return 0 if allv and not sum(errors) else 1


if __name__ == "__main__":
    sys.exit(main())
