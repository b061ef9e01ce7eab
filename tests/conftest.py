"""Test-wide settings: small DuckDB footprint, one thread (tiny queries run faster)."""

from __future__ import annotations

import os
import shutil
import tempfile

os.environ.setdefault("IDR_DUCKDB_THREADS", "1")
os.environ.setdefault("IDR_DUCKDB_MEMORY_LIMIT", "1GB")
# The CLI records runs in the service state DB; tests must not leave one in the checkout.
os.environ.setdefault("IDR_STATE_DB_URL", f"sqlite:///{tempfile.mkdtemp(prefix='idr-test-state-')}/state.db")


def pytest_sessionfinish(session, exitstatus):
    from tests.pipeline import world

    shutil.rmtree(world._TEMPLATES, ignore_errors=True)
