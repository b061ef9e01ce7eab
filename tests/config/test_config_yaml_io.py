"""load_config_file / dump_config."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config.validate import validate_config
from app.config.yaml_io import dump_config, load_config_file
from app.core.errors import ConfigError


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.yml"
    p.write_text("sources:\n  - table_id: crm\n    table_fqn: [crm.customers\nrules: []\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(p)
    msg = info.value.message
    assert str(p) in msg
    assert "line 4" in msg  # where the unclosed '[' is detected
    assert info.value.errors[0]["field"] == str(p)


def test_yaml_indentation_error_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("rules:\n  - rule_id: R1\n   identifier_type: EMAIL\n")
    with pytest.raises(ConfigError, match=r"line 3"):
        load_config_file(p)


def test_json_is_accepted_and_its_errors_name_the_line(tmp_path: Path) -> None:
    good = tmp_path / "c.json"
    good.write_text('{"rules": [{"rule_id": "R1", "identifier_type": "EMAIL"}]}')
    assert load_config_file(good)["rules"][0]["rule_id"] == "R1"
    bad = tmp_path / "bad.json"
    bad.write_text('{\n "rules": [\n  {"rule_id": "R1",}\n ]\n}')
    with pytest.raises(ConfigError, match=r"bad\.json.*line 3"):
        load_config_file(bad)


def test_non_mapping_and_missing_files(tmp_path: Path) -> None:
    p = tmp_path / "list.yml"
    p.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config_file(p)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config_file(tmp_path / "nope.yml")
    empty = tmp_path / "empty.yml"
    empty.write_text("# nothing yet\n")
    assert load_config_file(empty) == {}


def test_dump_roundtrips(sample_doc: dict, tmp_path: Path) -> None:
    cfg = validate_config(sample_doc)
    text = dump_config(cfg)
    assert text == dump_config(cfg)  # stable
    assert "canonicalize: EMAIL" in text
    assert "max_cc_rounds: 64" in text  # integer settings dumped unquoted
    assert "is_active" not in text  # defaults omitted
    p = tmp_path / "out.yml"
    p.write_text(text)
    assert validate_config(load_config_file(p)) == cfg
    assert list(load_config_file(p)) == [
        "sources",
        "source_trust",
        "rules",
        "identifier_mappings",
        "exclusions",
        "attribute_mappings",
        "survivorship_rules",
        "settings",
    ]
