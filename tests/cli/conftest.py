"""CLI fixtures: a demo warehouse with a FULL run and a dry run, and an isolated environment."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from app.cli import app
from app.config.apply import apply_config
from app.core.settings import get_settings
from app.demo.generator import demo_config, generate
from app.pipeline.runner import run_pipeline
from app.platforms.duckdb import DuckDBAdapter
from app.schema import init_schema
from tests.service.conftest import receiver  # noqa: F401 - a webhook receiver fixture for CLI runs

RECORDS = 400


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory) -> tuple[Path, str]:
    """Demo data, config, a FULL run, then changed source rows and a FULL dry run of them."""
    path = tmp_path_factory.mktemp("cli") / "template.duckdb"
    with DuckDBAdapter.from_path(str(path)) as a:
        generate(a, RECORDS, seed=7)
        init_schema(a)
        apply_config(a, demo_config(records=RECORDS))
        assert run_pipeline(a, "FULL").ok
        # A new record bridging two clusters (an email of one, a phone of another), and one
        # record gone: a merge, a new entity and a removal.
        linked = a.fetchall(
            "SELECT e.identifier_type, e.identifier_value_norm, m.resolved_id "
            "FROM idr_out.identity_edges_current AS e JOIN idr_out.identity_resolved_membership_current AS m "
            "ON m.entity_key = e.left_entity_key WHERE e.identifier_type IN ('EMAIL', 'PHONE') ORDER BY 3, 1, 2"
        )
        email, cluster = next((v, r) for t, v, r in linked if t == "EMAIL")
        phone = next(v for t, v, r in linked if t == "PHONE" and r != cluster)
        a.execute(
            "INSERT INTO crm.customers VALUES (999999, $e, $p, 'Bridge', 'Person', 'Paris', TIMESTAMP '2030-01-01')",
            {"e": email, "p": phone},
        )
        a.execute("DELETE FROM loyalty.members WHERE member_id = (SELECT min(member_id) FROM loyalty.members)")
        dry = run_pipeline(a, "FULL", dry_run=True)
        assert dry.status == "DRY_RUN_COMPLETE", dry.error_message
        a.execute("CHECKPOINT")
    return path, dry.run_id


@pytest.fixture
def demo_db(demo_template, tmp_path) -> tuple[Path, str]:
    src, run_id = demo_template
    dst = tmp_path / "wh.duckdb"
    shutil.copy(src, dst)
    return dst, run_id


def _reset_debug() -> None:
    """`--debug` is remembered per process: each invocation starts without it."""
    import app.cli as cli_pkg

    errors = getattr(cli_pkg, "errors", None)
    if errors is not None:
        errors.set_debug(False)


@pytest.fixture
def cli(monkeypatch, tmp_path) -> Iterator[Callable[..., Result]]:
    """Invoke `idr` in-process with IDR_* settings of this test only (cwd: tmp_path)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IDR_STATE_DB_URL", f"sqlite:///{tmp_path}/state.db")
    monkeypatch.setenv("IDR_CLI_WAREHOUSE_WAIT_SECONDS", "0.5")
    monkeypatch.delenv("IDR_DEBUG", raising=False)
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        for k, v in (env or {}).items():
            monkeypatch.setenv(k, v)
        get_settings.cache_clear()
        _reset_debug()
        return runner.invoke(app, list(args), catch_exceptions=False)

    yield invoke
    get_settings.cache_clear()
