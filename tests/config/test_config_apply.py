"""apply_config: validate first, then replace idr_meta config tables in one transaction."""

from __future__ import annotations

from typing import Any

import pytest

from app.config.apply import apply_config, show_config
from app.config.model import IdrConfig
from app.config.store import read_config
from app.config.validate import validate_config
from app.core.errors import ConfigError
from app.platforms.base import Adapter


def _without_audit(cfg: IdrConfig) -> IdrConfig:
    ex = [x.model_copy(update={"created_at": None, "created_by": None}) for x in cfg.exclusions]
    return cfg.model_copy(update={"exclusions": ex})


def test_valid_config_applies_and_reads_back_equal(sample_doc: dict, adapter: Adapter) -> None:
    summary = apply_config(adapter, sample_doc, actor="alice")
    assert summary.counts == {
        "sources": 3,
        "source_trust": 3,
        "rules": 3,
        "identifier_mappings": 8,
        "exclusions": 3,
        "attribute_mappings": 10,
        "survivorship_rules": 4,
        "settings": 4,
    }
    back = show_config(adapter)
    assert back == summary.config
    assert _without_audit(back) == validate_config(sample_doc)
    assert all(x.created_by == "alice" and x.created_at is not None for x in back.exclusions)


def test_reapply_replaces_rows_and_keeps_exclusion_audit(sample_doc: dict, adapter: Adapter) -> None:
    first = apply_config(adapter, sample_doc, actor="alice").config
    assert first is not None
    sample_doc["rules"] = sample_doc["rules"][:2]
    sample_doc["identifier_mappings"] = [
        m for m in sample_doc["identifier_mappings"] if m["identifier_type"] != "LOYALTY_ID"
    ]
    sample_doc["exclusions"].append({"identifier_type": "PHONE", "identifier_value_pattern": "1111111111"})
    apply_config(adapter, sample_doc, actor="bob")
    back = read_config(adapter)
    assert [r.rule_id for r in back.rules] == ["R_EMAIL", "R_PHONE"]
    assert len(back.identifier_mappings) == 6
    by_pattern = {x.identifier_value_pattern: x for x in back.exclusions}
    old = {x.identifier_value_pattern: x for x in first.exclusions}
    for pattern, x in old.items():
        assert (by_pattern[pattern].created_at, by_pattern[pattern].created_by) == (x.created_at, "alice")
    assert by_pattern["1111111111"].created_by == "bob"


def test_settings_upsert_keeps_unmentioned_keys(sample_doc: dict, adapter: Adapter) -> None:
    sample_doc["settings"] = {"max_cc_rounds": 100}
    summary = apply_config(adapter, sample_doc, actor="carol")
    assert summary.settings_changed == ["max_cc_rounds"]
    rows = {r["config_key"]: r for r in adapter.fetch_dicts("SELECT * FROM idr_meta.config")}
    assert rows["max_cc_rounds"]["config_value"] == "100"
    assert rows["max_cc_rounds"]["updated_by"] == "carol"
    assert rows["max_cc_rounds"]["description"]  # kept from init
    assert rows["large_cluster_threshold"]["config_value"] == "5000"
    assert rows["large_cluster_threshold"]["updated_by"] == "idr init"
    # Re-applying an unchanged value does not rewrite updated_by.
    assert apply_config(adapter, sample_doc, actor="dave").settings_changed == []
    assert (
        adapter.scalar("SELECT updated_by FROM idr_meta.config WHERE config_key = 'max_cc_rounds'") == "carol"
    )


def test_setting_missing_from_table_is_inserted(sample_doc: dict, adapter: Adapter) -> None:
    adapter.execute("DELETE FROM idr_meta.config WHERE config_key = 'dry_run_keep_last'")
    sample_doc["settings"] = {"dry_run_keep_last": 5}
    apply_config(adapter, sample_doc)
    row = adapter.fetchone(
        "SELECT config_value, updated_by, description FROM idr_meta.config "
        "WHERE config_key = 'dry_run_keep_last'"
    )
    assert row is not None and row[:2] == ("5", "cli") and row[2]


def _break(doc: dict[str, Any], case: str) -> str:
    """Make ``doc`` invalid in one way; return the field path that must be named."""
    if case == "canonicalize":
        doc["rules"][0]["canonicalize"] = "SOUNDEX"
        return "rules[0].canonicalize"
    if case == "drop":
        doc["sources"][0]["entity_key_expr"] = "DROP TABLE idr_meta.rule"
        return "sources[0].entity_key_expr"
    if case == "semicolon":
        doc["identifier_mappings"][0]["identifier_value_expr"] = "email; DROP TABLE idr_meta.rule"
        return "identifier_mappings[0].identifier_value_expr"
    if case == "subquery":
        doc["attribute_mappings"][0]["attribute_expr"] = "(SELECT max(first_name) FROM crm.customers)"
        return "attribute_mappings[0].attribute_expr"
    if case == "unknown_column":
        doc["attribute_mappings"][0]["attribute_expr"] = "given_name"
        return "attribute_mappings[0].attribute_expr"
    if case == "missing_table":
        doc["sources"][1]["table_fqn"] = "shop.gone"
        return "sources[1].table_fqn"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case", ["canonicalize", "drop", "semicolon", "subquery", "unknown_column", "missing_table"]
)
def test_invalid_config_changes_nothing(
    sample_doc: dict, adapter: Adapter, dump_meta: Any, case: str
) -> None:
    apply_config(adapter, sample_doc)  # a populated, valid starting state
    before = dump_meta(adapter)
    assert before["rule"] and before["source_table"]
    field = _break(sample_doc, case)
    sample_doc["rules"].append({"rule_id": "R_NEW", "identifier_type": "DEVICE"})  # would be written
    sample_doc["settings"]["dry_run_keep_last"] = 9
    with pytest.raises(ConfigError) as info:
        apply_config(adapter, sample_doc)
    assert field in {e["field"] for e in info.value.errors}
    assert dump_meta(adapter) == before
    # the warehouse objects the bad expressions named are untouched too
    assert adapter.table_exists("idr_meta", "rule")


def test_failure_inside_transaction_rolls_back(
    sample_doc: dict, adapter: Adapter, dump_meta: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply_config(adapter, sample_doc)
    before = dump_meta(adapter)
    sample_doc["rules"].append({"rule_id": "R_NEW", "identifier_type": "DEVICE"})
    calls = {"n": 0}
    real = adapter.executemany

    def flaky(sql: str, rows: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 4:  # after sources, source_trust and rules were replaced
            raise RuntimeError("warehouse went away")
        real(sql, rows)

    monkeypatch.setattr(adapter, "executemany", flaky)
    with pytest.raises(RuntimeError):
        apply_config(adapter, sample_doc)
    assert calls["n"] == 4
    assert dump_meta(adapter) == before


def test_empty_document_clears_config_but_keeps_settings(sample_doc: dict, adapter: Adapter) -> None:
    apply_config(adapter, sample_doc)
    summary = apply_config(adapter, {})
    assert set(summary.counts.values()) == {0}
    back = show_config(adapter)
    assert back.sources == [] and back.rules == []
    assert back.settings["large_cluster_threshold"] == "5000"


def test_shown_config_can_be_applied_again(sample_doc: dict, adapter: Adapter, dump_meta: Any) -> None:
    apply_config(adapter, sample_doc)
    shown = show_config(adapter)
    before = dump_meta(adapter)
    summary = apply_config(adapter, shown)
    assert summary.settings_changed == []
    assert dump_meta(adapter) == before  # idempotent, audit fields included
