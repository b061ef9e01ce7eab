"""Inputs that once answered 5xx (or were accepted) answer 4xx naming what is wrong:
deep nesting, huge numbers, numbers beyond the platforms' INTEGER, booleans for numbers,
huge strings and bodies."""

from __future__ import annotations

import copy

import pytest

from app.demo.generator import demo_config
from tests.service.conftest import RECORDS, make_settings

JSON = {"content-type": "application/json"}


@pytest.fixture
def client(app_factory, warehouse_path, tmp_path):
    c = app_factory(make_settings(tmp_path, warehouse_path))
    assert c.put("/v1/config", json=demo_config(records=RECORDS)).status_code == 200
    return c


def _doc(**rule0) -> dict:
    doc = copy.deepcopy(demo_config(records=RECORDS))
    doc["rules"][0].update(rule0)
    return doc


def test_deep_nesting_is_400(client):
    for body in ("[" * 50_000 + "]" * 50_000, '{"a":' * 50_000 + "1" + "}" * 50_000, "[" * 40 + "]" * 40):
        r = client.put("/v1/config", content=body, headers=JSON)
        assert r.status_code == 400 and "nested too deeply" in r.json()["detail"], r.text[:300]


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (_doc(max_group_size=10**30), "rules[0].max_group_size"),
        (_doc(priority=10**13), "rules[0].priority"),
        (_doc(rule_name="x" * 5000), "rules[0].rule_name"),
    ],
)
def test_numbers_and_strings_beyond_the_columns_are_422(client, doc, field):
    r = client.put("/v1/config", json=doc)
    assert r.status_code == 422, r.text[:300]
    assert field in {e["field"] for e in r.json()["errors"]}, r.json()


def test_long_exclusion_pattern_is_422(client):
    doc = _doc()
    doc["exclusions"].append({"identifier_type": "EMAIL", "identifier_value_pattern": "x" * 100_000})
    r = client.put("/v1/config", json=doc)
    assert r.status_code == 422, r.text[:300]
    assert any(e["field"].endswith("identifier_value_pattern") for e in r.json()["errors"])


@pytest.mark.parametrize("value", ["9" * 5000, "-" + "9" * 5000, 2**31, "2147483648"])
def test_settings_beyond_int32_are_422(client, value):
    r = client.put("/v1/config/settings/max_cc_rounds", json={"value": value})
    assert r.status_code == 422, r.text[:300]
    assert r.json()["field"] == "value"


def test_settings_refuse_booleans_for_numbers(client):
    r = client.put("/v1/config/settings/max_cc_rounds", json={"value": True})
    assert r.status_code == 422 and r.json()["field"].startswith("value"), r.text
    assert client.get("/v1/config/settings/max_cc_rounds").json()["value"] != "1"


def test_huge_numbers_in_json_are_4xx(client):
    r = client.put("/v1/config/settings/max_cc_rounds", content='{"value": ' + "9" * 5000 + "}", headers=JSON)
    assert 400 <= r.status_code < 500, r.text[:300]


def test_bodies_above_the_limit_are_413(client):
    r = client.put("/v1/config", content=b'{"x": "' + b"a" * (2 << 20) + b'"}', headers=JSON)
    assert r.status_code == 413 and "IDR_API_MAX_BODY_BYTES" in r.json()["detail"]
    r = client.post("/v1/webhooks", content=b'{"url": "' + b"a" * (2 << 20) + b'"}', headers=JSON)
    assert r.status_code == 413
