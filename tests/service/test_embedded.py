"""Embedded mode: no broker; the Celery task code runs on worker threads inside the API."""

from __future__ import annotations

from tests.service.conftest import make_settings
from tests.service.flow import full_flow


def test_full_flow_embedded(app_factory, warehouse_path, tmp_path, receiver):
    client = app_factory(make_settings(tmp_path, warehouse_path))
    assert client.get("/readyz").json()["mode"] == "embedded"
    full_flow(client, warehouse_path, receiver)
