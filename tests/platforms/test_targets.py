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


# ------------------------------------------------------------------ one model per platform
# (platform, the least settings a target of it takes, its model, the adapter it builds)
MODELS = [
    ("duckdb", {"path": "wh.duckdb"}, "DuckDBTarget", DuckDBAdapter),
    ("snowflake", {"account": "a", "user": "u", "password": "p", "port": "443"}, "SnowflakeTarget", SnowflakeAdapter),
    ("bigquery", {"project": "acme", "location": "EU"}, "BigQueryTarget", BigQueryAdapter),
    ("databricks", {"server_hostname": "h", "http_path": "/p", "access_token": "t"}, "DatabricksTarget", None),
    ("spark", {"spark_master": "local[1]"}, "SparkTarget", SparkSessionAdapter),
]


# Each model holds its platform's fields only (the README lists them).
OWN_FIELDS = {
    "duckdb": {"path"},
    "snowflake": {"account", "user", "password", "password_file", "private_key_file", "database", "warehouse",
                  "role", "host", "port", "protocol"},
    "bigquery": {"project", "location", "credentials_file", "endpoint"},
    "databricks": {"server_hostname", "http_path", "access_token", "access_token_file", "catalog"},
    "spark": {"spark_master", "spark_warehouse_dir", "spark_metastore_dir"},
}  # fmt: skip


@pytest.mark.parametrize(("platform", "fields", "model", "adapter"), MODELS, ids=[m[0] for m in MODELS])
def test_each_platform_has_its_own_model_that_builds_its_adapter(platform, fields, model, adapter, tmp_path):
    from app.platforms import targets
    from app.platforms.spark import DatabricksSQLAdapter

    s = Settings(duckdb_path=str(tmp_path / "default.duckdb"), targets={"t": {"platform": platform, **fields}})
    t = s.targets["t"]
    assert type(t) is getattr(targets, model)
    assert set(type(t).model_fields) - {"platform"} == OWN_FIELDS[platform]
    built = open_adapter(settings=s, target="t")
    assert type(built) is (adapter or DatabricksSQLAdapter)
    built.close()
    # Only a DuckDB target has a file (the service's one-process lock is about files).
    assert (t.duckdb_file(s) is not None) == (platform == "duckdb")


@pytest.mark.parametrize("platform", [m[0] for m in MODELS])
def test_a_field_of_another_platform_is_refused_naming_it(platform):
    foreign = "spark_master" if platform != "spark" else "account"
    with pytest.raises(ValueError) as e:
        Settings(targets={"prod": {"platform": platform, foreign: "x"}})
    msg = str(e.value)
    assert f"target 'prod': unknown field '{foreign}' for platform {platform}" in msg


def test_wrong_values_and_a_missing_platform_are_named():
    with pytest.raises(ValueError, match=r"target 'sf': port: Input should be a valid integer"):
        Settings(targets={"sf": {"platform": "snowflake", "port": "https"}})
    with pytest.raises(ValueError, match=r"target 'x': platform is required \(one of: bigquery, databricks, duckdb"):
        Settings(targets={"x": {"account": "a"}})


def test_unknown_platform_is_refused_listing_the_known_ones_and_secrets_stay_out():
    with pytest.raises(ValueError) as e:
        Settings(targets={"prod": {"platform": "oracle", "password": "hunter2"}})
    msg = str(e.value)
    assert "target 'prod': unknown platform 'oracle' (known: bigquery, databricks, duckdb, snowflake, spark)" in msg
    assert "hunter2" not in msg  # settings errors never echo their input


def test_cli_names_the_bad_target_field_in_one_line_exit_2(env):
    env(IDR_TARGETS__PROD__PLATFORM="snowflake", IDR_TARGETS__PROD__PATH="/tmp/x.duckdb")
    r = CliRunner().invoke(app, ["init", "--target", "prod"])
    assert r.exit_code == 2, r.output
    assert "unknown field 'path' for platform snowflake" in r.output and "Traceback" not in r.output


def test_bigquery_target_without_project_loads_but_is_refused_when_used():
    s = Settings(targets={"bq": {"platform": "bigquery"}, "local": {"platform": "duckdb"}})  # the others still load
    with pytest.raises(ConfigError, match="a bigquery target needs project"):
        open_adapter(settings=s, target="bq")


# ------------------------------------------------------------------ the registry (entry points)
def test_the_built_in_models_are_registered_as_entry_points_in_pyproject_and_installed():
    import tomllib
    from importlib.metadata import entry_points
    from pathlib import Path

    from app.core.targets import BUILTIN_TARGETS, ENTRY_POINT_GROUP, target_models

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"][ENTRY_POINT_GROUP] == BUILTIN_TARGETS
    installed = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert installed == BUILTIN_TARGETS  # the package is installed with them (pip install -e .)
    assert sorted(target_models()) == sorted(BUILTIN_TARGETS)


@pytest.fixture
def plugin_registry(monkeypatch):
    """Entry points as a third-party package would add them (the registry's caches reset)."""
    from importlib.metadata import EntryPoint

    import app.core.targets as registry

    def install(**extra: str) -> None:
        eps = [EntryPoint(n, v, registry.ENTRY_POINT_GROUP) for n, v in {**registry.BUILTIN_TARGETS, **extra}.items()]
        monkeypatch.setattr(registry, "entry_points", lambda group: [e for e in eps if e.group == group])
        registry.target_models.cache_clear()
        registry._union.cache_clear()

    yield install
    monkeypatch.undo()
    registry.target_models.cache_clear()
    registry._union.cache_clear()


def test_a_plugin_platform_registered_by_entry_point_is_selected_by_platform(plugin_registry, tmp_path):
    plugin_registry(echo="tests.platforms.target_plugin:EchoTarget", broken="tests.platforms.no_such_module:X")
    echo = {"platform": "echo", "file": str(tmp_path / "echo.duckdb")}
    s = Settings(targets={"e": echo, "d": {"platform": "duckdb"}})
    from tests.platforms.target_plugin import EchoTarget

    assert type(s.targets["e"]) is EchoTarget
    with open_adapter(settings=s, target="e") as a:  # the plugin's model built it
        assert a.scalar("SELECT 41 + 1") == 42
    assert (tmp_path / "echo.duckdb").exists()
    with pytest.raises(ValueError, match="unknown platform 'broken'"):  # a broken plugin is left out, others work
        Settings(targets={"b": {"platform": "broken"}})
    with pytest.raises(ValueError, match="unknown field 'path' for platform echo"):
        Settings(targets={"e": {"platform": "echo", "path": "x"}})


def test_a_plugin_whose_model_does_not_match_its_name_is_ignored(plugin_registry):
    plugin_registry(other="tests.platforms.target_plugin:EchoTarget")
    from app.core.targets import target_models

    assert "other" not in target_models() and "duckdb" in target_models()
