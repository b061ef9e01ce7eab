"""Configuration expressions call pure scalar functions only: a sleep, error(), an unknown
function, a table function or file access is a 422 naming the function."""

from __future__ import annotations

import pytest

from app.config import functions
from app.config.validate import validate_expression
from app.core.errors import ConfigError
from app.demo.generator import demo_config
from tests.service.conftest import RECORDS, make_settings

COLS = {"email", "phone", "customer_id"}


@pytest.mark.parametrize(
    ("expr", "name"),
    [
        ("pg_sleep(1) || email", "pg_sleep"),
        ("sleep_ms(1000)::VARCHAR || email", "sleep_ms"),
        ("error('boom')", "error"),
        ("made_up_function(email)", "made_up_function"),
        ("lower(read_text('/etc/passwd'))", "read_text"),
        ("current_date()::VARCHAR || email", "current_date"),
        ("random()::VARCHAR", "rand"),
    ],
)
def test_functions_outside_the_allow_list_are_named(expr, name):
    with pytest.raises(ConfigError) as info:
        validate_expression(expr, COLS, field="x")
    assert f"function {name}()" in info.value.message, info.value.message


def test_operators_are_not_function_calls():
    assert validate_expression("NOT (email IS NULL OR phone = '') AND customer_id > 0 OR -1 < 2 % 3", COLS)


def test_allow_list_is_per_platform():
    # DuckDB's strip_accents has no counterpart sqlglot writes for Snowflake.
    assert "strip_accents" in functions.allowed("duckdb")
    assert "strip_accents" not in functions.allowed("snowflake")
    assert validate_expression("strip_accents(lower(email))", COLS)
    assert functions.allowed("snowflake") >= functions.COMMON


def test_api_answers_422_naming_the_function(app_factory, warehouse_path, tmp_path):
    client = app_factory(make_settings(tmp_path, warehouse_path))
    doc = demo_config(records=RECORDS)
    doc["identifier_mappings"][0]["identifier_value_expr"] = "lower(email) || pg_sleep(1)::VARCHAR"
    r = client.put("/v1/config", json=doc)
    assert r.status_code == 422, r.text
    body = r.json()
    assert "pg_sleep()" in r.text
    assert any(e["field"] == "identifier_mappings[0].identifier_value_expr" for e in body.get("errors", [])), body
