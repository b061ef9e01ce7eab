"""The web console in a real browser: review and apply a dry run, explore a cluster, watch
runs, configuration, and what a read key may not do."""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx

from app.platforms.duckdb import DuckDBAdapter
from app.services import review
from tests.browser import shot
from tests.ui.conftest import Browse


def _summary(b: Browse) -> dict:
    with b.console.api() as c:
        return c.get(f"/v1/dry-runs/{b.console.dry_run_id}/summary").json()


def test_review_a_dry_run_open_a_merge_apply_it_and_see_the_run(browse: Browse):
    b, page, dry = browse, browse.page, browse.console.dry_run_id
    b.sign_in("run")
    shot(page, "runs")
    # The dry run is in the history with a link to its review.
    row = page.locator("table.runs tr", has_text=dry)
    row.get_by_role("link", name="review").click()
    page.wait_for_url(f"**/ui/dry-runs/{dry}")
    b.check_page()
    shot(page, "review")

    # Summary cards say what the API says.
    s = _summary(b)
    for label, key in (("New", "new_entities"), ("Merged", "merged_entities"), ("Split", "split_entities")):
        card = page.locator(".card", has_text=label)
        assert card.locator(".n").inner_text().replace(",", "") == str(s[key]), label
    assert s["merged_entities"] > 0 and s["split_entities"] > 0

    # Merges and splits are listed, sortable on the server.
    units = page.locator("table.units tbody tr")
    kinds = [t.strip() for t in units.locator("td:first-child").all_inner_texts()]
    assert "Merge" in kinds and "Split" in kinds, kinds
    sizes = [int(x.replace(",", "")) for x in units.locator("td:nth-child(5)").all_inner_texts()]
    assert sizes == sorted(sizes, reverse=True)
    page.get_by_role("link", name="Records changing").click()
    changing = [int(x.replace(",", "")) for x in units.locator("td:nth-child(7)").all_inner_texts()]
    assert changing == sorted(changing, reverse=True)
    assert page.locator("th[aria-sort=descending]", has_text="Records changing").count() == 1

    # Entity changes filter by type.
    page.get_by_label("Change type").select_option("NEW")
    page.locator("#changes").get_by_role("button", name="Filter").click()
    types = {t.strip() for t in page.locator("table.changes tbody td:nth-child(2)").all_inner_texts()}
    assert types == {"new"}, types

    # One merge opened: its records side by side, and the identifiers that link them.
    page.locator("#u-kind").select_option("MERGE")
    page.locator("#units").get_by_role("button", name="Show").click()
    page.locator("table.units a.unit-link").first.click()
    page.wait_for_url(re.compile(r".*/merges/R\d+$"))
    b.check_page()
    columns = page.locator(".side-by-side > .column")
    assert columns.count() >= 2
    assert page.locator(".record").count() >= 2
    shared = page.locator(".record .ident.shared")
    assert shared.count() >= 2, "the identifiers linking the merged clusters are highlighted"
    link = page.locator("ul.links li").first.inner_text()
    assert "held by records of" in link
    shot(page, "merge")

    # Apply: the console lands on the new run, which appears, finishes, and says what it applied.
    page.go_back()
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r".*/ui/runs/run_.*"))
    run_id = page.url.rsplit("/", 1)[1]
    assert page.get_by_text(f"Applying dry run {dry}").is_visible()
    page.wait_for_function("() => !document.querySelector('[data-poll]')", timeout=60_000)
    assert page.locator(".badge").first.inner_text().startswith("success")
    assert page.locator("svg.stages rect.bar").count() >= 5
    with b.console.api() as c:
        api_run = c.get(f"/v1/runs/{run_id}").json()
    metrics = page.locator("section", has=page.get_by_role("heading", name="Metrics")).locator("dl.facts div")
    shown = {m.locator("dt").inner_text(): m.locator("dd").inner_text().replace(",", "") for m in metrics.all()}
    assert shown == {k.replace("_", " "): str(v) for k, v in api_run["counts"].items()} and shown
    warnings = page.locator("section", has=page.get_by_role("heading", name="Warnings"))
    for w in api_run["warnings"]:
        assert w in warnings.inner_text()
    shot(page, "run")
    b.nav("Runs")
    applied = page.locator("table.runs tr", has_text=run_id)
    assert applied.count() == 1 and dry in applied.inner_text()
    with b.console.api() as c:
        run = c.get(f"/v1/runs/{run_id}").json()
    assert run["apply_of"] == dry and run["status"].startswith("SUCCESS")

    # Applying it again is refused, and the review says why.
    page.goto(f"{b.console.base}/ui/dry-runs/{dry}")
    assert page.get_by_text(f"Applied by run {run_id}").is_visible()
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(f"**/ui/dry-runs/{dry}")
    refusal = page.locator(".flash.error").inner_text()
    assert refusal.startswith("Not applied:") and "production state changed" in refusal, refusal
    shot(page, "review-refused", docs=False)
    assert _runs(b).count(run_id) == 1 and len([r for r in _runs(b) if r.startswith("run_")]) == 2


def test_search_an_entity_and_open_its_graph(browse: Browse):
    b, page = browse, browse.page
    b.sign_in("read")
    with DuckDBAdapter.from_path(b.console.settings.duckdb_path) as a:
        rid = a.scalar(
            "SELECT resolved_id FROM idr_out.identity_clusters_current WHERE cluster_size BETWEEN 3 AND 12 "
            "ORDER BY cluster_size DESC, resolved_id LIMIT 1"
        )
    with b.console.api() as c:
        cluster = c.get(f"/v1/clusters/{rid}").json()
    key = cluster["members"][1]
    b.nav("Clusters")
    page.get_by_label("Entity key, identifier value or resolved id").fill(key)
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r".*/ui/clusters/R\d+.*"))
    b.check_page()
    assert cluster["resolved_id"] in page.locator("h1").inner_text()
    graph = page.locator("svg.graph")
    assert graph.locator(".node").count() == cluster["cluster_size"]
    assert graph.locator(".edge").count() >= cluster["cluster_size"] - 1
    assert graph.locator(f'.node.focus[data-key="{key}"]').count() == 1
    score = page.locator("dl.facts div", has_text="Confidence").locator("dd").inner_text()
    assert score == f"{cluster['confidence']['confidence_score']:.2f}"
    golden = page.locator("section", has=page.locator("#golden-h")).locator("tbody tr")
    assert golden.count() == len(cluster["golden_profile"]) > 0
    for row, g in zip(golden.all(), cluster["golden_profile"], strict=True):  # each value with its source
        cells = row.locator("th, td").all_inner_texts()
        assert cells[0] == g["attribute_name"] and g["source_entity_key"] in cells[2], cells
        assert g["source_table_id"] in cells[2]

    # "Why are these two linked?": click two records; the path is highlighted and explained.
    first, last = cluster["members"][0], cluster["members"][-1]
    graph.locator(f'.node[data-key="{first}"]').click()
    graph.locator(f'.node[data-key="{last}"]').focus()  # the second by keyboard: nodes are buttons
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*from=.*to=.*"))
    hops = page.locator("ol.path li")
    with b.console.api() as c:
        explained = c.get(f"/v1/entities/{first}/explain", params={"to": last}).json()
    assert hops.count() == explained["hops"] >= 1
    nodes = page.locator("svg.graph .node.on-path")
    on_path = {nodes.nth(i).get_attribute("data-key") for i in range(nodes.count())}
    assert on_path == set(explained["path"])
    assert page.locator("svg.graph .edge.on-path").count() == explained["hops"]
    shot(page, "cluster")

    # An identifier value finds the records holding it.
    ident = explained["links"][0]["shared_identifiers"][0]
    b.nav("Clusters")
    page.get_by_label("Entity key, identifier value or resolved id").fill(ident["identifier_value"].upper())
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table tbody tr")
    assert rows.count() >= 2
    assert all(cluster["resolved_id"] in t for t in rows.locator("td:nth-child(3)").all_inner_texts())
    shot(page, "search")


def test_read_key_sees_no_apply_button_and_a_forged_post_is_refused(browse: Browse):
    b, page, dry = browse, browse.page, browse.console.dry_run_id
    b.sign_in("read")
    page.goto(f"{b.console.base}/ui/dry-runs/{dry}")
    assert page.locator(".card").count() == 6
    assert page.get_by_role("button", name="Apply").count() == 0
    assert page.get_by_role("button", name="Discard").count() == 0
    page.goto(f"{b.console.base}/ui/runs")
    assert page.get_by_role("button", name="Start").count() == 0
    page.goto(f"{b.console.base}/ui/dry-runs/{dry}")
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    before = _runs(b)
    # With the session's own CSRF token: the key's scope refuses it.
    r = page.request.post(f"{b.console.base}/ui/dry-runs/{dry}/apply", form={"csrf": token})
    assert r.status == 403 and "scope &#39;run&#39;" in r.text()
    # Without a token (what another site could forge): refused before anything else.
    r = page.request.post(f"{b.console.base}/ui/dry-runs/{dry}/apply", form={})
    assert r.status == 403 and "CSRF" in r.text()
    r = page.request.post(f"{b.console.base}/ui/dry-runs/{dry}/discard", form={"csrf": token})
    assert r.status == 403
    assert _runs(b) == before, "nothing was started"
    with b.console.api() as c:
        assert c.get(f"/v1/dry-runs/{dry}/summary").status_code == 200  # not discarded
    shot(page, "review-read-key", docs=False)


def _runs(b: Browse) -> list[str]:
    with b.console.api() as c:
        return [r["id"] for r in c.get("/v1/runs", params={"limit": 500}).json()["items"]]


def test_run_key_forged_post_from_another_site_is_refused(browse: Browse):
    b, page, dry = browse, browse.page, browse.console.dry_run_id
    b.sign_in("run")
    page.goto(f"{b.console.base}/ui/dry-runs/{dry}")
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    r = page.request.post(
        f"{b.console.base}/ui/dry-runs/{dry}/discard", form={"csrf": token}, headers={"Origin": "https://evil.example"}
    )
    assert r.status == 403 and "cross-origin" in r.text()
    r = page.request.post(f"{b.console.base}/ui/dry-runs/{dry}/discard", form={"csrf": "not-the-token"})
    assert r.status == 403
    with b.console.api() as c:
        assert c.get(f"/v1/dry-runs/{dry}/summary").status_code == 200


def test_start_a_dry_run_and_watch_its_stages_live(browse: Browse):
    b, page = browse, browse.page
    b.sign_in("run")
    settings = b.console.settings
    settings.run_stage_delay_seconds = 0.3  # slow enough to be seen running
    try:
        page.get_by_label("Run mode").select_option("INCR")
        assert page.get_by_label("dry run").is_checked()
        page.get_by_role("button", name="Start").click()
        page.wait_for_url(re.compile(r".*/ui/runs/dry_run_.*"))
        run_id = page.url.rsplit("/", 1)[1]
        page.wait_for_selector("#progress progress", timeout=20_000)  # live progress shown while it runs
        shot(page, "run-live")
        page.wait_for_function("() => !document.querySelector('[data-poll]')", timeout=60_000)
    finally:
        settings.run_stage_delay_seconds = 0.0
    assert "dry run complete" in page.locator("#progress .badge").inner_text()
    assert page.get_by_role("link", name="Review this dry run").is_visible()
    page.goto(f"{b.console.base}/ui/runs?kind=dry")
    assert page.locator("table.runs tbody tr", has_text=run_id).count() == 1
    assert page.locator("svg.chart circle").count() >= 3
    b.check_page()


def test_configuration_read_only_for_read_keys_editable_by_admin(browse: Browse):
    b, page = browse, browse.page
    b.sign_in("read")
    b.nav("Configuration")
    for title in ("Sources", "Rules", "Identifier mappings", "Exclusions", "Attribute mappings", "Survivorship"):
        assert page.get_by_role("heading", name=re.compile(f"^{title}")).is_visible(), title
    assert page.locator("textarea").count() == 0
    b.check_page()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/ui/sign-in")

    b.sign_in("admin")
    b.nav("Configuration")
    text = page.get_by_label(re.compile("The whole document")).input_value()
    bad = text.replace("canonicalize: EMAIL", "canonicalize: SHOUTING", 1)
    assert bad != text
    page.get_by_label(re.compile("The whole document")).fill(bad)
    page.get_by_role("button", name="Validate and save").click()
    shown = page.locator("#config-errors").inner_text()
    b.errors.clear()  # the browser logs the 422 answer; it is the point here
    # The same message the API gives for the same document.
    import yaml

    with b.console.api() as c:
        api = c.put("/v1/config", json=yaml.safe_load(bad)).json()
    assert api["status"] == 422 and api["detail"] in shown
    assert page.get_by_label(re.compile("The whole document")).input_value() == bad  # kept for fixing
    shot(page, "config")
    page.get_by_label(re.compile("The whole document")).fill(text)
    page.get_by_role("button", name="Validate and save").click()
    assert page.get_by_text("Configuration saved").is_visible()


def test_narrow_screen_and_keyboard(browse: Browse):
    b, page, dry = browse, browse.page, browse.console.dry_run_id
    b.sign_in("run")
    with DuckDBAdapter.from_path(b.console.settings.duckdb_path) as a:
        merge = review.page_units(a, dry, kind="MERGE", limit=1)[0][0]["cluster_id"]
        split = review.page_units(a, dry, kind="SPLIT", limit=1)[0][0]["cluster_id"]
        rid, member, other, value = a.fetchone(
            "SELECT m.resolved_id, e.left_entity_key, e.right_entity_key, e.identifier_value_norm "
            "FROM idr_out.identity_edges_current e JOIN idr_out.identity_resolved_membership_current m "
            "ON m.entity_key = e.left_entity_key ORDER BY 1, 2 LIMIT 1"
        )
    every_page = (
        f"/ui/dry-runs/{dry}",
        f"/ui/dry-runs/{dry}/merges/{merge}",
        f"/ui/dry-runs/{dry}/splits/{split}",
        "/ui/runs",
        f"/ui/runs/{b.console.full_run_id}",
        f"/ui/clusters?q={quote(value)}",
        f"/ui/clusters/{rid}?from={quote(member)}&to={quote(other)}",
        "/ui/config",
    )
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        for path in every_page:
            page.goto(b.console.base + path)
            assert page.locator("main h1").count() == 1, path
            page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")
            wide = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            assert wide <= 1, f"{path} scrolls sideways by {wide}px at {width}px"
            b.check_page()
            if width == 1280 and "/splits/" in path:
                shot(page, "split")
    page.goto(f"{b.console.base}/ui/dry-runs/{dry}")
    shot(page, "review-narrow")
    # Keyboard: the first Tab reaches the skip link, which moves focus to the content.
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    # Tab order then walks the controls: the Apply button can be reached and is focus-visible.
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.id") == "apply":
            break
    else:
        raise AssertionError("Apply cannot be reached with the keyboard")


def test_sign_in_with_a_bad_key_and_revoked_sessions(browse: Browse):
    b, page = browse, browse.page
    page.goto(f"{b.console.base}/ui/sign-in")
    b.check_page()
    page.get_by_label("API key").fill("idr_not_a_key")
    page.get_by_role("button", name="Sign in").click()
    assert "unknown or revoked API key" in page.locator("#sign-in-error").inner_text()
    b.errors.clear()  # the 401 answer is logged by the browser
    shot(page, "sign-in")
    cookies = {c["name"]: c for c in page.context.cookies()}
    b.sign_in("read")
    cookie = next(c for c in page.context.cookies() if c["name"] == "idr_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    assert b.console.keys["read"] not in cookie["value"]
    assert "idr_console" not in cookies or cookies["idr_console"]["value"] != cookie["value"]


def test_cancel_a_running_run_a_read_key_sees_no_cancel(browse: Browse):
    b, page = browse, browse.page
    b.sign_in("run")
    settings = b.console.settings
    settings.run_stage_delay_seconds = 1.0  # a run stays running for seconds
    try:
        page.get_by_label("Run mode").select_option("INCR")
        page.get_by_role("button", name="Start").click()
        page.wait_for_url(re.compile(r".*/ui/runs/dry_run_.*"))
        run_id = page.url.rsplit("/", 1)[1]
        page.wait_for_selector("#progress progress", timeout=20_000)
        b.nav("Runs")  # the runs page lists it under "Now", refreshed while it runs
        live = page.locator("#live[data-poll]")
        assert live.locator(f'a[href="/ui/runs/{run_id}"]').count() == 1 and live.locator("progress").count() == 1
        live.get_by_role("link", name=run_id).click()
        page.wait_for_url(f"**/ui/runs/{run_id}")
        with httpx.Client(base_url=b.console.base, timeout=30) as c:
            token = re.search(r'name="csrf" value="([^"]+)"', c.get("/ui/sign-in").text).group(1)  # type: ignore[union-attr]
            c.post("/ui/sign-in", data={"csrf": token, "api_key": b.console.keys["read"]})
            html = c.get(f"/ui/runs/{run_id}").text
        assert "data-poll" in html and ">Cancel</button>" not in html  # running, and no button for a read key
        page.get_by_role("button", name="Cancel").click()
        page.wait_for_url(f"**/ui/runs/{run_id}")
        assert page.get_by_text(f"Cancel requested: run {run_id}").is_visible()
        page.wait_for_function("() => !document.querySelector('[data-poll]')", timeout=60_000)
    finally:
        settings.run_stage_delay_seconds = 0.0
    assert "cancelled" in page.locator("#progress .badge").inner_text()
    assert page.get_by_role("button", name="Cancel").count() == 0
    assert b.console.wait(run_id)["status"] == "CANCELLED"


def test_a_cluster_too_large_to_draw_shows_what_links_it(browse: Browse, monkeypatch):
    from app.ui import svg

    b, page = browse, browse.page
    b.sign_in("read")
    with DuckDBAdapter.from_path(b.console.settings.duckdb_path) as a:
        rid, size = a.fetchone(
            "SELECT resolved_id, cluster_size FROM idr_out.identity_clusters_current "
            "ORDER BY cluster_size DESC, resolved_id LIMIT 1"
        )
    monkeypatch.setattr(svg, "GRAPH_MAX_NODES", size - 1)  # the service runs in this process
    page.goto(f"{b.console.base}/ui/clusters/{rid}")
    assert page.locator("svg.graph").count() == 0
    assert page.get_by_text(f"more than the {size - 1} a readable picture holds").is_visible()
    for caption in ("Links by identifier type", "Values linking most records", "Records by source table"):
        assert page.locator("table", has=page.locator("caption", has_text=caption)).locator("tbody tr").count() >= 1
    tables = page.locator("table", has=page.locator("caption", has_text="Records by source table"))
    assert sum(int(t.replace(",", "")) for t in tables.locator("td.num").all_inner_texts()) == size
    b.check_page()
    shot(page, "cluster-summary")
