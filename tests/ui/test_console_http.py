"""The console over plain HTTP (no browser): sessions, CSRF, redirects, headers, offline
assets, and the review and explorer queries behind the pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from app.platforms.duckdb import DuckDBAdapter
from app.services import explorer, lookups, review
from app.ui import svg
from tests.ui.conftest import Console

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def anon(console: Console) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=console.base, timeout=30) as c:
        yield c


def _sign_in(c: httpx.Client, key: str, nxt: str = "/ui/runs") -> httpx.Response:
    token = CSRF.search(c.get("/ui/sign-in").text).group(1)  # type: ignore[union-attr]
    return c.post("/ui/sign-in", data={"csrf": token, "api_key": key, "next": nxt})


def test_root_and_pages_without_a_session_lead_to_sign_in(anon: httpx.Client):
    r = anon.get("/")
    assert r.status_code == 307 and r.headers["location"] == "/ui/"
    r = anon.get("/ui/dry-runs/x?kind=MERGE")
    assert r.status_code == 303 and r.headers["location"] == "/ui/sign-in?next=/ui/dry-runs/x%3Fkind%3DMERGE"
    r = anon.post("/ui/runs", data={"mode": "FULL"})
    assert r.status_code == 401 and "sign in" in r.text
    assert "/v1/" not in r.headers.get("content-type", "") and r.headers["content-type"].startswith("text/html")


def test_sign_in_needs_the_form_token_and_a_known_key(anon: httpx.Client, console: Console):
    r = anon.post("/ui/sign-in", data={"api_key": console.keys["read"]})
    assert r.status_code == 403 and "CSRF" in r.text
    r = _sign_in(anon, "idr_nope")
    assert r.status_code == 401 and "unknown or revoked API key" in r.text
    r = _sign_in(anon, console.keys["read"], nxt="//evil.example/x")
    assert r.status_code == 303 and r.headers["location"] == "/ui/runs"  # never an open redirect
    cookie = r.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower() and "path=/ui" in cookie.lower()
    assert console.keys["read"] not in cookie
    page = anon.get("/ui/runs")
    assert page.status_code == 200 and "console-read" in page.text


def test_revoking_the_key_ends_the_session(console: Console):
    from app.services.auth import create_key, revoke_key

    rt = console.rt
    with rt.session() as s:
        row, key = create_key(s, "short-lived", "read")
    with httpx.Client(base_url=console.base, timeout=30) as c:
        assert _sign_in(c, key).status_code == 303
        assert c.get("/ui/runs").status_code == 200
        with rt.session() as s:
            assert revoke_key(s, row.id)
        r = c.get("/ui/runs")
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/sign-in")
        assert "revoked" in c.get(r.headers["location"]).text


def test_pages_load_only_their_own_assets_under_a_strict_policy(anon: httpx.Client, console: Console):
    _sign_in(anon, console.keys["admin"])
    pages = ["/ui/runs", f"/ui/dry-runs/{console.dry_run_id}", "/ui/clusters", "/ui/config", "/ui/sign-in"]
    assets: set[str] = set()
    for path in pages:
        r = anon.get(path)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert r.headers["cache-control"] == "no-store"
        refs = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', r.text)
        assert refs and all(u.startswith("/ui/static/") for u in refs), refs
        assert "style=" not in r.text  # no inline styles: the policy would block them
        assets |= set(refs)
    for url in assets:
        r = anon.get(url)
        assert r.status_code == 200, url
        assert not re.search(r"https?://", r.text.replace("http://www.w3.org/2000/svg", "")), url


def test_merges_and_splits_match_the_entity_changes(console: Console):
    run = console.dry_run_id
    with DuckDBAdapter.from_path(console.settings.duckdb_path) as a:
        rows = a.fetch_dicts(
            "SELECT entity_key, current_resolved_id AS cur, proposed_resolved_id AS pro, change_type "
            "FROM idr_out.dry_run_results WHERE run_id = $r",
            {"r": run},
        )
        counts = review.unit_counts(a, run)
        pages = {}
        for sort in review.SORTS:
            seen, cursor = [], None
            while True:
                items, cursor = review.page_units(a, run, sort=sort, cursor=cursor, limit=2)
                seen += items
                if cursor is None:
                    break
            pages[sort] = seen
        merge = next(u for u in pages["size"] if u["kind"] == "MERGE")
        unit = review.unit(a, run, "MERGE", merge["cluster_id"])
        with pytest.raises(Exception, match="no merge"):
            review.unit(a, run, "MERGE", "R99999999999")
    # The definitions the change types use, recomputed from the entity rows.
    into: dict[str, set] = {}
    out_of: dict[str, set] = {}
    for r in rows:
        if r["pro"] and r["cur"]:
            into.setdefault(r["pro"], set()).add(r["cur"])
            out_of.setdefault(r["cur"], set()).add(r["pro"])
    merges = {p for p, cs in into.items() if len(cs) > 1}
    splits = {c for c, ps in out_of.items() if len(ps) > 1}
    assert counts == {"MERGE": len(merges), "SPLIT": len(splits)} and merges and splits
    for sort, seen in pages.items():
        keys = [(u["kind"], u["cluster_id"]) for u in seen]
        assert len(keys) == len(set(keys)) == len(merges) + len(splits), sort
        assert {c for k, c in keys if k == "MERGE"} == merges and {c for k, c in keys if k == "SPLIT"} == splits
        if sort != "id":
            values = [u[sort] for u in seen]
            assert values == sorted(values, reverse=True), sort
    merged = {r["entity_key"] for r in rows if r["pro"] == merge["cluster_id"]}
    assert {x.entity_key for g in unit.groups for x in g.records} == merged  # small merges show every record
    assert {g.cluster_id for g in unit.groups if g.cluster_id} == into[merge["cluster_id"]]
    assert unit.links, "a merge is caused by identifiers its sides share"
    holders = {
        (i["identifier_type"], i["value"], g.cluster_id)
        for g in unit.groups
        for x in g.records
        for i in x.identifiers
        if i["links"]
    }
    for link in unit.links:
        assert {g for t, v, g in holders if (t, v) == (link["identifier_type"], link["value"])} == set(link["groups"])


def test_identifier_search_forms_and_cluster_summary(console: Console):
    assert explorer.value_forms(" Ada@Example.COM ") == [
        " Ada@Example.COM ",
        "Ada@Example.COM",
        "ada@example.com",
        "ADA@EXAMPLE.COM",
    ]
    assert "15557770101" in explorer.value_forms("+1 (555) 777-0101")
    with DuckDBAdapter.from_path(console.settings.duckdb_path) as a:
        left, itype, value, rid = a.fetchone(
            "SELECT e.left_entity_key, e.identifier_type, e.identifier_value_norm, m.resolved_id "
            "FROM idr_out.identity_edges_current e JOIN idr_out.identity_resolved_membership_current m "
            "ON m.entity_key = e.left_entity_key WHERE e.identifier_type = 'EMAIL' ORDER BY 1 LIMIT 1"
        )
        found, more = explorer.search_identifier(a, value.upper())
        summary = lookups.cluster_summary(a, rid, top=1000)
        size = a.scalar("SELECT cluster_size FROM idr_out.identity_clusters_current WHERE resolved_id = $r", {"r": rid})
        # The same summary recomputed from the public views: the edges of the cluster's members.
        edges = a.fetchall(
            "SELECT e.identifier_type, e.identifier_value_norm, e.left_entity_key, e.right_entity_key "
            "FROM idr_out.identity_edges_current AS e JOIN idr_out.identity_resolved_membership_current AS m "
            "ON m.entity_key = e.left_entity_key WHERE m.resolved_id = $r",
            {"r": rid},
        )
        members = [
            k
            for (k,) in a.fetchall(
                "SELECT entity_key FROM idr_out.identity_resolved_membership_current WHERE resolved_id = $r", {"r": rid}
            )
        ]
    assert more is None and len(found) >= 2
    assert {(f["identifier_type"], f["identifier_value"], f["resolved_id"]) for f in found} == {(itype, value, rid)}
    assert left in {f["entity_key"] for f in found}
    links: dict[str, int] = {}
    holders: dict[tuple[str, str], set[str]] = {}
    for t, v, x, y in edges:
        links[t] = links.get(t, 0) + 1
        holders.setdefault((t, v), set()).update((x, y))
    assert {t["identifier_type"]: (int(t["links"]), int(t["dist_values"])) for t in summary["by_type"]} == {
        t: (n, len({v for tt, v in holders if tt == t})) for t, n in links.items()
    }
    assert {(h["identifier_type"], h["identifier_value"]): int(h["records"]) for h in summary["hubs"]} == {
        k: len(ks) for k, ks in holders.items()
    }
    by_table: dict[str, int] = {}
    for k in members:
        by_table[k.split(":", 1)[0]] = by_table.get(k.split(":", 1)[0], 0) + 1
    assert {t["table_id"]: int(t["records"]) for t in summary["tables"]} == by_table and sum(by_table.values()) == size


def test_graph_layout_is_deterministic_and_complete():
    members = [f"t:{i}" for i in range(12)]
    edges = [
        {
            "left_entity_key": "t:0",
            "right_entity_key": f"t:{i}",
            "identifier_type": "EMAIL",
            "identifier_value_norm": "a@b",
        }
        for i in range(1, 12)
    ] + [
        {"left_entity_key": "t:3", "right_entity_key": "t:4", "identifier_type": "PHONE", "identifier_value_norm": "1"}
    ]
    g = svg.build_graph(members, edges)
    assert len(g.edges) == 12
    one, two = svg.layout(g, "R1"), svg.layout(g, "R1")
    assert one == two and set(one) == set(members)
    assert all(0 <= x <= 1 and 0 <= y <= 1 for x, y in one.values())
    distinct = {(round(x, 3), round(y, 3)) for x, y in one.values()}
    assert len(distinct) == len(members)  # no two records drawn on one spot
    picture = str(svg.link_graph(g, seed_text="R1", path=["t:1", "t:0", "t:5"]))
    assert picture.count('class="node') == 12 and picture.count("on-path") >= 3 + 2
    assert "<script" not in picture


@contextmanager
def _signed_in(console: Console, scope: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=console.base, timeout=30) as c:
        assert _sign_in(c, console.keys[scope]).status_code == 303
        yield c


def test_entity_changes_page_by_page_as_the_api_lists_them(console: Console):
    run = console.dry_run_id
    with console.api() as api:
        items = api.get(f"/v1/dry-runs/{run}/changes", params={"limit": 1000}).json()["items"]
        want = [x["entity_key"] for x in items if x["change_type"] != "UNCHANGED"]  # the page's default
        want_merged = [
            x["entity_key"]
            for x in api.get(f"/v1/dry-runs/{run}/changes", params={"limit": 1000, "change_type": "MERGED"}).json()[
                "items"
            ]
        ]
    with _signed_in(console, "read") as c:
        for change, expected in ((None, want), ("MERGED", want_merged)):
            url, seen, pages = f"/ui/dry-runs/{run}" + (f"?change={change}" if change else ""), [], 0
            while url:
                html = c.get(url).text
                body = html[html.index('id="changes"') :]
                seen += re.findall(r"<tr><td><code>([^<]+)</code></td>", body)
                nxt = re.search(r'href="([^"]*after=[^"#]*)#changes" rel="next"', body)
                url = nxt.group(1).replace("&amp;", "&") if nxt else None
                pages += 1
            assert seen == expected and pages == -(-len(expected) // 25), change
    assert len(want) > 25  # more than one page: the cursor was followed


def test_a_cluster_over_the_drawing_limit_shows_a_summary(console: Console, monkeypatch):
    with DuckDBAdapter.from_path(console.settings.duckdb_path) as a:
        rid, size = a.fetchone(
            "SELECT resolved_id, cluster_size FROM idr_out.identity_clusters_current ORDER BY cluster_size DESC LIMIT 1"
        )
    with _signed_in(console, "read") as c:
        assert 'class="graph"' in c.get(f"/ui/clusters/{rid}").text
        monkeypatch.setattr(svg, "GRAPH_MAX_NODES", size - 1)
        page = c.get(f"/ui/clusters/{rid}").text
    assert 'class="graph"' not in page and "more than the" in page
    assert "Links by identifier type" in page and "Values linking most records" in page
    assert f"{size:,}" in page


def test_discard_from_the_console(console: Console):
    with console.api() as api:
        dry = api.post("/v1/runs", json={"mode": "INCR", "dry_run": True}).json()["id"]
    assert console.wait(dry)["status"] == "DRY_RUN_COMPLETE"
    with _signed_in(console, "run") as c:
        page = c.get(f"/ui/dry-runs/{dry}").text
        token = CSRF.search(page).group(1)  # type: ignore[union-attr]
        r = c.post(f"/ui/dry-runs/{dry}/discard", data={"csrf": token})
        assert r.status_code == 303 and r.headers["location"] == "/ui/runs?kind=dry"
        assert f"Dry run {dry} discarded" in c.get(r.headers["location"]).text
        gone = c.get(f"/ui/dry-runs/{dry}")
        assert gone.status_code == 404 and "has no results" in gone.text
    with console.api() as api:
        assert api.get(f"/v1/dry-runs/{dry}/summary").status_code == 404


def _console_posts(console: Console) -> list[str]:
    """Every path of the console that accepts a POST, with a real run id in its parameters."""
    from starlette.routing import Route

    from app.ui import create_console

    def walk(routes: list) -> list[Route]:
        out = []
        for r in routes:
            if isinstance(r, Route):
                out.append(r)
            else:  # an included router (FastAPI >= 0.16x keeps it as one entry)
                inner = getattr(getattr(r, "original_router", None), "routes", None) or getattr(r, "routes", [])
                out += walk(list(inner))
        return out

    ui = create_console(console.rt)  # the same routes the service mounts; only read here
    ids = {"run_id": console.dry_run_id}
    return sorted({"/ui" + r.path.format(**ids) for r in walk(ui.routes) if "POST" in (r.methods or set())})


def test_every_form_that_changes_something_needs_its_token_and_its_scope(console: Console):
    posts = _console_posts(console)
    # What the console can change; a new form shows up here by itself.
    assert {"/ui/sign-in", "/ui/sign-out", "/ui/runs", "/ui/config", f"/ui/dry-runs/{console.dry_run_id}/apply"} <= set(
        posts
    ) and len(posts) >= 7, posts
    with console.api() as api:
        runs_before = [r["id"] for r in api.get("/v1/runs", params={"limit": 500}).json()["items"]]
        config_before = api.get("/v1/config").json()
    body = {"mode": "FULL", "document": "sources: []", "allow_empty": "on", "api_key": console.keys["admin"]}
    with _signed_in(console, "admin") as c:
        token = CSRF.search(c.get("/ui/runs").text).group(1)  # type: ignore[union-attr]
        for path in posts:
            for data, headers in (
                (body, {}),  # no token: what another site's form would send
                ({**body, "csrf": token + "x"}, {}),  # a wrong one
                ({**body, "csrf": token}, {"Origin": "https://evil.example"}),  # the right one, from elsewhere
            ):
                r = c.post(path, data=data, headers=headers)
                assert r.status_code == 403, (path, data.get("csrf"), headers, r.status_code)
                assert "CSRF" in r.text or "cross-origin" in r.text, path
        assert c.get("/ui/runs").status_code == 200  # still signed in: sign-out was refused too
    with _signed_in(console, "read") as c:
        token = CSRF.search(c.get("/ui/runs").text).group(1)  # type: ignore[union-attr]
        for path in posts:
            if path in ("/ui/sign-in", "/ui/sign-out"):
                continue
            r = c.post(path, data={**body, "csrf": token})
            assert r.status_code == 403 and "needs an API key with scope" in r.text, (
                path,
                r.status_code,
                r.text[-400:],
            )
    with console.api() as api:
        assert [r["id"] for r in api.get("/v1/runs", params={"limit": 500}).json()["items"]] == runs_before
        assert api.get("/v1/config").json() == config_before
        assert api.get(f"/v1/dry-runs/{console.dry_run_id}/summary").status_code == 200


def test_a_stale_dry_run_is_refused_with_the_reason(console: Console):
    with console.api() as api:
        dry = api.post("/v1/runs", json={"mode": "INCR", "dry_run": True}).json()["id"]
        assert console.wait(dry)["status"] == "DRY_RUN_COMPLETE"
        doc = api.get("/v1/config").json()
        rule = doc["rules"][0]
        changed = {**doc, "rules": [{**rule, "max_group_size": rule["max_group_size"] + 1}, *doc["rules"][1:]]}
        assert api.put("/v1/config", json=changed).status_code == 200
        before = [r["id"] for r in api.get("/v1/runs", params={"limit": 500}).json()["items"]]
    try:
        with _signed_in(console, "run") as c:
            token = CSRF.search(c.get(f"/ui/dry-runs/{dry}").text).group(1)  # type: ignore[union-attr]
            r = c.post(f"/ui/dry-runs/{dry}/apply", data={"csrf": token, "idempotency_key": "stale-1"})
            assert r.status_code == 303 and r.headers["location"] == f"/ui/dry-runs/{dry}"
            page = c.get(r.headers["location"]).text
        assert f"Not applied: dry run {dry} is stale: the configuration" in page
        with console.api() as api:
            assert [r["id"] for r in api.get("/v1/runs", params={"limit": 500}).json()["items"]] == before
    finally:
        with console.api() as api:
            assert api.put("/v1/config", json={k: v for k, v in doc.items() if k != "version"}).status_code == 200


def _follow(c: httpx.Client, url: str, pattern: str) -> list[str]:
    """The pages from ``url`` on, following each page's rel=next link that matches ``pattern``."""
    pages = []
    while url:
        r = c.get(url)
        assert r.status_code == 200, (url, r.text[-300:])
        pages.append(r.text)
        nxt = re.search(rf'href="({pattern})[^"]*" rel="next"', r.text)
        url = nxt.group(1).replace("&amp;", "&") if nxt else ""
    return pages


def test_identifier_search_results_page_by_page(console: Console, monkeypatch):
    from app.ui import clusters

    with DuckDBAdapter.from_path(console.settings.duckdb_path) as a:
        value, holders = a.fetchone(
            "SELECT identifier_value_norm, count(*) + 1 FROM idr_out.identity_edges_current "
            "GROUP BY identifier_value_norm ORDER BY 2 DESC, 1 LIMIT 1"
        )
        everything, more = explorer.search_identifier(a, value, None, 1000)
    assert holders >= 3 and more is None and len(everything) >= holders
    monkeypatch.setattr(clusters, "RESULTS_PER_PAGE", 2)
    with _signed_in(console, "read") as c:
        pages = _follow(c, f"/ui/clusters?q={value}", r"/ui/clusters\?[^\"#]*cursor=[^\"#]*")
        bad = c.get("/ui/clusters", params={"q": value, "cursor": "bm90IGEgY3Vyc29y"})
    seen = [m for p in pages for m in re.findall(r"<tr><td><code>([^<]+)</code></td>", p)]
    assert seen == [r["entity_key"] for r in everything] and len(pages) == -(-len(everything) // 2)
    assert bad.status_code == 400 and "cursor is not valid" in bad.text


def test_an_opened_merge_pages_its_columns_and_each_columns_records(console: Console, monkeypatch):
    run = console.dry_run_id
    with DuckDBAdapter.from_path(console.settings.duckdb_path) as a:
        merge = review.page_units(a, run, kind="MERGE", sort="records", limit=1)[0][0]
        rows = a.fetch_dicts(
            "SELECT entity_key, current_resolved_id AS cur FROM idr_out.dry_run_results "
            "WHERE run_id = $r AND proposed_resolved_id = $c",
            {"r": run, "c": merge["cluster_id"]},
        )
    columns = {r["cur"] or review.NO_CLUSTER for r in rows}
    assert len(columns) >= 2 and any(sum(r["cur"] == c for r in rows) >= 3 for c in columns)
    monkeypatch.setattr(review, "COLUMNS_PER_PAGE", 1)
    monkeypatch.setattr(review, "RECORDS_PER_GROUP", 2)
    base = f"/ui/dry-runs/{run}/merges/{merge['cluster_id']}"
    seen: dict[str, list[str]] = {}
    with _signed_in(console, "read") as c:
        column_pages = _follow(c, base, re.escape(base) + r"\?cols=\d+")
        for html in column_pages:
            first = re.search(r'<section class="column" aria-label="([^"]+)"', html).group(1)  # type: ignore[union-attr]
            col = review.NO_CLUSTER if first == "new records" else first
            for p in [html, *_follow_column(c, html, base)]:
                seen.setdefault(col, []).extend(re.findall(r"<h4><code>([^<]+)</code>", p))
        assert c.get(base, params={"cols": -1}).status_code == 400
        assert c.get(base, params={"column": "R99999999999"}).status_code == 404
    assert len(column_pages) == len(columns) and set(seen) == columns
    for col, keys in seen.items():
        assert keys == sorted(r["entity_key"] for r in rows if (r["cur"] or review.NO_CLUSTER) == col), col


def _follow_column(c: httpx.Client, html: str, base: str) -> list[str]:
    nxt = re.search(rf'href="({re.escape(base)}\?column=[^"#]*)#side-h" rel="next"', html)
    return _follow(c, nxt.group(1).replace("&amp;", "&"), re.escape(base) + r"\?column=[^\"#]*") if nxt else []


def test_configuration_errors_are_the_apis_and_nothing_is_saved(console: Console):
    import html

    import yaml

    with console.api() as api:
        doc = {k: v for k, v in api.get("/v1/config").json().items() if k != "version"}
        bad = {
            **doc,
            "rules": [{**doc["rules"][0], "canonicalize": "SHOUTING"}, *doc["rules"][1:]],
            "identifier_mappings": [{**doc["identifier_mappings"][0], "table_id": "no_such_table"}],
        }
        want = api.put("/v1/config", json=bad).json()
    assert want["status"] == 422 and len(want["errors"]) >= 2, want
    with _signed_in(console, "admin") as c:
        token = CSRF.search(c.get("/ui/config").text).group(1)  # type: ignore[union-attr]
        r = c.post("/ui/config", data={"csrf": token, "document": yaml.safe_dump(bad)})
        shown = html.unescape(r.text)
        syntax = c.post("/ui/config", data={"csrf": token, "document": "rules: [\n  - rule_id: x\n"})
    assert r.status_code == 422 and want["detail"] in shown
    for e in want["errors"]:
        assert f"{e['field']}: {e['message']}" in re.sub(r"<[^>]+>", "", shown), e
    assert syntax.status_code == 400 and "YAML syntax error at line" in syntax.text
    with console.api() as api:
        assert {k: v for k, v in api.get("/v1/config").json().items() if k != "version"} == doc
