"""DuckDB's memory cap: the setting when given, else 3 GiB or 60% of the machine's or the
container's memory where that is less, so a large run spills instead of being killed."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from app.core.settings import Settings, get_settings
from app.platforms.duckdb import default_memory_limit, duckdb_connector

PHYS = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def test_default_is_three_gib_or_sixty_percent_of_a_smaller_machine_without_a_cgroup_limit(tmp_path):
    unlimited = tmp_path / "memory.max"
    unlimited.write_text("max\n")
    missing = str(tmp_path / "absent")
    assert default_memory_limit((str(unlimited), missing)) == f"{min(PHYS * 6 // 10, 3 << 30) >> 20}MB"


def test_a_lower_cgroup_limit_wins(tmp_path):
    limit = tmp_path / "memory.max"
    limit.write_text(f"{4 << 30}\n")  # a 4 GiB container
    assert default_memory_limit((str(limit),)) == f"{min(PHYS, 4 << 30) * 6 // 10 >> 20}MB"
    big = tmp_path / "big"
    big.write_text(f"{64 << 30}\n")  # a large container: the cap
    assert default_memory_limit((str(big),)) == f"{min(PHYS * 6 // 10, 3 << 30) >> 20}MB"
    tiny = tmp_path / "tiny"
    tiny.write_text(f"{64 << 20}\n")
    assert default_memory_limit((str(tiny),)) == "256MB"  # never below a workable floor


def test_connector_applies_the_setting_or_the_default(tmp_path):
    explicit = get_settings().model_copy(update={"duckdb_memory_limit": "1GB"})
    conn = duckdb_connector(str(tmp_path / "a.duckdb"), explicit)()
    assert conn.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "953.6 MiB"  # 1GB = 10^9 bytes
    conn.close()
    unset = get_settings().model_copy(update={"duckdb_memory_limit": None})
    conn = duckdb_connector(str(tmp_path / "b.duckdb"), unset)()
    shown = conn.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    conn.close()
    expected_mb = int(default_memory_limit().removesuffix("MB"))
    value, unit = shown.split()
    got_mb = float(value) * {"MiB": 1.048576, "GiB": 1073.741824, "MB": 1, "GB": 1000}[unit]
    # DuckDB shows one decimal: 3072MB (10^6 bytes each) reads "2.8 GiB".
    assert abs(got_mb - expected_mb) < max(0.01 * expected_mb, 110), (shown, expected_mb)


def _block_and_limit(path, **update) -> tuple[str, str]:
    conn = duckdb_connector(str(path), get_settings().model_copy(update=update))()
    try:
        q = "SELECT current_setting('block_allocator_memory'), current_setting('memory_limit')"
        return conn.execute(q).fetchone()
    finally:
        conn.close()


def test_freed_blocks_are_kept_up_to_the_memory_limit_unless_set(tmp_path):
    kept, limit = _block_and_limit(tmp_path / "a.duckdb", duckdb_memory_limit="1GB", duckdb_block_memory=None)
    assert kept == limit == "953.6 MiB"
    kept, limit = _block_and_limit(tmp_path / "b.duckdb", duckdb_memory_limit="1GB", duckdb_block_memory="512MB")
    assert (kept, limit) == ("488.2 MiB", "953.6 MiB")


def test_a_second_connection_to_an_open_database_keeps_its_larger_block_memory(tmp_path):
    # The setting belongs to the database instance and cannot shrink while it is open:
    # a later connection with a smaller value must still connect.
    first = duckdb_connector(
        str(tmp_path / "c.duckdb"),
        get_settings().model_copy(update={"duckdb_memory_limit": "1GB", "duckdb_block_memory": "512MB"}),
    )()
    try:
        kept, _ = _block_and_limit(tmp_path / "c.duckdb", duckdb_memory_limit="1GB", duckdb_block_memory="256MB")
        assert kept == "488.2 MiB"
    finally:
        first.close()


@pytest.mark.parametrize("field", ["duckdb_memory_limit", "duckdb_block_memory"])
@pytest.mark.parametrize("value", ["lots", "1024", ""])
def test_a_value_that_is_no_memory_size_is_refused_naming_the_setting(field, value):
    with pytest.raises(ValidationError) as e:
        Settings(**{field: value})
    text = str(e.value)
    assert field in text and "is not a memory size" in text


def test_memory_sizes_duckdb_accepts_are_kept_as_given():
    s = Settings(duckdb_memory_limit="1.5GB", duckdb_block_memory="0B")
    assert (s.duckdb_memory_limit, s.duckdb_block_memory) == ("1.5GB", "0B")
