"""The files `make run`, the CLI and the tests leave behind are ignored by git."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

LEFT_BEHIND = [
    "idr.duckdb",
    "idr.duckdb.wal",
    "idr.duckdb.tmp/duckdb_temp_storage-0.tmp",
    "demo.duckdb",
    "idr_state.db",
    "idr_state.db-wal",
    "idr_state.db-shm",
    "demo_state.db",
    "demo_state.db-wal",
    "deploy/prometheus/token",
    ".env",
    "celerybeat-schedule",
    ".hypothesis/examples/x",
    "bench/out/run.json",
    "test-artifacts/ui/review.png",
]


def test_generated_files_are_ignored():
    r = subprocess.run(["git", "check-ignore", "--no-index", *LEFT_BEHIND], cwd=REPO, capture_output=True, text=True)
    ignored = set(r.stdout.split())
    assert ignored == set(LEFT_BEHIND), sorted(set(LEFT_BEHIND) - ignored)


def test_readme_says_what_make_test_installs():
    readme = (REPO / "README.md").read_text()
    quick = readme[readme.index("## Quick start") : readme.index("## The CLI")]
    assert "prometheus" in quick and "Java" in quick
