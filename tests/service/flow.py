"""The end-to-end flow every deployment mode must pass, through HTTP only (plus direct
warehouse reads for independent checks when no other process holds the file)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook

from app.demo.generator import demo_config, make_delta
from app.platforms.duckdb import DuckDBAdapter
from tests.pipeline.world import STORED_IDENTIFIERS
from tests.service.conftest import RECORDS, Receiver, wait_run

PRODUCTION = (
    "identity_resolved_membership_current",
    "identity_clusters_current",
    "identity_edges_current",
    "golden_profile_current",
)


def fingerprints(path: Path) -> dict[str, str]:
    with DuckDBAdapter.from_path(str(path)) as a:
        out = {t: a.table_fingerprint(f"idr_out.{t}") for t in PRODUCTION}
        out["run_state"] = a.table_fingerprint("idr_meta.run_state")
    return out


def full_flow(client: TestClient, warehouse: Path, receiver: Receiver) -> dict:
    # Webhook subscription: the secret is shown once and never again.
    r = client.post(
        "/v1/webhooks",
        json={"url": receiver.url, "events": ["run.succeeded", "dry_run.completed", "run.failed"]},
    )
    assert r.status_code == 201, r.text
    hook = r.json()
    assert hook["secret"].startswith("whsec_")
    assert "secret" not in client.get(f"/v1/webhooks/{hook['id']}").json()

    # Configuration over HTTP, validated like the YAML path.
    r = client.put("/v1/config", json=demo_config(records=RECORDS))
    assert r.status_code == 200, r.text
    assert r.json()["counts"]["sources"] == 3
    assert client.get("/v1/config/rules/email_exact").json()["identifier_type"] == "EMAIL"

    # A dry run: 202 + Location, poll to completion.
    before = fingerprints(warehouse)
    r = client.post("/v1/runs", json={"mode": "FULL", "dry_run": True})
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/v1/runs/{r.json()['id']}"
    dry = wait_run(client, r.json()["id"])
    assert dry["status"] == "DRY_RUN_COMPLETE", dry
    assert dry["progress"]["percent"] == 100.0
    assert [s["name"] for s in dry["stages"]][-1] == "dry_run_diff"
    assert fingerprints(warehouse) == before, "a dry run must not touch production"

    summary = client.get(f"/v1/dry-runs/{dry['id']}/summary").json()
    assert summary["total_entities"] > 0 and summary["new_entities"] == summary["total_entities"]

    # Page through every change with the cursor.
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 250, "change_type": "NEW"} | ({"cursor": cursor} if cursor else {})
        page = client.get(f"/v1/dry-runs/{dry['id']}/changes", params=params).json()
        seen += [c["entity_key"] for c in page["items"]]
        assert all(c["change_type"] == "NEW" for c in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == summary["total_entities"] == len(set(seen))
    assert seen == sorted(seen)
    clusters = client.get(f"/v1/dry-runs/{dry['id']}/clusters").json()["items"]
    assert clusters and all(c["proposed_resolved_id"] for c in clusters)

    # Apply exactly the reviewed proposal.
    r = client.post(f"/v1/dry-runs/{dry['id']}/apply")
    assert r.status_code == 202, r.text
    applied = wait_run(client, r.json()["id"])
    assert applied["status"] in ("SUCCESS", "SUCCESS_WITH_WARNINGS"), applied
    assert applied["apply_of"] == dry["id"]
    with DuckDBAdapter.from_path(str(warehouse)) as a:
        published = dict(a.fetchall("SELECT entity_key, resolved_id FROM idr_out.identity_resolved_membership_current"))
        proposed = dict(
            a.fetchall(
                "SELECT entity_key, proposed_resolved_id FROM idr_out.dry_run_results WHERE run_id = $r",
                {"r": dry["id"]},
            )
        )
    assert published == proposed, "apply must publish exactly the reviewed proposal"
    # Applying the same dry run again is refused with the reason (production moved on).
    r = client.post(f"/v1/dry-runs/{dry['id']}/apply")
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    assert "stale" in r.json()["detail"]

    # Change some source rows, run INCR.
    with DuckDBAdapter.from_path(str(warehouse)) as a:
        make_delta(a, 0.05, seed=3)
    r = client.post("/v1/runs", json={"mode": "INCR"})
    assert r.status_code == 202, r.text
    incr = wait_run(client, r.json()["id"])
    assert incr["status"] in ("SUCCESS", "SUCCESS_WITH_WARNINGS"), incr
    assert incr["counts"]["entities_processed"] > 0

    # Look up an entity of a multi-record cluster and explain a link inside it.
    with DuckDBAdapter.from_path(str(warehouse)) as a:
        rid, size = a.fetchone(
            "SELECT resolved_id, cluster_size FROM idr_out.identity_clusters_current "
            "ORDER BY cluster_size DESC, resolved_id LIMIT 1"
        )
        members = [
            m
            for (m,) in a.fetchall(
                "SELECT entity_key FROM idr_out.identity_resolved_membership_current WHERE resolved_id = $r "
                "ORDER BY entity_key",
                {"r": rid},
            )
        ]
        idents = {}
        for k, t, v in a.fetchall(
            f"SELECT entity_key, identifier_type, identifier_value_norm FROM ({STORED_IDENTIFIERS}) AS s "
            "WHERE entity_key IN (SELECT entity_key FROM idr_out.identity_resolved_membership_current "
            "WHERE resolved_id = $r)",
            {"r": rid},
        ):
            idents.setdefault(k, set()).add((t, v))
        other = a.scalar(
            "SELECT entity_key FROM idr_out.identity_resolved_membership_current WHERE resolved_id <> $r LIMIT 1",
            {"r": rid},
        )
    assert size >= 3
    ent = client.get(f"/v1/entities/{members[0]}").json()
    assert ent["resolved_id"] == rid and ent["cluster_size"] == size
    assert {g["attribute_name"] for g in ent["golden_profile"]} >= {"first_name", "email"}

    page = client.get(f"/v1/clusters/{rid}", params={"limit": 2}).json()
    assert page["members"] == members[:2] and page["next_cursor"] == members[1]

    ex = client.get(f"/v1/entities/{members[0]}/explain", params={"to": members[-1]})
    assert ex.status_code == 200, ex.text
    ex = ex.json()
    assert ex["path"][0] == members[0] and ex["path"][-1] == members[-1] and ex["hops"] == len(ex["path"]) - 1
    for link in ex["links"]:
        shared = {(s["identifier_type"], s["identifier_value"]) for s in link["shared_identifiers"]}
        assert shared, link
        # Independently: both records really hold each identifier the explanation names.
        assert shared <= idents[link["from"]] & idents[link["to"]], link
    r = client.get(f"/v1/entities/{members[0]}/explain", params={"to": other})
    assert r.status_code == 404 and r.json()["field"] == "to"

    # Signed webhooks arrived, verifiable with the standardwebhooks library.
    got = receiver.wait_for(
        lambda q: q["json"]["type"] == "run.succeeded" and q["json"]["data"]["run_id"] == incr["id"]
    )
    dry_hook = receiver.wait_for(lambda q: q["json"]["type"] == "dry_run.completed")[0]
    wh = Webhook(hook["secret"])
    for req in (got[0], dry_hook):
        verified = wh.verify(req["body"], req["headers"])
        assert verified["data"]["run_id"] == req["json"]["data"]["run_id"]
    assert dry_hook["json"]["data"]["run_id"] == dry["id"]
    deliveries = client.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["items"]
    assert any(d["status"] == "SUCCEEDED" and d["attempt_log"][0]["status_code"] == 200 for d in deliveries)
    return {"dry": dry, "applied": applied, "incr": incr, "hook": hook}
