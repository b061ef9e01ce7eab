"""How fast the web console opens a large dry run's review page.

    python bench/console.py [--records 230000] [--repeat 5] [--db PATH --keep]

Builds a dry run with many entity changes through the service's own API, in this process:
demo data, a FULL run linking by email and loyalty card, then a FULL dry run linking by
phone, loyalty card and device instead (clusters held together by an email split, others
merge through a phone or a device), so the review has merges, splits and moved records by
the ten thousand. Then it signs in to the console and times, over HTTP
(the service's ASGI app: routing, session, queries, template), the pages a reviewer opens:

- the review page (summary cards, first page of merges and splits, first page of entity
  changes), first with the DuckDB file closed (as after 1 s idle) and then warm;
- the same sorted by records changing, and filtered to one change type;
- the 20th page of merges and splits (a cursor deep into the list);
- the largest merge opened side by side;
- the cluster explorer: a cluster with its graph, a search by identifier value, and the
  largest cluster's summary (the page shown instead of a graph over the drawing limit).

Prints this machine's speed (bench/machine.py) before and after; figures in bench/README.md.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import machine  # noqa: E402  bench/machine.py

KEY = "idr_bench_console_admin_key_0123456789"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _wait(c, run_id: str) -> dict:
    while True:
        body = c.get(f"/v1/runs/{run_id}").json()
        if body["status"] not in ("QUEUED", "RUNNING"):
            return body
        time.sleep(0.2)


def _timed(c, url: str, repeat: int) -> tuple[float, float, int]:
    """(first, median of the rest, bytes): the first request pays for opening the file."""
    from app.services.warehouse import keep_open

    keep_open.release()  # as after the service was idle for IDR_DUCKDB_KEEP_OPEN_SECONDS
    times = []
    size = 0
    for _ in range(repeat + 1):
        t = time.perf_counter()
        r = c.get(url)
        times.append(time.perf_counter() - t)
        assert r.status_code == 200, (url, r.status_code, r.text[:500])
        size = len(r.content)
    return times[0], statistics.median(times[1:]), size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=230_000)
    ap.add_argument("--repeat", type=int, default=5, help="warm requests per page (median printed)")
    ap.add_argument("--db", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep (or reuse) --db and its state database")
    args = ap.parse_args(argv)

    from fastapi.testclient import TestClient

    from app.core.settings import Settings
    from app.demo.generator import demo_config, generate
    from app.main import create_app
    from app.platforms.duckdb import DuckDBAdapter
    from app.schema import init_schema

    print(machine.measure().line(), flush=True)
    work = Path(tempfile.mkdtemp(prefix="idr_bench_console_"))
    db = args.db or work / f"console_{args.records}.duckdb"
    state = db.with_suffix(".state.db")
    reuse = args.keep and db.exists() and state.exists()
    if not reuse:
        for p in (db, state):
            p.unlink(missing_ok=True)
        t = time.perf_counter()
        with DuckDBAdapter.from_path(str(db)) as a:
            generate(a, args.records, seed=42)
            init_schema(a)
        print(f"generated {args.records:,} records in {time.perf_counter() - t:.1f} s", flush=True)
    settings = Settings(duckdb_path=str(db), state_db_url=f"sqlite:///{state}", bootstrap_api_key=KEY)
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {KEY}"}) as c:
        if reuse:
            dry = c.get("/v1/runs", params={"dry_run": True, "status": "DRY_RUN_COMPLETE"}).json()["items"][0]["id"]
        else:
            full = demo_config(records=args.records)

            def rules(*types: str) -> dict:
                return {**full, "rules": [r | {"is_active": r["identifier_type"] in types} for r in full["rules"]]}

            assert c.put("/v1/config", json=rules("EMAIL", "LOYALTY_ID")).status_code == 200
            t = time.perf_counter()
            run = _wait(c, c.post("/v1/runs", json={"mode": "FULL"}).json()["id"])
            print(f"FULL run (email, loyalty card): {run['status']} in {time.perf_counter() - t:.1f} s", flush=True)
            assert c.put("/v1/config", json=rules("PHONE", "LOYALTY_ID", "DEVICE_ID")).status_code == 200
            t = time.perf_counter()
            run = _wait(c, c.post("/v1/runs", json={"mode": "FULL", "dry_run": True}).json()["id"])
            print(f"FULL dry run (phone, loyalty card, device): {run['status']} in {time.perf_counter() - t:.1f} s")
            dry = run["id"]
        s = c.get(f"/v1/dry-runs/{dry}/summary").json()
        print(
            f"dry run {dry}: {s['affected_entities']:,} entity changes of {s['total_entities']:,} "
            f"(merged {s['merged_entities']:,}, split {s['split_entities']:,}, moved {s['moved_entities']:,}, "
            f"new {s['new_entities']:,}, removed {s['removed_entities']:,})"
        )
        ui = TestClient(c.app)
        token = CSRF.search(ui.get("/ui/sign-in").text).group(1)  # type: ignore[union-attr]
        assert ui.post("/ui/sign-in", data={"csrf": token, "api_key": KEY}).status_code == 200
        page = ui.get(f"/ui/dry-runs/{dry}").text
        counts = re.search(r"([\d,]+) merges \(.*?\) · ([\d,]+) splits", page)
        print(f"review lists {counts.group(1)} merges and {counts.group(2)} splits" if counts else "no counts?")
        # The 20th page of merges and splits: follow the cursors.
        url = f"/ui/dry-runs/{dry}"
        for _ in range(19):
            m = re.search(r'href="([^"]*cursor=[^"#]*)#units" rel="next"', ui.get(url).text)
            if not m:
                break
            url = m.group(1).replace("&amp;", "&")
        deep = url
        merge = re.search(r'href="(/ui/dry-runs/[^"]+/merges/[^"]+)"', ui.get(f"/ui/dry-runs/{dry}?sort=size").text)
        pages = [
            ("review page", f"/ui/dry-runs/{dry}"),
            ("sorted by records changing", f"/ui/dry-runs/{dry}?sort=records"),
            ("entity changes: MOVED only", f"/ui/dry-runs/{dry}?change=MOVED"),
            ("20th page of merges and splits", deep),
        ]
        if merge:
            pages.append(("largest merge, side by side", merge.group(1)))
        # The cluster explorer on the same data: a record's cluster (graph drawn), an
        # identifier value's holders, and a cluster over the drawing limit (summary).
        from app.platforms.duckdb import DuckDBAdapter as _A
        from app.services.warehouse import keep_open
        from app.ui import svg

        keep_open.release()
        with _A.from_path(str(db)) as a:
            big, big_size = a.fetchone(
                "SELECT resolved_id, cluster_size FROM idr_out.identity_clusters_current "
                "ORDER BY cluster_size DESC, resolved_id LIMIT 1"
            )
            mid = a.scalar(
                "SELECT resolved_id FROM idr_out.identity_clusters_current WHERE cluster_size BETWEEN 5 AND 20 "
                "ORDER BY resolved_id LIMIT 1"
            )
            value = a.scalar(
                "SELECT identifier_value_norm FROM idr_out.identity_edges_current WHERE identifier_type = 'EMAIL' "
                "ORDER BY identifier_value_norm LIMIT 1"
            )
        pages += [
            ("cluster page with its graph", f"/ui/clusters/{mid}"),
            ("search by identifier value", f"/ui/clusters?q={value.upper()}"),
        ]
        svg.GRAPH_MAX_NODES = min(svg.GRAPH_MAX_NODES, big_size - 1)  # the summary path, on the largest cluster
        pages.append((f"cluster summary ({big_size:,} records)", f"/ui/clusters/{big}"))
        print(f"{'page':34} {'first (file closed)':>20} {'warm (median)':>14} {'size':>9}")
        for name, u in pages:
            first, warm, size = _timed(ui, u, args.repeat)
            print(f"{name:34} {first * 1000:>17.0f} ms {warm * 1000:>11.0f} ms {size / 1024:>6.0f} KiB", flush=True)
    print(machine.measure().line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
