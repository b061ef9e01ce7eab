"""Test-wide settings: small DuckDB footprint, one thread (tiny queries run faster)."""

from __future__ import annotations

import os
import shutil

os.environ.setdefault("IDR_DUCKDB_THREADS", "1")
os.environ.setdefault("IDR_DUCKDB_MEMORY_LIMIT", "1GB")


def pytest_sessionfinish(session, exitstatus):
    from tests.pipeline import world

    shutil.rmtree(world._TEMPLATES, ignore_errors=True)
