"""How the embedded DuckDB stores what a run writes (settings that trade speed for space)."""

from __future__ import annotations

import pytest

from app.core.settings import Settings
from app.platforms.duckdb import DuckDBAdapter


def _string_codecs(tmp_path, compact: bool) -> set[str]:
    a = DuckDBAdapter.from_path(str(tmp_path / f"s{compact}.duckdb"), Settings(duckdb_compact_strings=compact))
    # Repetitive keys, as entity keys and identifier values are: DICT_FSST's best case.
    a.execute("CREATE TABLE t AS SELECT 'crm_customers:' || (i % 5000) AS k FROM range(300000) AS r(i)")
    a.execute("CHECKPOINT")
    rows = a.fetchall("SELECT DISTINCT compression FROM pragma_storage_info('t') WHERE segment_type = 'VARCHAR'")
    return {r[0] for r in rows}


@pytest.mark.parametrize("compact", [False, True])
def test_string_compression_follows_the_setting(tmp_path, compact):
    codecs = _string_codecs(tmp_path, compact)
    assert codecs, "no VARCHAR segment was written"
    if compact:
        assert codecs != {"Uncompressed"}, codecs  # DuckDB picks its string codecs
    else:
        assert "DICT_FSST" not in codecs, codecs  # opted out of the slow-to-write codec


def test_compact_strings_is_the_default():
    assert Settings().duckdb_compact_strings is True
