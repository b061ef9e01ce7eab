"""The audit trail: configuration changes (with a diff), dry-run applies, API-key and
webhook changes, each with who, when and from which key; GET /v1/audit is admin-only,
paginated, filtered by kind and time; old events are pruned."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from app.db.models import AuditEvent, now_utc
from app.demo.generator import demo_config
from app.main import _prune_audit
from app.services import auth
from tests.service.conftest import RECORDS, make_key, make_settings, wait_run


def _events(client, **params) -> list[dict]:
    r = client.get("/v1/audit", params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_audit_trail(app_factory, warehouse_path, tmp_path, receiver):
    client = app_factory(make_settings(tmp_path, warehouse_path))
    rt = client.app.state.runtime
    with rt.session() as s:
        admin_id = auth.authenticate(s, client.headers["Authorization"].split()[1]).key_id

    assert client.put("/v1/config", json=demo_config(records=RECORDS)).status_code == 200
    rule = client.get("/v1/config/rules/email_exact").json()
    changed = {k: v for k, v in rule.items() if k != "id"} | {"max_group_size": 77}
    assert client.put("/v1/config/rules/email_exact", json=changed).status_code == 200
    assert client.put("/v1/config/settings/max_cc_rounds", json={"value": "40"}).status_code == 200
    hook = client.post("/v1/webhooks", json={"url": receiver.url, "events": ["*"]}).json()
    assert client.delete(f"/v1/webhooks/{hook['id']}").status_code == 204
    dry = client.post("/v1/runs", json={"mode": "FULL", "dry_run": True}).json()["id"]
    assert wait_run(client, dry)["status"] == "DRY_RUN_COMPLETE"
    applied = client.post(f"/v1/dry-runs/{dry}/apply")
    assert applied.status_code == 202, applied.text
    wait_run(client, applied.json()["id"])
    with rt.session() as s:
        row, _ = auth.create_key(s, "ci", "run", actor="ops@example.com")
        auth.revoke_key(s, row.id, actor="ops@example.com")

    events = _events(client, limit=100)
    assert [e["action"] for e in events] == [
        "api_key.revoke", "api_key.create", "dry_run.apply", "webhook.delete", "webhook.create",
        "settings.update", "rules.replace", "config.replace", "api_key.create",
    ]  # fmt: skip
    assert events[-1]["actor"] == "settings:IDR_BOOTSTRAP_API_KEY"  # the bootstrap key, at start-up
    by = {e["action"]: e for e in reversed(events)}  # the newest of each action
    assert all(e["actor"] == "bootstrap" and e["key_id"] == admin_id for e in events if e["kind"] != "api_key")
    assert by["rules.replace"]["diff"] == {
        "rules": {"changed": [{"id": "email_exact", "before": {"max_group_size": rule["max_group_size"]},
                               "after": {"max_group_size": 77}}]}
    }  # fmt: skip
    assert by["settings.update"]["diff"]["settings"]["max_cc_rounds"]["after"] == "40"
    assert len(by["config.replace"]["diff"]["rules"]["added"]) == len(demo_config(records=RECORDS)["rules"])
    apply = by["dry_run.apply"]
    assert apply["subject"] == dry and apply["diff"]["run_id"] == applied.json()["id"] and apply["target"] == "default"
    assert by["webhook.create"]["diff"]["url"] == receiver.url and "secret" not in str(by["webhook.create"]["diff"])
    assert by["api_key.create"]["actor"] == "ops@example.com" and "key" not in by["api_key.create"]["diff"]

    # Filters and pages.
    assert {e["kind"] for e in _events(client, kind="webhook")} == {"webhook"}
    pages, cursor = [], None
    while True:
        r = client.get("/v1/audit", params={"limit": 3} | ({"cursor": cursor} if cursor else {})).json()
        pages += r["items"]
        cursor = r["next_cursor"]
        if not cursor:
            break
    assert [e["id"] for e in pages] == [e["id"] for e in events]
    assert _events(client, since=(now_utc() + timedelta(minutes=1)).isoformat()) == []
    assert len(_events(client, until=(now_utc() + timedelta(minutes=1)).isoformat(), limit=100)) == len(events)
    assert client.get("/v1/audit", params={"kind": "nope"}).status_code == 422
    reader = make_key(client, "run")
    assert client.get("/v1/audit", headers={"Authorization": f"Bearer {reader}"}).status_code == 403

    # Retention.
    with rt.session() as s:
        s.execute(update(AuditEvent).where(AuditEvent.kind == "webhook").values(at=now_utc() - timedelta(days=500)))
    assert _prune_audit(rt) == 2
    assert _events(client, kind="webhook") == []
