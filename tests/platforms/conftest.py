"""Warehouses for the conformance suite: one factory per platform, session-scoped
stand-ins (fakesnow, bqemulator, one local SparkSession), a fresh warehouse per test.

A stand-in that cannot start FAILS the test when CI=true (the suite must prove every
platform there); on a developer machine without it the test is skipped with the reason.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator

import pytest

from app.platforms.base import Adapter
from app.platforms.duckdb import DuckDBAdapter

PLATFORMS = ["duckdb", "snowflake", "bigquery", "spark"]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(what: str, err: BaseException | str) -> None:
    msg = f"{what} unavailable: {err}"
    if IN_CI:
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def fakesnow_patch() -> Iterator[None]:
    """fakesnow, taking multi-statement requests as Snowflake does (snowflake_standin)."""
    try:
        import fakesnow  # noqa: F401
    except ImportError as e:  # pragma: no cover - the platforms extra is not installed
        unavailable("fakesnow", e)
    from tests.platforms import snowflake_standin

    with snowflake_standin.patch():
        yield


@pytest.fixture(scope="session")
def bq_emulator():
    from tests.platforms.bq_emulator import start_emulator

    try:
        emu = start_emulator()
    except Exception as e:  # noqa: BLE001 - reported as skip/fail with the reason
        unavailable("bqemulator", e)
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def spark_session():
    try:
        from app.platforms.spark import local_spark_session

        spark = local_spark_session()
    except Exception as e:  # noqa: BLE001
        unavailable("local PySpark", e)
    yield spark
    spark.stop()


@pytest.fixture
def make_adapter(request) -> Callable[[str], Adapter]:
    """platform name -> a fresh, empty warehouse on that platform."""
    made: list[Adapter] = []

    def make(platform: str) -> Adapter:
        a: Adapter
        if platform == "duckdb":
            a = DuckDBAdapter.from_path(":memory:")
        elif platform == "snowflake":
            request.getfixturevalue("fakesnow_patch")
            from app.platforms.snowflake import SnowflakeAdapter, snowflake_connector

            a = SnowflakeAdapter(
                snowflake_connector(
                    {"account": "fake", "user": "idr", "password": "x", "database": f"IDR_{secrets.token_hex(4)}"}
                )
            )
        elif platform == "bigquery":
            emu = request.getfixturevalue("bq_emulator")
            a = emu.adapter(project=f"idr-{secrets.token_hex(4)}")
        elif platform == "spark":
            from app.platforms.spark import SparkSessionAdapter, reset_spark_schemas

            spark = request.getfixturevalue("spark_session")
            reset_spark_schemas(spark, ("idr_meta", "idr_state", "idr_out", "idr_work", "src"))
            a = SparkSessionAdapter(lambda: spark)
        else:  # pragma: no cover
            raise ValueError(platform)
        made.append(a)
        return a

    yield make
    for a in made:
        if a.platform != "spark":  # the SparkSession outlives tests (session fixture stops it)
            a.close()
