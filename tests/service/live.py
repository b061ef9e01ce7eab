"""`idr serve` as a real process (as `make run` starts it), for tests that need other
processes to share its warehouse: the user's loaders, the CLI."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**over: str) -> dict[str, str]:
    """The parent's environment without IDR_* (tests set what they mean), plus ``over``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDR_")}
    env.update(PYTHONPATH=str(REPO), IDR_DUCKDB_THREADS="1", IDR_DUCKDB_MEMORY_LIMIT="1GB")
    env.update(over)
    return env


@dataclass
class Live:
    proc: subprocess.Popen
    base: str
    output: list[str] = field(default_factory=list)
    key: str | None = None

    def client(self, key: str | None = None) -> httpx.Client:
        k = key or self.key
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {k}"} if k else {}, timeout=30)

    def text(self) -> str:
        return "".join(self.output)


def _pump(proc: subprocess.Popen, out: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        out.append(line)


def wait_ready(base: str, proc: subprocess.Popen, output: list[str], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("the service exited:\n" + "".join(output))
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the service did not answer:\n" + "".join(output))


@contextmanager
def live_service(cmd: list[str], env: dict[str, str], cwd: Path, port: int) -> Iterator[Live]:
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    live = Live(proc, f"http://127.0.0.1:{port}")
    threading.Thread(target=_pump, args=(proc, live.output), daemon=True).start()
    try:
        wait_ready(live.base, proc, live.output)
        m = re.search(r"export IDR_API_KEY=(\S+)", live.text())
        live.key = m.group(1) if m else None
        yield live
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does to `make run`
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def idr(*args: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
