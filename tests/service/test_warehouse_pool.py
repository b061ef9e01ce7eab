"""The API process's idle DuckDB connections: read-only requests reuse a configured
connection while the file is held, and nothing outlives the file's release."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from app.core.errors import NotFoundError
from app.services.warehouse import keep_open, warehouse
from tests.service.conftest import make_settings


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple]:
    path = tmp_path / "wh.duckdb"
    settings = make_settings(tmp_path, path)
    keep_open.seconds = 30.0
    try:
        yield settings, str(path)
    finally:
        keep_open.seconds = 0.0
        keep_open.release()


def _conn(a):  # the raw connection behind an adapter
    return a.conn


def test_a_read_only_request_gets_the_connection_the_last_one_gave_back(held):
    settings, _ = held
    with warehouse(settings, reuse=True) as a:
        first = _conn(a)
        a.execute("CREATE TABLE main.t AS SELECT 1 AS x")
    with warehouse(settings, reuse=True) as a:
        assert _conn(a) is first
        assert a.fetchall("SELECT x FROM main.t") == [(1,)]
        # configured once, still configured: the settings the factory set are in force
        assert a.fetchall("SELECT current_setting('threads')") == [(1,)]


def test_requests_that_may_write_neither_take_nor_give(held):
    settings, _ = held
    with warehouse(settings) as a:
        plain = _conn(a)
    with warehouse(settings, reuse=True) as a:
        assert _conn(a) is not plain
        pooled = _conn(a)
    with warehouse(settings) as a:
        assert _conn(a) is not pooled


def test_a_failed_request_closes_its_connection_but_a_not_found_answer_keeps_it(held):
    settings, _ = held
    with pytest.raises(duckdb.Error), warehouse(settings, reuse=True) as a:
        broken = _conn(a)
        a.execute("SELECT * FROM no_such_table")
    with warehouse(settings, reuse=True) as a:
        assert _conn(a) is not broken
        kept = _conn(a)
        with pytest.raises(NotFoundError):
            raise NotFoundError("no such entity")
    with warehouse(settings, reuse=True) as a:
        assert _conn(a) is kept


def test_releasing_the_file_closes_the_idle_connections_and_frees_the_file(held):
    settings, path = held
    with warehouse(settings, reuse=True) as a:
        pooled = _conn(a)
    keep_open.release(path)
    with pytest.raises(duckdb.Error):
        pooled.execute("SELECT 1")
    # another process could open it now: in this one, a fresh instance takes any settings
    other = duckdb.connect(path, config={"threads": 2})
    other.close()


def test_without_keep_open_nothing_is_pooled(tmp_path):
    path = tmp_path / "wh.duckdb"
    settings = make_settings(tmp_path, path)
    assert keep_open.seconds == 0
    with warehouse(settings, reuse=True) as a:
        first = _conn(a)
    with pytest.raises(duckdb.Error):
        first.execute("SELECT 1")
    with warehouse(settings, reuse=True) as a:
        assert _conn(a) is not first
