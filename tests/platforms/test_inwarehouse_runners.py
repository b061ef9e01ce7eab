"""The in-warehouse runners: the Databricks notebook (deploy/databricks/idr_run.py) executed
cell by cell on local PySpark with a stand-in for ``dbutils``, and the Snowflake stored
procedure (``idr deploy snowflake-procedure``): its DDL as sent, and its handler run over a
stand-in Snowpark session (no local stand-in runs Snowflake procedures)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.core.errors import ConfigError
from app.platforms.duckdb import DuckDBAdapter
from tests.platforms.story import Warehouse, base_rows, delta_rows, production

NOTEBOOK = Path(__file__).parents[2] / "deploy" / "databricks" / "idr_run.py"


# ------------------------------------------------------------------ Databricks notebook
class NotebookExit(Exception):
    """dbutils.notebook.exit ends the notebook with a value."""

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value


class Widgets:
    """dbutils.widgets as a notebook sees it: values set by the job (or the UI), else the
    widget's default; reading a widget never defined fails, as on Databricks."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.defined: dict[str, tuple[str, list[str]]] = {}

    def dropdown(self, name: str, default: str, choices: list[str], label: str | None = None) -> None:
        assert default in choices
        self.defined[name] = (default, list(choices))

    def text(self, name: str, default: str, label: str | None = None) -> None:
        self.defined[name] = (default, [])

    def get(self, name: str) -> str:
        if name not in self.defined:
            raise ValueError(f"InputWidgetNotDefined: {name}")
        return self.values.get(name, self.defined[name][0])


class Notebook:
    def exit(self, value: str) -> None:
        raise NotebookExit(value)


class DBUtils:
    def __init__(self, **widgets: str) -> None:
        self.widgets = Widgets(widgets)
        self.notebook = Notebook()


def run_notebook(spark: Any, **widgets: str) -> dict[str, Any]:
    """Execute the notebook source as Databricks does: cell after cell in one namespace
    (``# MAGIC`` cells are markdown and %pip, comments here). Returns its exit value."""
    text = NOTEBOOK.read_text()
    assert text.startswith("# Databricks notebook source\n")
    cells = text.split("\n# COMMAND ----------\n")
    namespace: dict[str, Any] = {"spark": spark, "dbutils": DBUtils(**widgets), "__name__": "__main__"}
    try:
        for i, cell in enumerate(cells):
            exec(compile(cell, f"{NOTEBOOK.name}[cell {i}]", "exec"), namespace)  # noqa: S102
    except NotebookExit as e:
        return json.loads(e.value)
    raise AssertionError("the notebook ended without dbutils.notebook.exit")


# Wall-clock figures differ between engines; everything else in a dry run's summary must not.
_CLOCK = {"execution_time_seconds"}


def _summary_counts(adapter: Any, run_id: str) -> dict[str, int]:
    from app.pipeline.dryrun import get_summary

    s = get_summary(adapter, run_id)
    return {k: int(v) for k, v in s.items() if isinstance(v, int) and not isinstance(v, bool) and k not in _CLOCK}


def _proposals(adapter: Any, run_id: str) -> list[tuple]:
    rows = adapter.fetchall(
        "SELECT entity_key, change_type, proposed_cluster_size FROM idr_out.dry_run_results WHERE run_id = $r",
        {"r": run_id},
    )
    return sorted((str(k), str(t), None if n is None else int(n)) for k, t, n in rows)


def _reference() -> tuple[str, dict[str, Any], dict[str, int]]:
    """DuckDB through run_pipeline: FULL's status and production, then a dry INCR's summary."""
    wh = Warehouse(DuckDBAdapter.from_path(":memory:"))
    wh.setup()
    wh.upsert_many(base_rows())
    status = wh.run("FULL").status
    after_full = production(wh.adapter)
    wh.upsert_many(delta_rows())
    dry = wh.run("INCR", dry_run=True)
    return status, after_full, _summary_counts(wh.adapter, dry.run_id)


def test_databricks_notebook_runs_the_pipeline_on_local_spark_with_a_dbutils_stand_in(make_adapter, spark_session):
    """One notebook run (Spark is slow here): a dry FULL, so both widgets show in the
    outcome; its proposals are compared with a DuckDB dry FULL, entity by entity."""
    a = make_adapter("spark")
    wh = Warehouse(a)
    wh.setup()
    wh.upsert_many(base_rows())
    ref = Warehouse(DuckDBAdapter.from_path(":memory:"))
    ref.setup()
    ref.upsert_many(base_rows())
    ref_run = ref.run("FULL", dry_run=True)
    empty = production(a)

    out = run_notebook(spark_session, mode="FULL", dry_run="true")
    assert (out["status"], out["mode"], out["dry_run"]) == ("DRY_RUN_COMPLETE", "FULL", True), out
    got = {k: v for k, v in out["dry_run_summary"].items() if k not in _CLOCK}
    assert got == _summary_counts(ref.adapter, ref_run.run_id)
    assert out["dry_run_summary"]["new_entities"] > 0
    assert _proposals(a, out["run_id"]) == _proposals(ref.adapter, ref_run.run_id)
    assert production(a) == empty  # a dry run publishes nothing
    assert a.fetchall("SELECT run_id, status FROM idr_out.run_history") == [(out["run_id"], "DRY_RUN_COMPLETE")]

    # A bad widget value is refused naming the widget, before anything runs.
    with pytest.raises(ConfigError, match=r"mode must be one of FULL, INCR, not 'DELTA'"):
        run_notebook(spark_session, mode="DELTA")
    with pytest.raises(ConfigError, match=r"dry_run must be true or false, not 'maybe'"):
        run_notebook(spark_session, dry_run="maybe")
    assert a.scalar("SELECT count(*) FROM idr_out.run_history") == 1


# ------------------------------------------------------------------ Snowflake stored procedure
class Row(tuple):
    """As snowflake.snowpark.Row: a tuple carrying its column names in ``_fields``."""

    _fields: tuple[str, ...]

    def __new__(cls, values: tuple, fields: tuple[str, ...]) -> Row:
        row = super().__new__(cls, values)
        row._fields = fields
        return row


class SnowparkStandIn:
    """The part of snowflake.snowpark.Session the handler uses, ``sql(text, params).collect()``,
    forwarding each statement to a snowflake.connector connection (fakesnow here) and
    recording it. It is not Snowpark: what it proves is that the handler's statements are
    the Snowflake adapter's SQL and that fakesnow runs them to the same result."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.sent: list[tuple[str, Any]] = []

    def sql(self, query: str, params: Any = None) -> Any:
        self.sent.append((query, params))
        conn = self.connection

        class DataFrame:
            def collect(self) -> list[Row]:
                cur = conn.cursor()
                try:
                    cur.execute(query, params)
                    fields = tuple(d[0] for d in cur.description or ())
                    return [Row(tuple(r), fields) for r in (cur.fetchall() if fields else [])]
                finally:
                    cur.close()

        return DataFrame()


@pytest.fixture
def snowflake_db(fakesnow_patch):
    import secrets

    from app.platforms.snowflake import SnowflakeAdapter, snowflake_connector

    params = {"account": "fake", "user": "idr", "password": "x", "database": f"P_{secrets.token_hex(4)}"}
    a = SnowflakeAdapter(snowflake_connector(params))
    yield a
    a.close()


def test_snowflake_procedure_handler_runs_the_pipeline_through_a_snowpark_stand_in_over_fakesnow(snowflake_db):
    from app.inwarehouse.snowflake import handler

    a = snowflake_db
    wh = Warehouse(a)
    wh.setup()
    wh.upsert_many(base_rows())
    ref_status, ref_full, ref_dry = _reference()
    session = SnowparkStandIn(a.conn)

    out = handler(session, "FULL", False)
    assert (out["status"], out["mode"], out["dry_run"], out["platform"]) == (ref_status, "FULL", False, "snowflake")
    assert production(a) == ref_full
    # Every statement went through the session, as Snowflake SQL (upper-cased quoted names, qmark).
    # (the run counts its requests up to its run_history row; scratch drops and metrics follow)
    assert 20 < out["round_trips"] <= len(session.sent)
    assert any('"IDR_OUT"."RUN_HISTORY"' in q for q, _ in session.sent)
    assert any(p and "?" in q for q, p in session.sent)

    wh.upsert_many(delta_rows())
    out = handler(session, "incr", "true")  # as CALL idr_run('incr', TRUE) or a string flag
    assert out["status"] == "DRY_RUN_COMPLETE", out
    assert {k: v for k, v in out["dry_run_summary"].items() if k not in _CLOCK} == ref_dry
    assert "DRY RUN SUMMARY" in out["report"]
    assert production(a) == ref_full

    with pytest.raises(ConfigError, match="dry_run must be true or false, not 'maybe'"):
        handler(session, "INCR", "maybe")


def test_snowflake_procedure_fails_the_call_naming_the_run_when_the_run_fails(snowflake_db):
    from app.core.errors import PipelineError
    from app.inwarehouse.snowflake import handler

    # An empty database: the first call sets up the schema, then the run fails (no sources).
    with pytest.raises(PipelineError, match=r"idr run run_\w+ FAILED in stage \w+: .*no active source tables"):
        handler(SnowparkStandIn(snowflake_db.conn), "FULL", False)
    assert snowflake_db.fetchall("SELECT status FROM idr_out.run_history") == [("FAILED",)]


EXPECTED_DDL = """CREATE OR REPLACE PROCEDURE "IDR_META"."IDR_RUN"(MODE VARCHAR DEFAULT 'INCR', DRY_RUN BOOLEAN DEFAULT FALSE)
RETURNS VARIANT
LANGUAGE PYTHON
RUNTIME_VERSION = '3.11'
PACKAGES = ('snowflake-snowpark-python', 'sqlglot', 'pydantic', 'pydantic-settings', 'python-dotenv', 'duckdb', 'numpy')
IMPORTS = ('@"IDR_META".IDR_CODE/idr_procedure.py', '@"IDR_META".IDR_CODE/idr_app.zip')
HANDLER = 'idr_procedure.run'
EXECUTE AS CALLER"""  # noqa: E501 - the reviewed DDL, line for line


def test_idr_deploy_snowflake_procedure_sends_stage_uploads_and_ddl_recorded(monkeypatch, tmp_path):
    """Recorded at the connector (no stand-in runs PUT or Python procedures)."""
    import io
    import zipfile

    import snowflake.connector
    from typer.testing import CliRunner

    from app.cli import app
    from app.core.settings import get_settings

    sent: list[str] = []
    uploaded: dict[str, bytes] = {}

    class Cursor:
        description = None

        def execute(self, sql: str, params: Any = None) -> None:
            sent.append(sql)
            if sql.startswith("PUT 'file://"):  # the file must be there when PUT is sent
                path = sql.split("'")[1].removeprefix("file://")
                uploaded[Path(path).name] = Path(path).read_bytes()

        def close(self) -> None:
            pass

    class Connection:
        def cursor(self) -> Cursor:
            return Cursor()

        def close(self) -> None:
            pass

    monkeypatch.setattr(snowflake.connector, "connect", lambda **kw: Connection())
    monkeypatch.setenv("IDR_TARGETS__SF__PLATFORM", "snowflake")
    monkeypatch.setenv("IDR_TARGETS__SF__ACCOUNT", "acme")
    monkeypatch.setenv("IDR_TARGETS__LOCAL__PLATFORM", "duckdb")
    monkeypatch.setenv("IDR_TARGETS__LOCAL__PATH", str(tmp_path / "x.duckdb"))
    get_settings.cache_clear()
    try:
        r = CliRunner().invoke(app, ["deploy", "snowflake-procedure", "--target", "sf"])
        assert r.exit_code == 0, r.output
        assert "CALL idr_meta.idr_run('INCR', TRUE)" in r.output
        assert sent[:2] == ['CREATE SCHEMA IF NOT EXISTS "IDR_META"', 'CREATE STAGE IF NOT EXISTS "IDR_META".IDR_CODE']
        puts = [s.split("' ")[1] for s in sent[2:4]]
        assert puts == ['@"IDR_META".IDR_CODE AUTO_COMPRESS = FALSE OVERWRITE = TRUE'] * 2
        assert sent[4] == EXPECTED_DDL and len(sent) == 5
        import app.inwarehouse.idr_procedure as bootstrap

        assert uploaded["idr_procedure.py"] == Path(bootstrap.__file__).read_bytes()
        names = zipfile.ZipFile(io.BytesIO(uploaded["idr_app.zip"])).namelist()
        assert {"app/inwarehouse/snowflake.py", "app/pipeline/runner.py", "sql/schema/tables.sql"} <= set(names)
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]

        r = CliRunner().invoke(app, ["deploy", "snowflake-procedure", "--target", "sf", "--schema", "x; DROP"])
        assert r.exit_code == 2 and "schema must be a plain Snowflake identifier" in r.output and len(sent) == 5
        r = CliRunner().invoke(app, ["deploy", "snowflake-procedure", "--target", "local"])
        assert r.exit_code == 2 and "'local' is a duckdb target" in r.output
        r = CliRunner().invoke(app, ["deploy", "snowflake-procedure", "--target", "sf", "--print"])
        assert r.output.strip() == EXPECTED_DDL and len(sent) == 5
    finally:
        get_settings.cache_clear()


def test_procedure_handler_module_unpacks_the_uploaded_archive_and_imports_idr_from_it(tmp_path):
    """As Snowflake runs it: the handler module and the archive in the import directory,
    no site-packages (-S), so `app` can only come from the archive."""
    import subprocess
    import sys

    import app.inwarehouse.idr_procedure as bootstrap
    from app.inwarehouse.snowflake import archive

    imports = tmp_path / "imports"
    imports.mkdir()
    (imports / "idr_app.zip").write_bytes(archive())
    (imports / "idr_procedure.py").write_bytes(Path(bootstrap.__file__).read_bytes())
    assert archive() == archive()  # the same bytes each time: unpacked once per content
    code = (
        "import idr_procedure, os; root = idr_procedure.prepare(); import app.pipeline; "
        "print(root); print(app.pipeline.__file__); print(os.path.isfile(os.path.join(root, 'sql/stages/graph.sql')))"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-X", f"snowflake_import_directory={imports}", "-c", code],
        cwd=tmp_path, env={"PYTHONPATH": str(imports)}, capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()  # fmt: skip
    root, module, sql_present = out
    assert module == str(Path(root) / "app" / "pipeline" / "__init__.py")
    assert sql_present == "True"
