"""Named targets from settings (nested env, secrets from env or files) and `--target`."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.core.errors import ConfigError
from app.core.settings import Settings, get_settings
from app.platforms import open_adapter
from app.platforms.bigquery import BigQueryAdapter
from app.platforms.duckdb import DuckDBAdapter
from app.platforms.snowflake import SnowflakeAdapter
from app.platforms.spark import SparkSessionAdapter


@pytest.fixture
def env(monkeypatch):
    def set_env(**values: str) -> None:
        for k, v in values.items():
            monkeypatch.setenv(k, v)
        get_settings.cache_clear()

    yield set_env
    get_settings.cache_clear()


def test_targets_come_from_nested_env_and_secrets_never_show(env, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("file-secret\n")
    env(
        IDR_TARGETS__PROD__PLATFORM="snowflake",
        IDR_TARGETS__PROD__ACCOUNT="acme-xy123",
        IDR_TARGETS__PROD__PASSWORD="env-secret",
        IDR_TARGETS__BQ__PLATFORM="bigquery",
        IDR_TARGETS__BQ__PROJECT="acme-data",
        IDR_TARGETS__LAKE__PLATFORM="spark",
        IDR_TARGETS__SF2__PLATFORM="snowflake",
        IDR_TARGETS__SF2__PASSWORD_FILE=str(secret),
    )
    s = get_settings()
    assert s.targets["prod"].platform == "snowflake" and s.targets["prod"].account == "acme-xy123"
    dumped = repr(s) + str(s.model_dump())
    assert "env-secret" not in dumped and "file-secret" not in dumped
    assert isinstance(open_adapter(target="PROD"), SnowflakeAdapter)  # names are case-insensitive
    assert isinstance(open_adapter(target="bq"), BigQueryAdapter)
    assert isinstance(open_adapter(target="lake"), SparkSessionAdapter)
    assert isinstance(open_adapter(), DuckDBAdapter)  # no target: the embedded default
    with pytest.raises(ConfigError, match="unknown target 'nope'"):
        open_adapter(target="nope")


def test_snowflake_target_reads_password_file_at_connect(monkeypatch, tmp_path):
    import snowflake.connector

    secret = tmp_path / "pw"
    secret.write_text("file-secret\n")
    seen = {}
    monkeypatch.setattr(snowflake.connector, "connect", lambda **kw: seen.update(kw) or object())
    s = Settings(targets={"sf": {"platform": "snowflake", "account": "a", "user": "u", "password_file": str(secret),
                                 "database": "IDR", "warehouse": "WH"}})  # fmt: skip
    a = open_adapter(settings=s, target="sf")
    assert a.conn is not None
    assert seen == {"account": "a", "user": "u", "password": "file-secret", "database": "IDR", "warehouse": "WH",
                    "paramstyle": "qmark", "autocommit": True}  # fmt: skip


def test_cli_init_and_run_on_a_named_target(env, tmp_path, fakesnow_patch):
    env(
        IDR_TARGETS__LOCAL__PLATFORM="duckdb",
        IDR_TARGETS__LOCAL__PATH=str(tmp_path / "wh.duckdb"),
        IDR_TARGETS__SF__PLATFORM="snowflake",
        IDR_TARGETS__SF__ACCOUNT="fake",
        IDR_TARGETS__SF__USER="idr",
        IDR_TARGETS__SF__PASSWORD="pw-not-shown",
        IDR_TARGETS__SF__DATABASE="IDR_CLI",
    )
    runner = CliRunner()
    r = runner.invoke(app, ["init", "--target", "local"])
    assert r.exit_code == 0, r.output
    assert "created idr_out.run_history" in r.output
    r = runner.invoke(app, ["init", "--target", "sf"])
    assert r.exit_code == 0, r.output
    assert "created idr_meta.rule" in r.output and "pw-not-shown" not in r.output
    with open_adapter(target="sf") as a:
        assert a.table_exists("idr_out", "identity_resolved_membership_current")
    # No configuration yet: the run fails cleanly, recorded on the target's own warehouse.
    r = runner.invoke(app, ["run", "--target", "local", "--mode", "FULL"])
    assert r.exit_code != 0 and "no active source tables" in r.output
    with open_adapter(target="local") as a:
        assert a.fetchall("SELECT status FROM idr_out.run_history") == [("FAILED",)]
    r = runner.invoke(app, ["init", "--target", "missing"])
    assert r.exit_code == 2 and "unknown target 'missing'" in r.output
