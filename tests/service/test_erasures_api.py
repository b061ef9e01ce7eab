"""POST/GET /v1/erasures over HTTP: admin only, bad input named, the run it starts removes
every holder of the email, erasure.completed reaches webhook subscribers, and the audit
rows hold no erased value."""

from __future__ import annotations

from app.demo.generator import demo_config
from app.platforms.duckdb import DuckDBAdapter
from tests.service.conftest import RECORDS, make_key, make_settings, wait_run
from tests.service.test_runs_api import wait_deliveries


def test_erasure_by_email_over_http(app_factory, warehouse_path, tmp_path, receiver):
    with DuckDBAdapter.from_path(str(warehouse_path)) as a:
        email = a.scalar(
            "SELECT lower(trim(email)) FROM crm.customers WHERE email LIKE '%@%' "
            "AND lower(trim(email)) <> 'test@test.com' AND NOT lower(trim(email)) LIKE 'noreply@%' GROUP BY 1 "
            "ORDER BY count(*) DESC, 1 LIMIT 1"
        )
    client = app_factory(make_settings(tmp_path, warehouse_path))
    assert client.put("/v1/config", json=demo_config(records=RECORDS)).status_code == 200
    assert wait_run(client, client.post("/v1/runs", json={"mode": "FULL"}).json()["id"])["status"].startswith("SUCCESS")
    hook = client.post("/v1/webhooks", json={"url": receiver.url, "events": ["erasure.completed"]}).json()

    bad = client.post("/v1/erasures", json={"identifier": {"type": "SHOE", "value": "x"}})
    assert bad.status_code == 422 and bad.json()["field"] == "identifier.type"
    assert client.post("/v1/erasures", json={}).status_code == 422
    runner = {"Authorization": f"Bearer {make_key(client, 'run')}"}
    assert client.post("/v1/erasures", json={"entity_keys": ["crm_customers:1"]}, headers=runner).status_code == 403

    made = client.post("/v1/erasures", json={"identifier": {"type": "EMAIL", "value": email.upper()}, "run": True})
    assert made.status_code == 202, made.text
    body = made.json()
    assert body["status"] == "PENDING" and body["run_id"] and made.headers["Location"].startswith("/v1/erasures/")
    run = wait_run(client, body["run_id"])
    assert run["status"].startswith("SUCCESS"), run
    assert run["counts"]["entities_removed_erasure"] >= 1
    assert run["erasures"] == [
        {"erasure_id": body["id"], "applied": True, "entities_removed": run["counts"]["entities_removed_erasure"],
         "lifted": False}
    ]  # fmt: skip
    assert run["counts"][f"erased:{body['id']}"] == run["counts"]["entities_removed_erasure"]  # deprecated mirror
    got = client.get(f"/v1/erasures/{body['id']}").json()
    assert got["status"] == "APPLIED" and got["took_effect_in_run"] == body["run_id"]
    assert got["runs"][0]["entities_removed"] == run["counts"]["entities_removed_erasure"]
    assert client.get("/v1/erasures/er_00000000000000000000").status_code == 404

    d = wait_deliveries(client, hook["id"], 1)[0]
    assert d["event"] == "erasure.completed" and d["status"] == "SUCCEEDED"
    sent = receiver.requests[-1]["json"]
    assert sent["type"] == "erasure.completed" and sent["data"]["erasure_id"] == body["id"]
    assert sent["data"]["entities_removed"] == got["runs"][0]["entities_removed"]
    assert email not in repr(sent)

    client.close()  # releases the DuckDB file
    with DuckDBAdapter.from_path(str(warehouse_path)) as a:
        held = a.scalar(
            "SELECT count(*) FROM idr_out.identity_edges_current WHERE identifier_value_norm = $e",
            {"e": email},
        ) + a.scalar("SELECT count(*) FROM idr_out.identifiers_current WHERE identifier_value_norm = $e", {"e": email})
        assert held == 0
        audit = repr(a.fetchall("SELECT * FROM idr_meta.erasure_request"))
        audit += repr(a.fetchall("SELECT * FROM idr_meta.erasure_suppression"))
        assert email not in audit.lower() and "EMAIL" in audit

        # The sources delete every row holding the email: the next FULL run lifts the erasure.
        for table, col in (("crm.customers", "email"), ("shop.orders", "customer_email"), ("loyalty.members", "email")):
            a.execute(f"DELETE FROM {table} WHERE lower(trim({col})) = $e", {"e": email})
    client = app_factory(make_settings(tmp_path, warehouse_path))
    full = wait_run(client, client.post("/v1/runs", json={"mode": "FULL"}).json()["id"])
    assert full["status"].startswith("SUCCESS"), full
    got = client.get(f"/v1/erasures/{body['id']}").json()
    assert got["status"] == "LIFTED" and got["lifted_in_run"] == full["id"] and got["lifted_at"]
    assert [(e["erasure_id"], e["lifted"]) for e in full["erasures"]] == [(body["id"], True)]
    # The audit trail: who asked, and when it lifted -- never the value.
    events = client.get("/v1/audit", params={"kind": "erasure"}).json()["items"]
    assert [e["action"] for e in events] == ["erasure.lifted", "erasure.request"]
    assert {e["subject"] for e in events} == {body["id"]} and events[0]["diff"]["run_id"] == full["id"]
    assert events[1]["diff"] == {"kind": "IDENTIFIER", "identifier_type": "EMAIL", "entries": 1}
    assert email not in repr(events).lower()
