"""Runs started by the CLI are the service's runs too: listed by GET /v1/runs with their
stages, cancellable through the API, announced to webhook subscribers, and bound by the
one-writing-run-per-target rule; a run on a file the service does not serve is not recorded."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.core.settings import get_settings
from app.platforms.duckdb import DuckDBAdapter
from tests.service.conftest import ADMIN_KEY, LOOPBACK, WEBHOOK_KEY, Receiver
from tests.service.live import clean_env

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(cli, monkeypatch, demo_db):
    """The service's settings (default target = the demo warehouse) and an app on them."""
    from app.main import create_app

    path, _ = demo_db
    monkeypatch.setenv("IDR_DUCKDB_PATH", str(path))
    monkeypatch.setenv("IDR_BOOTSTRAP_API_KEY", ADMIN_KEY)
    monkeypatch.setenv("IDR_WEBHOOK_ALLOW_HOSTS", LOOPBACK)
    monkeypatch.setenv("IDR_WEBHOOK_SECRET_KEYS", WEBHOOK_KEY)
    get_settings.cache_clear()
    with TestClient(create_app(get_settings()), headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as client:
        yield client, path


def test_cli_runs_are_listed_by_the_api(cli, served):
    client, path = served
    r = cli("run", "--mode", "INCR", "-q")
    assert r.exit_code == 0, r.output
    r = cli("run", "--mode", "FULL", "--dry-run", "-q")
    assert r.exit_code == 0, r.output
    runs = client.get("/v1/runs").json()["items"]
    assert [(x["mode"], x["dry_run"], x["status"]) for x in runs] == [
        ("FULL", True, "DRY_RUN_COMPLETE"),
        ("INCR", False, "SUCCESS"),
    ]
    assert all(x["requested_by"].startswith("cli:") and x["target"] == "default" for x in runs)
    assert [s["name"] for s in runs[1]["stages"]][-1] == "publish" and runs[1]["progress"]["percent"] == 100.0
    with DuckDBAdapter.from_path(str(path)) as a:
        ids = {row[0] for row in a.fetchall("SELECT run_id FROM idr_out.run_history")}
    assert {x["id"] for x in runs} <= ids  # the same ids as the warehouse's run history
    # The dry run the CLI made is reviewed and applied like an API one.
    dry = runs[0]["id"]
    assert client.get(f"/v1/dry-runs/{dry}/summary").status_code == 200
    r = cli("dry-runs", "apply", dry, "-q")
    assert r.exit_code == 0, r.output
    applied = client.get("/v1/runs", params={"dry_run": False}).json()["items"][0]
    assert applied["apply_of"] == dry and applied["status"] in ("SUCCESS", "SUCCESS_WITH_WARNINGS")


def test_one_writing_run_per_target_across_cli_and_api(cli, served):
    client, path = served
    from app.services.auth import Principal
    from app.services.runs import create_run

    rt = client.app.state.runtime
    sent = []
    rt.dispatcher.send = lambda task, args, countdown=None: sent.append(args)  # hold it QUEUED
    api_run, _ = create_run(
        rt, Principal("k", "api", frozenset({"admin"})), target="default", mode="FULL", dry_run=False
    )
    r = cli("run", "--mode", "INCR")
    assert r.exit_code == 1 and api_run.id in r.stderr and "Traceback" not in r.output
    assert cli("run", "--mode", "INCR", "--dry-run", "-q").exit_code == 0  # dry runs run alongside


def test_a_cli_run_on_another_file_is_not_recorded(cli, served, tmp_path):
    client, path = served
    other = tmp_path / "other.duckdb"
    other.write_bytes(path.read_bytes())
    r = cli("run", "--mode", "INCR", "-q", "--db", str(other))
    assert r.exit_code == 0, r.output
    assert client.get("/v1/runs").json()["items"] == []


def test_webhooks_fire_for_cli_runs(cli, served, receiver: Receiver):
    client, _ = served
    hook = client.post("/v1/webhooks", json={"url": receiver.url, "events": ["run.succeeded"]}).json()
    r = cli("run", "--mode", "INCR", "-q")
    assert r.exit_code == 0, r.output
    got = receiver.wait_for(lambda x: x["json"]["type"] == "run.succeeded")
    assert got[0]["json"]["data"]["run_id"] == client.get("/v1/runs").json()["items"][0]["id"]
    deliveries = client.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["items"]
    assert deliveries and deliveries[0]["status"] == "SUCCEEDED"


def test_the_api_cancels_a_cli_run(served, tmp_path):
    client, path = served
    env = clean_env(
        IDR_DUCKDB_PATH=str(path),
        IDR_STATE_DB_URL=get_settings().state_db_url,
        IDR_RUN_STAGE_DELAY_SECONDS="0.5",
    )
    before = _production(path)
    p = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "run", "--mode", "FULL", "-q"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            items = client.get("/v1/runs", params={"status": "RUNNING"}).json()["items"]
            if items:
                break
            assert time.monotonic() < deadline and p.poll() is None, p.communicate()
            time.sleep(0.1)
        assert client.post(f"/v1/runs/{items[0]['id']}/cancel").status_code == 202
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 1 and "CANCELLED" in err, (out, err)
    assert client.get(f"/v1/runs/{items[0]['id']}").json()["status"] == "CANCELLED"
    assert _production(path) == before


def _production(path: Path) -> dict[str, str]:
    with DuckDBAdapter.from_path(str(path)) as a:
        return {
            t: a.table_fingerprint(f"idr_out.{t}")
            for t in ("identity_resolved_membership_current", "identity_clusters_current")
        }
