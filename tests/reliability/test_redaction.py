"""A run's error message quotes the source value it failed on; keys below admin (and
webhook receivers) see the message without it."""

from __future__ import annotations

from app.core.redact import redact_values
from app.demo.generator import demo_config
from app.platforms.duckdb import DuckDBAdapter
from tests.service.conftest import RECORDS, make_key, make_settings, wait_run


def test_redact_values():
    assert redact_values("Could not convert string 'boom 59' to INT32") == "Could not convert string '…' to INT32"
    assert redact_values('x "it\'s" y') == "x '…' y"
    assert redact_values(None) is None
    # BigQuery quotes nothing: the rest of the sentence after "value:" is the value.
    bq = "Bad int64 value: boom 59; reason: invalidQuery"
    assert redact_values(bq) == "Bad int64 value: '…'; reason: invalidQuery"
    assert redact_values("Numeric value 'boom 59' is not recognized") == "Numeric value '…' is not recognized"


def test_error_values_are_shown_to_admin_keys_only(app_factory, warehouse_path, tmp_path, receiver):
    client = app_factory(make_settings(tmp_path, warehouse_path))
    assert client.put("/v1/config", json=demo_config(records=RECORDS)).status_code == 200
    client.post("/v1/webhooks", json={"url": receiver.url, "events": ["run.failed"]})
    with DuckDBAdapter.from_path(str(warehouse_path)) as a:  # as a hand edit of idr_meta could
        a.execute(
            "UPDATE idr_meta.identifier_mapping SET identifier_value_expr = 'CAST(email AS INTEGER)' "
            "WHERE identifier_type = 'EMAIL'"
        )
    run_id = client.post("/v1/runs", json={"mode": "FULL"}).json()["id"]
    done = wait_run(client, run_id)
    assert done["status"] == "FAILED"
    admin_msg = done["error"]["message"]
    assert "@" in admin_msg, admin_msg  # the admin sees the offending email value
    reader = {"Authorization": f"Bearer {make_key(client, 'read')}"}
    shown = client.get(f"/v1/runs/{run_id}", headers=reader).json()["error"]["message"]
    listed = client.get("/v1/runs", headers=reader).json()["items"][0]["error"]["message"]
    assert shown == listed == redact_values(admin_msg) and "@" not in shown, shown
    hook = receiver.wait_for(lambda q: q["json"]["data"]["run_id"] == run_id)[0]
    assert "@" not in hook["json"]["data"]["error_message"]
