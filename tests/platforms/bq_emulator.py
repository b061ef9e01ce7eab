"""Starts bqemulator on 127.0.0.1 (its own venv, offline) for the real BigQuery client."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.platforms.bigquery import BigQueryAdapter, bigquery_connector

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Emulator:
    proc: subprocess.Popen
    endpoint: str
    log: Path

    def adapter(self, project: str) -> BigQueryAdapter:
        return BigQueryAdapter(bigquery_connector(project, endpoint=self.endpoint))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_emulator(timeout: float = 90.0) -> Emulator:
    python = subprocess.run(
        ["bash", str(REPO / "scripts" / "bq-emulator-venv.sh")], check=True, capture_output=True, text=True
    ).stdout.strip()
    rest, grpc = _free_port(), _free_port()
    log = Path(tempfile.mkstemp(prefix="bqemulator-", suffix=".log")[1])
    env = {**os.environ, "BQEMU_LOG_LEVEL": "warning"}
    proc = subprocess.Popen(
        [python, str(REPO / "scripts" / "bq_emulator_offline.py"), "start", "--rest-host", "127.0.0.1",
         "--rest-port", str(rest), "--grpc-host", "127.0.0.1", "--grpc-port", str(grpc), "--ephemeral"],
        stdout=log.open("w"), stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{rest}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bqemulator exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{endpoint}/readyz", timeout=2).status_code == 200:
                return Emulator(proc, endpoint, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"bqemulator not ready after {timeout}s: {log.read_text()[-2000:]}")
