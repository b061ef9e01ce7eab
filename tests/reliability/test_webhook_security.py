"""Webhooks: SSRF refusals (at registration and against the address resolved at delivery),
error categories instead of socket messages, one sender per delivery, encrypted secrets."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select, text

from app.db.models import Webhook, WebhookDelivery
from app.services import egress, secretbox, webhooks
from tests.service.conftest import WEBHOOK_KEY, make_settings

PUBLIC = "93.184.215.14"


@pytest.fixture
def client(app_factory, warehouse_path, tmp_path):
    return app_factory(make_settings(tmp_path, warehouse_path, webhook_allow_hosts=""))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://100.64.0.1/hook",  # shared address space
        "http://0.0.0.0/hook",
        "http://localhost:9/hook",
    ],
)
def test_registration_refuses_non_public_addresses(client, url):
    r = client.post("/v1/webhooks", json={"url": url, "events": ["run.failed"]})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "url" and "not a public address" in r.json()["detail"]
    assert client.get("/v1/webhooks").json()["items"] == []


def test_registration_refuses_names_resolving_to_private_addresses(client, monkeypatch):
    monkeypatch.setattr(egress, "resolver", lambda host, port: {"hooks.example.test": [PUBLIC, "10.0.0.7"]}[host])
    r = client.post("/v1/webhooks", json={"url": "https://hooks.example.test/x", "events": ["run.failed"]})
    assert r.status_code == 422 and "resolves to 10.0.0.7" in r.json()["detail"], r.text
    monkeypatch.setattr(egress, "resolver", lambda host, port: (_ for _ in ()).throw(OSError("Name not known")))
    r = client.post("/v1/webhooks", json={"url": "https://nowhere.example.test/x", "events": ["run.failed"]})
    assert r.status_code == 422 and "does not resolve" in r.json()["detail"], r.text


def test_allow_list_is_explicit(app_factory, warehouse_path, tmp_path):
    c = app_factory(make_settings(tmp_path, warehouse_path, webhook_allow_hosts="127.0.0.1, 10.9.0.0/16"))
    assert c.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/h", "events": ["*"]}).status_code == 201
    assert c.post("/v1/webhooks", json={"url": "http://10.9.3.4/h", "events": ["*"]}).status_code == 201
    assert c.post("/v1/webhooks", json={"url": "http://10.8.3.4/h", "events": ["*"]}).status_code == 422


def test_delivery_checks_the_address_resolved_now(client, monkeypatch):
    """DNS rebinding: public at registration, private at delivery -> refused, recorded as a
    category, never retried, nothing sent."""
    answers = {"hooks.example.test": [PUBLIC]}
    monkeypatch.setattr(egress, "resolver", lambda host, port: answers[host])
    hook = client.post("/v1/webhooks", json={"url": "http://hooks.example.test/x", "events": ["*"]}).json()
    answers["hooks.example.test"] = ["127.0.0.1"]
    sent: list[object] = []
    monkeypatch.setattr(webhooks, "_post", lambda *a, **k: sent.append(a))
    rt = client.app.state.runtime
    with rt.session() as s:
        (d,) = webhooks.create_deliveries(s, "run.failed", {"run_id": "r1"})
    assert webhooks.deliver(d) == "failed"
    assert sent == []
    (item,) = client.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["items"]
    assert item["status"] == "FAILED"
    assert [(a["outcome"], a["error"]) for a in item["attempt_log"]] == [("failed", "address_refused")]


def test_delivery_errors_are_categories(app_factory, warehouse_path, tmp_path):
    from tests.service.live import free_port

    c = app_factory(make_settings(tmp_path, warehouse_path, webhook_max_attempts=1))
    port = free_port()  # nothing listens there
    hook = c.post("/v1/webhooks", json={"url": f"http://127.0.0.1:{port}/h", "events": ["*"]}).json()
    with c.app.state.runtime.session() as s:
        (d,) = webhooks.create_deliveries(s, "run.failed", {"run_id": "r1"})
    webhooks.deliver(d)
    (item,) = c.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["items"]
    assert item["attempt_log"][0]["error"] == "connection_failed"
    assert item["attempt_log"][0]["error"] in webhooks.ERROR_CATEGORIES


def test_two_workers_never_send_one_delivery_at_once(app_factory, warehouse_path, tmp_path):
    seen: list[str] = []

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("content-length") or 0))
            seen.append(self.headers["webhook-id"])
            time.sleep(0.5)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        c = app_factory(make_settings(tmp_path, warehouse_path))
        url = f"http://127.0.0.1:{server.server_address[1]}/h"
        assert c.post("/v1/webhooks", json={"url": url, "events": ["*"]}).status_code == 201
        with c.app.state.runtime.session() as s:
            (d,) = webhooks.create_deliveries(s, "run.failed", {"run_id": "r1"})
        results: list[str] = []
        barrier = threading.Barrier(2)

        def worker() -> None:
            barrier.wait()
            results.append(webhooks.deliver(d))

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert seen == [d], seen
        assert sorted(results) == ["claimed-elsewhere", "success"], results
        assert webhooks.deliver(d) == "SUCCEEDED"  # finished: a late redelivery sends nothing
        assert seen == [d]
    finally:
        server.shutdown()
        server.server_close()


def test_secrets_are_encrypted_at_rest_and_rotate(app_factory, warehouse_path, tmp_path, receiver):
    settings = make_settings(tmp_path, warehouse_path)
    c = app_factory(settings)
    created = c.post("/v1/webhooks", json={"url": receiver.url, "events": ["*"]}).json()
    rt = c.app.state.runtime
    with rt.engine.connect() as conn:
        stored = conn.execute(text("SELECT secret FROM webhooks")).scalar_one()
    assert stored.startswith("fernet:") and created["secret"] not in stored
    assert secretbox.decrypt(settings, stored) == created["secret"]

    # Rotation: the new key first, re-encrypt, drop the old key.
    new = Fernet.generate_key().decode()
    both = settings.model_copy(update={"webhook_secret_keys": SecretStr(f"{new},{WEBHOOK_KEY}")})
    with rt.session() as s:
        assert secretbox.rotate(both, s) == 1
    only_new = settings.model_copy(update={"webhook_secret_keys": SecretStr(new)})
    with rt.session() as s:
        row = s.scalar(select(Webhook))
        assert secretbox.decrypt(only_new, row.secret) == created["secret"]
        with pytest.raises(Exception, match="does not decrypt"):
            secretbox.decrypt(settings, row.secret)  # the old key alone no longer reads it


def test_refuses_to_start_without_the_key_when_webhooks_exist(app_factory, warehouse_path, tmp_path, receiver):
    from app.main import create_app

    settings = make_settings(tmp_path, warehouse_path)
    c = app_factory(settings)
    assert c.post("/v1/webhooks", json={"url": receiver.url, "events": ["*"]}).status_code == 201
    keyless = settings.model_copy(update={"webhook_secret_keys": None})
    with pytest.raises(SystemExit) as e:
        create_app(keyless)
    assert e.value.code == 2


def test_plain_secrets_from_before_are_encrypted_at_start(app_factory, warehouse_path, tmp_path, receiver):
    settings = make_settings(tmp_path, warehouse_path)
    c = app_factory(settings)
    c.post("/v1/webhooks", json={"url": receiver.url, "events": ["*"]})
    rt = c.app.state.runtime
    with rt.session() as s:  # as a row written before encryption looks
        s.execute(text("UPDATE webhooks SET secret = 'whsec_cGxhaW4='"))
    with rt.session() as s:
        secretbox.check_at_start(settings, s)
    with rt.session() as s:
        row = s.scalar(select(Webhook))
        assert row.secret.startswith("fernet:") and secretbox.decrypt(settings, row.secret) == "whsec_cGxhaW4="
        assert s.scalar(select(WebhookDelivery)) is None
