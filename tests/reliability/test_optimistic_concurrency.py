"""Optimistic concurrency on configuration resources (issue 19, item 11): every GET carries
an ETag, a write with a stale If-Match answers 412 and writes nothing, writes without
If-Match still work, and writers in two app instances (each with its own per-process
config lock, as two API replicas have) lose no update: the check runs inside the
warehouse transaction that applies the change."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from app.demo.generator import demo_config
from tests.service.conftest import RECORDS, make_settings

EXCLUSIONS = "/v1/config/exclusions"


def _exclusion(value: str) -> dict[str, str]:
    return {"identifier_type": "EMAIL", "identifier_value_pattern": value, "match_type": "EXACT"}


def _configured(app_factory, tmp_path, warehouse_path, instances: int = 1) -> list:
    settings = make_settings(tmp_path, warehouse_path)
    clients = [app_factory(settings) for _ in range(instances)]
    assert clients[0].put("/v1/config", json=demo_config(records=RECORDS)).status_code == 200
    return clients


def _together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in threads released at once; their results in order."""
    start = threading.Barrier(len(calls))
    out: list[Any] = [None] * len(calls)

    def go(i: int) -> None:
        start.wait()
        out[i] = calls[i]()

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


def test_every_config_resource_has_an_etag_that_follows_its_content(app_factory, tmp_path, warehouse_path):
    (client,) = _configured(app_factory, tmp_path, warehouse_path)
    paths = ["/v1/config", EXCLUSIONS, "/v1/config/rules", "/v1/config/settings", "/v1/config/settings/max_cc_rounds"]
    tags = {}
    for p in paths:
        first, again = client.get(p), client.get(p)
        assert first.status_code == 200 and first.headers["etag"].startswith('"'), (p, first.headers)
        assert first.headers["etag"] == again.headers["etag"], p
        tags[p] = first.headers["etag"]
    yaml = client.get("/v1/config", headers={"Accept": "application/yaml"})
    assert yaml.headers["etag"] == tags["/v1/config"]  # one resource, two forms
    created = client.post(EXCLUSIONS, json=_exclusion("a@example.com"))
    assert created.status_code == 201, created.text
    item = client.get(created.headers["location"])
    assert item.headers["etag"] == created.headers["etag"]  # a write answers with the new version's tag
    changed = {p for p in paths if client.get(p).headers["etag"] != tags[p]}
    assert changed == {"/v1/config", EXCLUSIONS}  # the rules and the settings did not change
    put = client.put("/v1/config/settings/max_cc_rounds", json={"value": "41"})
    assert put.headers["etag"] == client.get("/v1/config/settings/max_cc_rounds").headers["etag"]
    assert put.headers["etag"] != tags["/v1/config/settings/max_cc_rounds"]


def test_two_writers_with_the_same_etag_one_gets_412_and_writes_nothing(app_factory, tmp_path, warehouse_path):
    (client,) = _configured(app_factory, tmp_path, warehouse_path)
    url = "/v1/config/settings/max_cc_rounds"
    tag = client.get(url).headers["etag"]
    first = client.put(url, json={"value": "41"}, headers={"If-Match": tag})
    second = client.put(url, json={"value": "42"}, headers={"If-Match": tag})
    assert first.status_code == 200, first.text
    assert second.status_code == 412, second.text
    problem = second.json()
    assert problem["code"] == "precondition_failed" and problem["field"] == "If-Match"
    assert first.headers["etag"] in problem["detail"]  # names the current version
    assert client.get(url).json()["value"] == "41"
    # The same for an item and for the whole document; '*' matches what exists.
    created = client.post(EXCLUSIONS, json=_exclusion("b@example.com"))
    loc, tag = created.headers["location"], created.headers["etag"]
    assert client.put(loc, json=_exclusion("b@example.com") | {"reason": "spam"}, headers={"If-Match": tag}).is_success
    assert client.delete(loc, headers={"If-Match": tag}).status_code == 412
    assert client.get(loc).json()["reason"] == "spam"
    assert client.delete(loc, headers={"If-Match": "*"}).status_code == 204
    assert client.delete(loc, headers={"If-Match": "*"}).status_code == 412  # '*' needs the item to exist
    doc = client.get("/v1/config")
    stale = doc.headers["etag"]
    assert client.put("/v1/config", json=doc.json(), headers={"If-Match": stale}).status_code == 200
    client.put(url, json={"value": "43"})  # someone else's change
    assert client.put("/v1/config", json=doc.json(), headers={"If-Match": stale}).status_code == 412
    assert client.get(url).json()["value"] == "43"


def test_writes_without_if_match_still_work(app_factory, tmp_path, warehouse_path):
    (client,) = _configured(app_factory, tmp_path, warehouse_path)
    assert client.put("/v1/config/settings/max_cc_rounds", json={"value": "44"}).status_code == 200
    assert client.post(EXCLUSIONS, json=_exclusion("c@example.com")).status_code == 201
    assert client.put("/v1/config", json=client.get("/v1/config").json()).status_code == 200


def test_concurrent_writers_in_two_app_instances_lose_no_update(app_factory, tmp_path, warehouse_path):
    a, b = _configured(app_factory, tmp_path, warehouse_path, instances=2)
    assert a.app.state.runtime.config_lock is not b.app.state.runtime.config_lock  # as two replicas
    values = [f"user{i}@example.com" for i in range(8)]
    answers = _together(
        [(lambda c=c, v=v: c.post(EXCLUSIONS, json=_exclusion(v))) for c, v in zip([a, b] * 4, values, strict=True)]
    )
    assert [r.status_code for r in answers] == [201] * len(values), [r.text for r in answers]
    stored = {x["identifier_value_pattern"] for x in a.get(EXCLUSIONS).json()["items"]}
    assert set(values) <= stored, set(values) - stored
    # The audit trail has one event per write that was committed, not per attempt.
    events = a.get("/v1/audit", params={"kind": "config", "limit": 100}).json()["items"]
    assert sum(e["action"] == "exclusions.create" for e in events) == len(values)


def test_concurrent_writers_with_one_etag_in_two_app_instances_one_wins(app_factory, tmp_path, warehouse_path):
    a, b = _configured(app_factory, tmp_path, warehouse_path, instances=2)
    url = "/v1/config/settings/max_cc_rounds"
    tag = a.get(url).headers["etag"]
    answers = _together(
        [(lambda c=c, i=i: c.put(url, json={"value": str(50 + i)}, headers={"If-Match": tag})) for i, c in
         enumerate([a, b, a, b])]
    )  # fmt: skip
    codes = sorted(r.status_code for r in answers)
    assert codes == [200, 412, 412, 412], [r.text for r in answers]
    winner = next(r for r in answers if r.status_code == 200)
    assert b.get(url).json() == winner.json()
