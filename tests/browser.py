"""Debian's Chromium driven by Playwright's Python API, for the tests that look at pages.

Playwright's own browser download is not used: the Makefile installs the Debian package
(scripts/system-deps.sh). Chromium is a service these tests need: with CI=true a missing
one (or a missing playwright package) fails them instead of skipping.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts" / "ui"
CHROMIUM = os.environ.get("IDR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _missing(what: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} (CI=true: the browser tests need it; `make test` installs it)")
    pytest.skip(what)


def require_chromium() -> str:
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        _missing(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright Browser), closed afterwards."""
    path = require_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def shot(page: Any, name: str, docs: bool = True) -> Path:
    """A full-page screenshot under test-artifacts/ui (and, for the named pictures of the
    pages, in IDR_CONSOLE_SCREENSHOTS if set: how `make screenshots` makes docs/console/)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    extra = os.environ.get("IDR_CONSOLE_SCREENSHOTS")
    if extra and docs:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(extra) / f"{name}.png")
    return path
