"""Browser tests of the web console: Debian's Chromium driven by Playwright, against one idr
service (in this process, on a real port) holding a reviewed-ready INCR dry run with merges
and splits. One browser and one service for the whole module set; a fresh browser context
(cookies) per test.

Chromium is a service these tests need (tests/browser.py). Every test leaves a screenshot
of its page in test-artifacts/ui/.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from app.core.settings import Settings
from app.demo.generator import demo_config, generate, make_delta
from app.platforms.duckdb import DuckDBAdapter
from app.schema import init_schema
from tests.browser import chromium, shot
from tests.service.conftest import wait_run
from tests.service.live import free_port

ADMIN_KEY = "idr_console_admin_key_0123456789abcdef"
RECORDS = 600


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@dataclass
class Console:
    base: str
    settings: Settings
    keys: dict[str, str]
    dry_run_id: str = ""
    full_run_id: str = ""
    rt: Any = None  # the service's runtime (it runs in this process)

    def api(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {key or self.keys['admin']}"}, timeout=30
        )

    def wait(self, run_id: str, timeout: float = 60.0) -> dict[str, Any]:
        with self.api() as c:
            return wait_run(c, run_id, timeout)


@pytest.fixture(scope="session")
def console(tmp_path_factory) -> Iterator[Console]:
    """The service with the demo data, a FULL run, then a delta (new, bridging and changed
    records) and an INCR dry run over it: merges, splits, new and moved entities to review."""
    import uvicorn

    from app.main import create_app
    from app.services.auth import create_key

    d = tmp_path_factory.mktemp("console")
    wh = d / "wh.duckdb"
    with DuckDBAdapter.from_path(str(wh)) as a:
        generate(a, RECORDS, seed=11)
        init_schema(a)
    settings = Settings(
        duckdb_path=str(wh),
        duckdb_threads=1,
        duckdb_memory_limit="1GB",
        state_db_url=f"sqlite:///{d}/state.db",
        bootstrap_api_key=ADMIN_KEY,
        duckdb_keep_open_seconds=0.0,  # the fixture writes source rows between requests
        reaper_interval_seconds=1.0,
    )
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="console-server", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the console's service did not start"
        time.sleep(0.05)
    keys = {"admin": ADMIN_KEY}
    rt = app.state.runtime
    with rt.session() as s:
        for scope in ("read", "run"):
            keys[scope] = create_key(s, f"console-{scope}", scope)[1]
    con = Console(base=base, settings=settings, keys=keys, rt=rt)
    try:
        with con.api() as c:
            assert c.put("/v1/config", json=demo_config(records=RECORDS)).status_code == 200
            full = c.post("/v1/runs", json={"mode": "FULL"}).json()["id"]
            assert con.wait(full)["status"].startswith("SUCCESS")
            con.full_run_id = full
            with DuckDBAdapter.from_path(str(wh)) as a:
                make_delta(a, 0.1, seed=3)
            dry = c.post("/v1/runs", json={"mode": "INCR", "dry_run": True}).json()["id"]
            assert con.wait(dry)["status"] == "DRY_RUN_COMPLETE"
            con.dry_run_id = dry
        yield con
    finally:
        server.should_exit = True
        thread.join(timeout=30)


# Every element with its own text: its colour against the first opaque background behind it,
# WCAG 2 contrast ratio >= 4.5 (3 for large text). Elements hidden or off-screen are skipped.
CONTRAST_JS = """() => {
  const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const bg = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg') || !el.offsetParent) continue;
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const st = getComputedStyle(el);
    const [a, b] = [lum(rgb(st.color)), lum(bg(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const large = parseFloat(st.fontSize) >= 24 || (parseFloat(st.fontSize) >= 18.66 && +st.fontWeight >= 700);
    const what = el.tagName + ' "' + el.textContent.trim().slice(0, 30) + '" ';
    if (ratio < (large ? 3 : 4.5)) out.push(what + ratio.toFixed(2));
  }
  return out;
}"""


@dataclass
class Browse:
    """One test's browser context: its page, the requests it made, and what went wrong."""

    page: Any
    console: Console
    outside: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def sign_in(self, scope: str = "run") -> None:
        page = self.page
        page.goto(f"{self.console.base}/ui/runs")
        assert "/ui/sign-in" in page.url  # no session: sent to the sign-in form
        page.get_by_label("API key").fill(self.console.keys[scope])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/ui/runs")

    def nav(self, name: str) -> None:
        self.page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()
        self.page.wait_for_load_state()

    def check_page(self) -> None:
        """Accessible basics on the page shown: every control labelled, one h1, a main landmark."""
        unlabelled = self.page.evaluate(
            """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
                .map(e => e.outerHTML)"""
        )
        assert unlabelled == [], unlabelled
        assert self.page.locator("h1").count() == 1
        assert self.page.locator("main#main").count() == 1
        low = self.page.evaluate(CONTRAST_JS)
        assert low == [], f"text below WCAG AA contrast: {low}"


@pytest.fixture
def browse(browser, console, request) -> Iterator[Browse]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    b = Browse(page=page, console=console)

    def guard(route: Any) -> None:
        # Offline: the console must not reach for anything but this service.
        if route.request.url.startswith(console.base + "/"):
            route.continue_()
        else:
            b.outside.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    page.on("console", lambda m: b.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: b.errors.append(str(e)))
    try:
        yield b
    finally:
        shot(page, request.node.name, docs=False)
        context.close()
    assert b.outside == [], f"the console reached outside the service: {b.outside}"
    assert b.errors == [], f"errors in the browser console: {b.errors}"
