"""A bounded load on the embedded service over loopback: entity lookups, run listing and
/metrics at a fixed request rate (open loop: requests go out on schedule whether or not
earlier ones answered), first with the service idle, then with FULL runs in progress
back to back. Prints p50 / p99 latency and error counts per endpoint and phase, with
bench/machine.py's figures.

    python bench/load.py [--records 100000] [--rate 30] [--seconds 60] [--port 8766]
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import duckdb
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import machine  # noqa: E402
from lookup_latency import percentile  # noqa: E402

ENDPOINTS = ("lookup", "runs", "metrics")


def _wait_run(c: httpx.Client, run_id: str, timeout: float = 600) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = c.get(f"/v1/runs/{run_id}").json()["status"]
        if status not in ("QUEUED", "RUNNING"):
            return status
        time.sleep(0.2)
    raise RuntimeError(f"run {run_id} did not finish")


def _phase(base: str, headers: dict, keys: list[str], rate: float, seconds: float) -> dict[str, tuple[list, int]]:
    """Send ``rate`` requests a second for ``seconds``, cycling through the endpoints."""
    out: dict[str, tuple[list[float], list[int]]] = {e: ([], [0]) for e in ENDPOINTS}
    rng = random.Random(7)
    client = httpx.Client(base_url=base, headers=headers, timeout=30)
    lock = threading.Lock()

    def one(kind: str, path: str) -> None:
        t = time.perf_counter()
        try:
            ok = client.get(path).status_code == 200
        except httpx.HTTPError:
            ok = False
        dt = time.perf_counter() - t
        with lock:
            out[kind][0].append(dt)
            if not ok:
                out[kind][1][0] += 1

    start = time.perf_counter()
    n = int(rate * seconds)
    with ThreadPoolExecutor(max_workers=32) as pool:
        for i in range(n):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            kind = ENDPOINTS[i % len(ENDPOINTS)]
            path = {
                "lookup": f"/v1/entities/{quote(rng.choice(keys), safe='')}",
                "runs": "/v1/runs?limit=20",
                "metrics": "/metrics",
            }[kind]
            pool.submit(one, kind, path)
    client.close()
    return {k: (sorted(v[0]), v[1][0]) for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=100_000)
    p.add_argument("--rate", type=float, default=30.0, help="requests per second, all endpoints together")
    p.add_argument("--seconds", type=float, default=60.0, help="per phase")
    p.add_argument("--port", type=int, default=8766)
    args = p.parse_args(argv)
    if args.records < 100 or args.rate <= 0 or args.seconds <= 0 or args.records > 1_000_000:
        print("--records 100..1,000,000; --rate and --seconds positive", file=sys.stderr)
        return 2
    print(machine.measure().line(), flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="idr-load-bench-"))
    db = tmp / "idr.duckdb"
    env = {
        **os.environ,
        "IDR_DUCKDB_PATH": str(db),
        "IDR_STATE_DB_URL": f"sqlite:///{tmp}/state.db",
        "IDR_API_HOST": "127.0.0.1",
        "IDR_API_PORT": str(args.port),
        "PYTHONPATH": str(ROOT),
    }
    subprocess.run(
        [sys.executable, "-m", "app.cli", "demo", "--db", str(db), "--records", str(args.records)],
        env=env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    api_key = "idr_" + secrets.token_urlsafe(24)
    env["IDR_BOOTSTRAP_API_KEY"] = api_key
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{args.port}"
    headers = {"Authorization": f"Bearer {api_key}"}
    results: dict[str, dict[str, tuple[list, int]]] = {}
    runs_done: list[str] = []
    try:
        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                print("the service did not start", file=sys.stderr)
                return 1
            time.sleep(0.2)
        with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
            first = c.post("/v1/runs", json={"mode": "FULL"}).json()["id"]
            if _wait_run(c, first) not in ("SUCCESS", "SUCCESS_WITH_WARNINGS"):
                print("the first FULL run failed", file=sys.stderr)
                return 1
        time.sleep(2)  # the service releases the file when idle: read a sample of keys
        with duckdb.connect(str(db), read_only=True) as con:
            keys = [
                r[0]
                for r in con.execute(
                    "SELECT entity_key FROM idr_out.identity_resolved_membership_current USING SAMPLE 2000"
                ).fetchall()
            ]
        results["idle"] = _phase(base, headers, keys, args.rate, args.seconds)

        stop = threading.Event()

        def runner() -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
                while not stop.is_set():
                    r = c.post("/v1/runs", json={"mode": "FULL"})
                    if r.status_code == 202:
                        runs_done.append(_wait_run(c, r.json()["id"]))
                    else:
                        time.sleep(0.2)

        t = threading.Thread(target=runner, daemon=True)
        t.start()
        time.sleep(1)
        results["run in progress"] = _phase(base, headers, keys, args.rate, args.seconds)
        stop.set()
        t.join(timeout=600)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(machine.measure().line())
    print(f"\n{args.records:,} records · {args.rate:g} requests/s · {args.seconds:g} s per phase (loopback)")
    print(f"{'phase':<16} {'endpoint':<8} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    errors = 0
    for phase, by in results.items():
        for kind in ENDPOINTS:
            lat, err = by[kind]
            errors += err
            print(
                f"{phase:<16} {kind:<8} {len(lat):>8} {1000 * percentile(lat, 0.5):>8.1f} "
                f"{1000 * percentile(lat, 0.99):>8.1f} {err:>6}"
            )
    print(f"FULL runs finished during the second phase: {len(runs_done)} ({', '.join(sorted(set(runs_done)))})")
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
