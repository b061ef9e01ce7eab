"""How the embedded DuckDB stores what a run writes (settings that trade speed for space)."""

from __future__ import annotations

import duckdb
import pytest

from app.core.settings import Settings
from app.platforms.duckdb import DuckDBAdapter


def _string_codecs(path, settings: Settings) -> set[str]:
    a = DuckDBAdapter.from_path(str(path), settings)
    # Repetitive keys, as entity keys and identifier values are: DICT_FSST's best case.
    a.execute("CREATE TABLE t AS SELECT 'crm_customers:' || (i % 5000) AS k, i FROM range(300000) AS r(i)")
    a.execute("CHECKPOINT")
    rows = a.fetchall("SELECT DISTINCT compression FROM pragma_storage_info('t') WHERE segment_type = 'VARCHAR'")
    ints = a.fetchall("SELECT DISTINCT compression FROM pragma_storage_info('t') WHERE segment_type = 'BIGINT'")
    assert "ZSTD" not in {r[0] for r in ints}  # other types keep DuckDB's own codecs
    return {r[0] for r in rows}


@pytest.mark.parametrize("codec", ["zstd", "dict_fsst", "uncompressed"])
def test_string_compression_follows_the_setting(tmp_path, codec):
    codecs = _string_codecs(tmp_path / f"s_{codec}.duckdb", Settings(duckdb_string_compression=codec))
    assert codecs, "no VARCHAR segment was written"
    if codec == "zstd":
        assert "ZSTD" in codecs and "DICT_FSST" not in codecs, codecs
    elif codec == "dict_fsst":
        assert "ZSTD" not in codecs and codecs != {"Uncompressed"}, codecs  # DuckDB picks its string codecs
    else:
        assert "DICT_FSST" not in codecs and "ZSTD" not in codecs, codecs  # opted out of the slow-to-write codec


def test_an_older_storage_format_keeps_compressed_strings(tmp_path):
    """Forcing ZSTD on a format without it would store strings uncompressed: not done there."""
    path = tmp_path / "old.duckdb"
    with duckdb.connect() as c:
        c.execute(f"ATTACH '{path}' AS o (STORAGE_VERSION 'v1.0.0')")
    codecs = _string_codecs(path, Settings(duckdb_string_compression="zstd"))
    assert codecs and codecs != {"Uncompressed"} and "ZSTD" not in codecs, codecs


def test_dict_fsst_strings_are_the_default_and_the_former_switch_still_works():
    assert Settings().duckdb_string_compression == "dict_fsst"
    assert Settings(duckdb_compact_strings=False).duckdb_string_compression == "uncompressed"
    assert Settings(duckdb_compact_strings=True).duckdb_string_compression == "dict_fsst"
    both = Settings(duckdb_compact_strings=False, duckdb_string_compression="zstd")
    assert both.duckdb_string_compression == "zstd"  # the new setting wins where both are set


def _row_groups(a: DuckDBAdapter) -> int:
    return int(a.scalar("SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('t')") or 0)


def test_vacuum_is_off_by_default_and_a_full_rewrite_reclaims(tmp_path):
    assert Settings().duckdb_vacuum is False
    a = DuckDBAdapter.from_path(str(tmp_path / "v.duckdb"), Settings())
    assert int(a.scalar("SELECT current_setting('max_vacuum_tasks')")) == 0
    a.execute("CREATE TABLE t AS SELECT i, 'crm_customers:' || i AS k FROM range(600000) AS r(i)")
    a.execute("CHECKPOINT")
    before = _row_groups(a)
    # INCR-like churn: a tenth of the rows, spread over every row group, replaced.
    for step in range(3):
        a.execute(f"CREATE OR REPLACE TEMP TABLE c AS SELECT * FROM t WHERE i % 10 = {step}")
        a.execute(f"DELETE FROM t WHERE i % 10 = {step}")
        a.execute("INSERT INTO t SELECT * FROM c")
        a.execute("CHECKPOINT")
    churned = _row_groups(a)
    assert churned > before  # holes kept: no row group was rewritten
    # A FULL run deletes every row and writes the new state: old row groups go.
    a.execute("CREATE OR REPLACE TEMP TABLE c AS SELECT * FROM t")
    a.execute("DELETE FROM t")
    a.execute("INSERT INTO t SELECT * FROM c")
    a.execute("CHECKPOINT")
    assert _row_groups(a) < churned
    assert a.scalar("SELECT count(*) FROM t") == 600000


def test_vacuum_setting_restores_duckdbs_default(tmp_path):
    a = DuckDBAdapter.from_path(str(tmp_path / "w.duckdb"), Settings(duckdb_vacuum=True))
    assert int(a.scalar("SELECT current_setting('max_vacuum_tasks')")) > 0


def test_a_union_of_both_ends_of_the_edges_view_returns_both_ends(tmp_path):
    """DuckDB 1.5.1-2.0.1's common-subplan optimizer returns one end twice for
    `SELECT left ... UNION SELECT right ...` over one join (duckdb#25819): idr's
    connections turn it off."""
    from app.platforms.duckdb import DuckDBAdapter

    a = DuckDBAdapter.from_path(str(tmp_path / "u.duckdb"))
    a.execute("CREATE TABLE e (eid INT, k VARCHAR)")
    a.execute("INSERT INTO e VALUES (0, 'a'), (1, 'b'), (2, 'c')")
    a.execute("CREATE TABLE v (vid INT, anchor INT)")
    a.execute("INSERT INTO v VALUES (1, 0)")
    a.execute("CREATE TABLE h (vid INT, eid INT)")
    a.execute("INSERT INTO h VALUES (1, 0), (1, 1)")
    a.execute(
        "CREATE VIEW ed AS SELECT x.k AS l, y.k AS r FROM h JOIN v ON v.vid = h.vid "
        "JOIN e AS x ON x.eid = v.anchor JOIN e AS y ON y.eid = h.eid WHERE h.eid <> v.anchor"
    )
    assert sorted(a.fetchall("SELECT l FROM ed UNION SELECT r FROM ed")) == [("a",), ("b",)]
    a.close()
