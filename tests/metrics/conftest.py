"""Fixtures for the metrics tests: a DuckDB warehouse with hand-made output tables,
run results, a local HTTP receiver, and the promtool/prometheus binaries."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from app.core.run_record import RunResult, StageResult
from app.platforms.duckdb import DuckDBAdapter
from app.schema import init_schema

REPO = Path(__file__).resolve().parents[2]
PROM_DIR = REPO / "deploy" / "prometheus"

# Hand-made production state: cluster sizes chosen to straddle 1, 1000 and the threshold.
CLUSTER_SIZES = {"r1": 1, "r2": 1, "r3": 1, "r4": 2, "r5": 3, "r6": 1500, "r7": 6000}
THRESHOLD = 2500


def require_binary(name: str) -> str:
    """The binary's path; in CI a missing binary is a failure, never a skip."""
    path = shutil.which(name)
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} is missing in CI (scripts/system-deps.sh installs the Debian package prometheus)")
    pytest.skip(f"{name} not installed locally (apt-get install prometheus)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "wh.duckdb")


@pytest.fixture
def adapter(db_path: str) -> Iterator[DuckDBAdapter]:
    a = DuckDBAdapter.from_path(db_path)
    init_schema(a)
    yield a
    a.close()


def populate_outputs(adapter: DuckDBAdapter) -> None:
    """Clusters, membership consistent with them, and the configured threshold."""
    adapter.execute(
        "UPDATE idr_meta.config SET config_value = $v WHERE config_key = 'large_cluster_threshold'",
        {"v": str(THRESHOLD)},
    )
    eid = 0
    for rid, size in CLUSTER_SIZES.items():
        number = int(rid[1:])
        adapter.execute(
            "INSERT INTO idr_state.clusters (rid, cluster_size, updated_ts) VALUES ($r, $n, now())",
            {"r": number, "n": size},
        )
        adapter.execute(
            "INSERT INTO idr_state.entities (eid, entity_key, rid, updated_ts) "
            "SELECT $e + i, 'crm:' || $k || '-' || i, $r, now() FROM range($n) t(i)",
            {"e": eid, "k": rid, "r": number, "n": size},
        )
        eid += size


def make_result(
    run_id: str,
    *,
    mode: str = "FULL",
    dry_run: bool = False,
    status: str = "SUCCESS",
    entities: int = 7508,
    edges: int = 9000,
    skipped: int = 3,
) -> RunResult:
    t0 = datetime(2024, 1, 15, 14, 30)
    return RunResult(
        run_id=run_id,
        mode=mode,  # type: ignore[arg-type]
        dry_run=dry_run,
        platform="duckdb",
        started_at=t0,
        status=status,  # type: ignore[arg-type]
        ended_at=t0 + timedelta(seconds=12.5),
        duration_seconds=12.5,
        entities_processed=entities,
        edges_created=edges,
        edges_updated=17,
        lp_iterations=4,
        groups_skipped=skipped,
        values_excluded=2,
        stages=[
            StageResult("extract", 1, t0, seconds=1.25, rows_in=8000, rows_out=7508),
            StageResult("edges", 2, t0, seconds=3.5, rows_in=7508, rows_out=edges),
            StageResult("components", 3, t0, seconds=6.0, rows_in=edges, rows_out=7508),
        ],
        rule_stats={
            "email": {
                "edges": 6000,
                "edges_created": 6000,
                "entities_matched": 5000,
                "groups_matched": 900,
                "groups_skipped": 2,
            },
            "phone": {
                "edges": 3000,
                "edges_created": 3000,
                "entities_matched": 2500,
                "groups_matched": 400,
                "groups_skipped": 1,
            },
        },
        error_message="boom" if status == "FAILED" else None,
        error_stage="components" if status == "FAILED" else None,
    )


def write_history(adapter: DuckDBAdapter, r: RunResult) -> None:
    """What the runner writes to run_history / stage_metrics, for independent cross-checks."""
    adapter.execute(
        "INSERT INTO idr_out.run_history (run_id, run_mode, status, started_at, ended_at, duration_seconds, "
        "entities_processed, edges_created, edges_updated, lp_iterations, groups_skipped, values_excluded, "
        "dry_run, platform) VALUES ($id, $m, $s, $st, $en, $d, $e, $ec, $eu, $lp, $gs, $ve, $dr, $p)",
        {
            "id": r.run_id, "m": r.mode, "s": r.status, "st": r.started_at, "en": r.ended_at,
            "d": r.duration_seconds, "e": r.entities_processed, "ec": r.edges_created, "eu": r.edges_updated,
            "lp": r.lp_iterations, "gs": r.groups_skipped, "ve": r.values_excluded, "dr": r.dry_run,
            "p": r.platform,
        },
    )  # fmt: skip
    for s in r.stages:
        adapter.execute(
            "INSERT INTO idr_out.stage_metrics (run_id, stage_name, stage_order, duration_seconds, rows_in, "
            "rows_out) VALUES ($id, $n, $o, $d, $i, $out)",
            {"id": r.run_id, "n": s.name, "o": s.order, "d": s.seconds, "i": s.rows_in, "out": s.rows_out},
        )
    for rule_id, st in r.rule_stats.items():
        adapter.execute(
            "INSERT INTO idr_out.rule_match_audit_current (rule_id, edges, entities_matched, groups_matched, "
            "groups_skipped, last_run_id) VALUES ($r, $e, $em, $gm, $gs, $id)",
            {
                "r": rule_id, "e": st["edges"], "em": st["entities_matched"], "gm": st["groups_matched"],
                "gs": st["groups_skipped"], "id": r.run_id,
            },
        )  # fmt: skip


# ---------------------------------------------------------------- local HTTP receiver
@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self):
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers from ``script`` (status codes, or ("sleep", seconds) then 200) then ``default``."""

    url: str
    requests: list[Received] = field(default_factory=list)
    script: list = field(default_factory=list)
    default: int = 200
    response_body: bytes = b"{}"

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.requests if 200 <= r.status < 300]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            enc = self.headers.get("Content-Encoding")
            if enc == "gzip":
                body = gzip.decompress(body)
            elif enc == "deflate":
                body = zlib.decompress(body)
            with lock:
                action = state.script.pop(0) if state.script else state.default
            delay = 0.0
            if isinstance(action, tuple):  # ("sleep", seconds): answer 200 too late for the client
                delay, action = action[1], 200
            with lock:  # recorded on arrival, so a request the client gave up on is still seen
                state.requests.append(
                    Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body, action)
                )
            time.sleep(delay)
            try:
                self.send_response(action)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(state.response_body)))
                self.end_headers()
                self.wfile.write(state.response_body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_POST = do_PUT = _handle  # noqa: N815

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}"
    yield state
    server.shutdown()
    server.server_close()
