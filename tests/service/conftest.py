"""Service test fixtures: demo warehouses, apps in embedded or Celery mode, keys, receivers.

Redis and PostgreSQL are real services on this machine; with CI=true a missing one fails
the tests that need it instead of skipping them.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.settings import Settings
from app.demo.generator import generate
from app.platforms.duckdb import DuckDBAdapter
from app.schema import init_schema

ADMIN_KEY = "idr_test_admin_key_0123456789abcdef"
# Fernet key encrypting webhook secrets in tests (a fixed one: worker subprocesses share it).
WEBHOOK_KEY = "bX9O3ZbXvVn5qJcE9r1cT6mFq0yqkqL1n2v5cY7aW3s="
# Test receivers listen on loopback, which webhooks may reach only when allowed explicitly.
LOOPBACK = "127.0.0.1"
RECORDS = 600


def require_service(host: str, port: int, what: str) -> None:
    try:
        with socket.create_connection((host, port), timeout=1):
            return
    except OSError:
        msg = f"{what} is not reachable at {host}:{port}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " (CI=true: services this suite needs must run)")
        pytest.skip(msg)


@pytest.fixture(scope="session")
def warehouse_template(tmp_path_factory) -> Path:
    """Demo source tables + idr schema, no configuration (the tests create it over HTTP)."""
    path = tmp_path_factory.mktemp("wh") / "template.duckdb"
    with DuckDBAdapter.from_path(str(path)) as a:
        generate(a, RECORDS, seed=11)
        init_schema(a)
        a.execute("CHECKPOINT")
    return path


@pytest.fixture
def warehouse_path(warehouse_template, tmp_path) -> Path:
    dst = tmp_path / "wh.duckdb"
    shutil.copy(warehouse_template, dst)
    return dst


def make_settings(tmp_path: Path, warehouse_path: Path, **over: Any) -> Settings:
    base: dict[str, Any] = {
        "duckdb_path": str(warehouse_path),
        "duckdb_threads": 1,
        "duckdb_memory_limit": "1GB",
        "state_db_url": f"sqlite:///{tmp_path}/state.db",
        "bootstrap_api_key": ADMIN_KEY,
        "run_heartbeat_seconds": 0.5,
        "run_stale_after_seconds": 4.0,
        "reaper_interval_seconds": 1.0,
        "webhook_backoff_seconds": 0.2,
        "webhook_backoff_max_seconds": 1.0,
        "webhook_timeout_seconds": 3.0,
        "warehouse_busy_wait_seconds": 5.0,
        "webhook_allow_hosts": LOOPBACK,
        "webhook_secret_keys": WEBHOOK_KEY,
    }
    base.update(over)
    return Settings(**base)


def settings_env(s: Settings) -> dict[str, str]:
    """The same settings as IDR_* variables, for a worker subprocess."""
    env = {}
    for name, value in s.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"IDR_{name.upper()}"] = str(value)
    return env


@pytest.fixture
def app_factory() -> Iterator[Callable[[Settings], TestClient]]:
    from app.main import create_app

    clients: list[TestClient] = []

    def make(settings: Settings) -> TestClient:
        c = TestClient(create_app(settings), headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        c.__enter__()
        clients.append(c)
        return c

    yield make
    for c in reversed(clients):
        c.__exit__(None, None, None)


def make_key(client: TestClient, scopes: str) -> str:
    from app.services.auth import create_key

    with client.app.state.runtime.session() as s:
        _, key = create_key(s, f"test-{scopes}", scopes)
    return key


def wait_run(client: TestClient, run_id: str, timeout: float = 60.0, until=None) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/v1/runs/{run_id}")
        assert r.status_code == 200, r.text
        body = r.json()
        done = until(body) if until else body["status"] not in ("QUEUED", "RUNNING")
        if done:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {body['status']} after {timeout}s: {body}")
        time.sleep(0.1)


@dataclass
class Receiver:
    """A local webhook receiver; ``plan`` gives the status code for each request in turn."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    plan: list[int] = field(default_factory=list)

    def wait_for(self, pred, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = [r for r in list(self.requests) if pred(r)]
            if got:
                return got
            time.sleep(0.05)
        raise AssertionError(
            f"no matching webhook within {timeout}s; got {[r['json'].get('type') for r in self.requests]}"
        )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            rec.requests.append(
                {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body, "json": json.loads(body)}
            )
            code = rec.plan.pop(0) if rec.plan else 200
            self.send_response(code)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield rec
    server.shutdown()
    server.server_close()
