"""Fault injection: a worker process running a FULL run over a published warehouse is
killed (kill -9, its whole process group) at each stage boundary and inside publish, on
DuckDB and on the Spark stand-in (local PySpark with a Derby metastore, so tables outlive
the killed process). After each kill it checks:

- production unchanged: checksums of every table in idr_out and idr_state and of
  idr_meta.run_state equal the ones taken just before the run started. Tables with a
  run_id column are run logs (run_history, stage_metrics, ...), where a run records
  itself as it goes: there the rows of the runs that existed before are compared;
- no run left RUNNING once the reaper has passed, in the state DB nor in run_history;
- the next run succeeds.

The worker stops itself at the named point (IDR_FAULT_STOP_AT, app/core/faults.py) and
the bench kills it there, so each kill lands exactly at its point. Prints a table and
bench/machine.py's figures.

    python bench/faults.py [--platforms duckdb,spark] [--records 20000] [--spark-records 2000]
                           [--spark-points stage:components,publish:half,spark:replace] [--spark-work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

PUBLISH_POINTS = ["publish:half", "publish:commit"]
# A run left to finish: its publish must show in the checksums (they can see a change).
CONTROL = "control: not killed"
STALE_AFTER = 2.0  # seconds without a heartbeat before the reaper gives a run up


# ---------------------------------------------------------------- the worker side
def _settings():
    from app.core.settings import get_settings

    return get_settings()


def _public_tables(a) -> list[str]:
    tables = [f"idr_out.{t}" for t in a.list_tables("idr_out")]
    tables += [f"idr_state.{t}" for t in a.list_tables("idr_state")]
    return sorted(tables) + ["idr_meta.run_state"]


def _checksum(a, table: str, prior: list[str]) -> str:
    """Row count and an order-independent hash of the rows (of the ``prior`` runs only,
    in a run log)."""
    schema, name = table.split(".")
    cols = a.columns(schema, name)
    where, params = "", {}
    if "run_id" in cols:
        params = {f"r{i}": r for i, r in enumerate(prior)}
        where = f" WHERE run_id IN ({', '.join('$' + k for k in params)})" if prior else " WHERE 1 = 0"
    fqn = a.table(schema, name)
    if a.platform == "duckdb":
        sql = f"SELECT count(*), sum(hash(t)) FROM (SELECT * FROM {fqn}{where}) AS t"
    else:
        sql = f"SELECT count(*), {a.fingerprint_aggregate([a.ident(c) for c in cols])} FROM {fqn}{where}"
    n, h = a.fetchone(sql, params or None) or (0, 0)
    return f"{n}:{h}"


def checksums(prior: list[str]) -> dict[str, str]:
    from app.services.warehouse import warehouse

    with warehouse(_settings(), wait=60) as a:
        return {t: _checksum(a, t, prior) for t in _public_tables(a)}


def _runs() -> list[str]:
    from app.services.warehouse import warehouse

    with warehouse(_settings(), wait=60) as a:
        return sorted(str(r) for (r,) in a.fetchall("SELECT run_id FROM idr_out.run_history"))


def _running_in_warehouse() -> int:
    from app.services.warehouse import warehouse

    with warehouse(_settings(), wait=60) as a:
        return int(a.scalar("SELECT count(*) FROM idr_out.run_history WHERE status = 'RUNNING'") or 0)


def _say(**kw: Any) -> None:
    print("FAULTS " + json.dumps(kw), flush=True)


def child(action: str, records: int) -> None:
    from app.db.models import Run
    from app.services import local_runs

    settings = _settings()
    if action == "setup":
        from app.config.apply import apply_config
        from app.demo.generator import demo_config, generate
        from app.schema import init_schema
        from app.services.warehouse import warehouse

        with warehouse(settings, wait=60) as a:
            if a.platform == "duckdb":
                generate(a, records, seed=7)
            else:  # made in DuckDB, copied over (as bench/latency.py loads a stand-in)
                from latency import copy_sources

                from app.platforms.duckdb import DuckDBAdapter

                with DuckDBAdapter.from_path(":memory:") as src:
                    generate(src, records, seed=7)
                    copy_sources(src, a)
            init_schema(a)
            apply_config(a, demo_config(records=records), actor="bench/faults.py")
    rt = local_runs.open_runtime(settings)
    if action == "attack":
        prior = _runs()
        _say(prior=prior, before=checksums(prior))
    if action == "recover":
        _say(after=checksums(json.loads(os.environ["FAULTS_PRIOR_RUNS"])))
        time.sleep(STALE_AFTER + 0.5)
        from app.services.execution import reap_stale_runs

        reap_stale_runs()
        with rt.session() as s:
            running = s.query(Run).filter(Run.status == "RUNNING").count()
        _say(running_state=running, running_warehouse=_running_in_warehouse())
    t = time.perf_counter()
    done = local_runs.run_recorded(rt, "default", "FULL", requested_by="bench/faults.py")
    _say(status=done.status, seconds=round(time.perf_counter() - t, 2), error=done.error_message)


# ---------------------------------------------------------------- the bench side
def _spawn(env: dict[str, str], action: str, records: int, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, __file__, "--child", action, "--records", str(records)],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: kill -9 takes Spark's JVM too
    )


def _said(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in text.splitlines():
        if line.startswith("FAULTS "):
            out.update(json.loads(line[7:]))
    return out


def _finish(p: subprocess.Popen, timeout: float = 3600) -> dict[str, Any]:
    out, err = p.communicate(timeout=timeout)
    said = _said(out)
    if p.returncode != 0 or "status" not in said:
        raise RuntimeError(f"worker failed ({p.returncode}): {err.strip().splitlines()[-5:]}")
    return said


def _attack(env: dict[str, str], point: str, records: int, cwd: Path) -> tuple[dict[str, Any], bool, float]:
    """Start a run that stops at ``point``, kill -9 it there. (what it said, stopped?, seconds to the point)"""
    t = time.perf_counter()
    p = _spawn(env | ({"IDR_FAULT_STOP_AT": point} if point != CONTROL else {}), "attack", records, cwd)
    assert p.stderr is not None and p.stdout is not None
    stopped = False
    for line in p.stderr:  # the worker says where it stops, then stops (SIGSTOP)
        if line.startswith("idr-fault: stopped at"):
            stopped = True
            break
    took = time.perf_counter() - t
    if stopped:
        # SIGSTOP lands right after the line: wait for it, so the kill comes at the point.
        while _state(p.pid) not in ("T", "t", None):
            time.sleep(0.01)
        os.killpg(p.pid, signal.SIGKILL)
    out, _ = p.communicate(timeout=3600)
    return _said(out), stopped, took


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return None


def _env(platform: str, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDR_")}
    env.update(
        PYTHONPATH=str(ROOT),
        IDR_STATE_DB_URL=f"sqlite:///{work}/state.db",
        IDR_RUN_HEARTBEAT_SECONDS="0.5",
        IDR_RUN_STALE_AFTER_SECONDS=str(STALE_AFTER),
        IDR_RECORD_CLI_RUNS="true",
        IDR_WEBHOOK_SECRET_KEYS="",
    )
    if platform == "duckdb":
        env.update(IDR_DUCKDB_PATH=str(work / "idr.duckdb"), IDR_DUCKDB_THREADS="2", IDR_DUCKDB_MEMORY_LIMIT="1GB")
    else:
        target = {
            "platform": "spark",
            "spark_master": "local[2]",
            "spark_warehouse_dir": str(work / "warehouse"),
            "spark_metastore_dir": str(work),
        }
        env.update(IDR_TARGETS=json.dumps({"spark": target}), IDR_DEFAULT_TARGET="spark")
    return env


def bench(platform: str, records: int, points: list[str], work: Path | None = None) -> list[dict[str, Any]]:
    """``work``: a directory an earlier call set up (its warehouse and state DB), reused."""
    if work is None:
        work = Path(tempfile.mkdtemp(prefix=f"idr-faults-{platform}-"))
        env = _env(platform, work)
        setup = _finish(_spawn(env, "setup", records, work))
        print(f"{platform}: {records:,} records, a first FULL run {setup['status']} in {setup['seconds']} s")
    env = _env(platform, work)
    print(f"{platform}: {records:,} records in {work}", flush=True)
    rows = []
    for point in points:
        said, stopped, took = _attack(env, point, records, work)
        prior = {"FAULTS_PRIOR_RUNS": json.dumps(said.get("prior", []))}
        after = _finish(_spawn(env | prior, "recover", records, work))
        before = said.get("before", {})
        changed = sorted(t for t in before if before[t] != after["after"].get(t))
        row = {
            "platform": platform,
            "point": point,
            "killed": stopped,
            "to_kill_s": round(took, 1),
            "tables": len(before),
            "changed": changed,
            "running_state": after["running_state"],
            "running_warehouse": after["running_warehouse"],
            "next_run": after["status"],
            "next_run_s": after["seconds"],
        }
        rows.append(row)
        _print_row(row)
    return rows


HEAD = (
    f"{'platform':<8} {'killed at':<28} {'killed':<6} {'public tables':<18} {'RUNNING after reaper':<22} "
    f"{'next run':<22}"
)


def _print_row(r: dict[str, Any]) -> None:
    prod = "unchanged" if not r["changed"] else "CHANGED: " + ", ".join(r["changed"])
    prod = f"{r['tables']} {prod}"
    running = f"{r['running_state']} state / {r['running_warehouse']} wh"
    nxt = f"{r['next_run']} ({r['next_run_s']} s)"
    killed = "-" if r["point"] == CONTROL else "yes" if r["killed"] else "NO"
    print(f"{r['platform']:<8} {r['point']:<28} {killed:<6} {prod:<18} {running:<22} {nxt}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--platforms", default="duckdb,spark")
    ap.add_argument("--records", type=int, default=20_000, help="DuckDB records")
    ap.add_argument("--spark-records", type=int, default=2_000)
    ap.add_argument(
        "--spark-points",
        default="",
        help="comma-separated points for Spark (default: every stage boundary, inside publish and "
        "in its table replacement; each costs two Spark start-ups)",
    )
    ap.add_argument("--spark-work", type=Path, help="reuse the Spark warehouse an earlier run set up here")
    ap.add_argument("--child", choices=["setup", "attack", "recover"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.records)
        return 0

    import machine

    from app.pipeline.runner import plan

    stages = [f"stage:{s}" for s in plan("FULL").stages]
    print(machine.measure().line(), flush=True)
    rows: list[dict[str, Any]] = []
    print(HEAD, flush=True)
    for platform in args.platforms.split(","):
        if platform == "duckdb":
            rows += bench("duckdb", args.records, stages + PUBLISH_POINTS + [CONTROL])
        elif platform == "spark":
            every = stages + PUBLISH_POINTS + ["spark:replace", CONTROL]
            points = args.spark_points.split(",") if args.spark_points else every
            rows += bench("spark", args.spark_records, points, args.spark_work)
        else:
            raise SystemExit(f"unknown platform {platform!r}: duckdb or spark")
    control = [r for r in rows if r["point"] == CONTROL]
    rows = [r for r in rows if r["point"] != CONTROL]
    bad = [r for r in rows if not r["killed"] or r["changed"] or r["running_state"] or r["running_warehouse"]]
    bad += [r for r in control if not r["changed"]]  # blind checksums
    bad += [r for r in rows if r["next_run"] not in ("SUCCESS", "SUCCESS_WITH_WARNINGS")]
    print(f"{len(rows)} kills, {len(bad)} with a finding (and {len(control)} control runs)", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
