"""validate_config / validate_expression: every problem reported, with a field path."""

from __future__ import annotations

from typing import Any

import pytest
from sqlglot import exp

from app.config.model import IdrConfig
from app.config.validate import parse_table_fqn, validate_config, validate_expression
from app.core.errors import ConfigError
from app.platforms.base import Adapter


def errors_of(doc: Any, adapter: Adapter | None = None) -> dict[str, list[str]]:
    with pytest.raises(ConfigError) as info:
        validate_config(doc, adapter)
    out: dict[str, list[str]] = {}
    for e in info.value.errors:
        out.setdefault(e["field"], []).append(e["message"])
    assert info.value.status == 422
    return out


def test_sample_is_valid_with_and_without_warehouse(sample_doc: dict, adapter: Adapter) -> None:
    cfg = validate_config(sample_doc, adapter)
    assert isinstance(cfg, IdrConfig)
    assert [s.table_id for s in cfg.sources] == ["crm", "shop", "loyalty"]
    assert {r.identifier_type for r in cfg.rules} == {"EMAIL", "PHONE", "LOYALTY_ID"}
    assert cfg.settings["max_cc_rounds"] == "64"  # settings normalised to strings
    assert validate_config(sample_doc, None) == cfg


def test_accepts_an_idrconfig_instance(sample_doc: dict, adapter: Adapter) -> None:
    cfg = validate_config(sample_doc, adapter)
    assert validate_config(cfg, adapter) == cfg


def test_unknown_canonicalize_names_field_and_allowed_values(sample_doc: dict) -> None:
    sample_doc["rules"][2]["canonicalize"] = "SOUNDEX"
    errs = errors_of(sample_doc)
    assert list(errs) == ["rules[2].canonicalize"]
    msg = errs["rules[2].canonicalize"][0]
    assert "SOUNDEX" in msg
    for allowed in ("NONE", "LOWERCASE", "UPPERCASE", "TRIM", "EMAIL", "PHONE"):
        assert allowed in msg


def test_pydantic_errors_get_paths(sample_doc: dict) -> None:
    del sample_doc["sources"][1]["entity_key_expr"]
    sample_doc["rules"][0]["max_group_size"] = 1
    sample_doc["rules"][1]["colour"] = "red"
    sample_doc["exclusions"][0]["match_type"] = "REGEX"
    errs = errors_of(sample_doc)
    assert errs["sources[1].entity_key_expr"] == ["field required"]
    assert "greater than or equal to 2" in errs["rules[0].max_group_size"][0]
    assert errs["rules[1].colour"] == ["unknown field"]
    assert "EXACT" in errs["exclusions[0].match_type"][0] and "LIKE" in errs["exclusions[0].match_type"][0]


BAD_EXPRESSIONS = [
    ("DROP TABLE crm.customers", "not a DROP"),
    ("email; DROP TABLE x", "';'"),
    ("email;", "';'"),
    ("DELETE FROM crm.customers", "statement"),
    ("(SELECT max(email) FROM crm.customers)", "subquer"),
    ("email IN (SELECT email FROM loyalty.members)", "subquer"),
    ("EXISTS (SELECT 1)", "subquer"),
    ("count(email)", "aggregate"),
    ("histogram(email)", "not allowed"),  # a DuckDB aggregate sqlglot does not know
    ("row_number() OVER (ORDER BY email)", "window"),
    ("m.email", "table-qualified"),
    ("loyalty.members.email", "table-qualified"),
    ("no_such_column", "unknown column"),
    ("lower(emial)", "unknown column"),
    ("getenv('HOME')", "getenv"),
    ("current_setting('threads')", "current_setting"),
    ("read_csv('/etc/passwd')", "read_csv"),
    ("read_parquet('/tmp/x.parquet')", "read_parquet"),
    ("read_text('/etc/passwd')", "read_text"),
    ("nextval('seq')", "nextval"),
    ("unnest([email])", "set-returning"),
    ("*", "'*'"),
    ("email AS e", "alias"),
    ("$1", "placeholder"),
    ("lower(", "not a valid SQL expression"),
    ("   ", "empty"),
]


@pytest.mark.parametrize(("expr", "needle"), BAD_EXPRESSIONS)
def test_bad_expressions_are_refused(sample_doc: dict, adapter: Adapter, expr: str, needle: str) -> None:
    # identifier_mappings[0] maps crm.customers.email
    sample_doc["identifier_mappings"][0]["identifier_value_expr"] = expr
    errs = errors_of(sample_doc, adapter)
    assert list(errs) == ["identifier_mappings[0].identifier_value_expr"]
    assert any(needle.lower() in m.lower() for m in errs["identifier_mappings[0].identifier_value_expr"]), (
        errs
    )


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ("sources", "entity_key_expr"),
        ("attribute_mappings", "attribute_expr"),
    ],
)
def test_every_expression_field_is_checked(sample_doc: dict, section: str, field: str) -> None:
    sample_doc[section][0][field] = "1; DROP TABLE idr_meta.rule"
    errs = errors_of(sample_doc)
    assert f"{section}[0].{field}" in errs


def test_unknown_column_checked_against_the_right_table(sample_doc: dict, adapter: Adapter) -> None:
    # customer_email exists in shop.orders but not in crm.customers.
    sample_doc["attribute_mappings"][2]["attribute_expr"] = "customer_email"
    errs = errors_of(sample_doc, adapter)
    msg = errs["attribute_mappings[2].attribute_expr"][0]
    assert "customer_email" in msg and "first_name" in msg  # names what the table does have
    # Without a warehouse the column cannot be checked, the structure still is.
    assert validate_config(sample_doc, None).attribute_mappings[2].attribute_expr == "customer_email"


def test_missing_source_table_is_named(sample_doc: dict, adapter: Adapter) -> None:
    sample_doc["sources"][2]["table_fqn"] = "loyalty.no_such_table"
    errs = errors_of(sample_doc, adapter)
    assert list(errs) == ["sources[2].table_fqn"]
    assert "does not exist" in errs["sources[2].table_fqn"][0]


@pytest.mark.parametrize(
    "fqn",
    [
        "crm.customers; DROP TABLE x",
        "crm.customers AS c",
        "crm.customers c",
        "read_csv('/etc/passwd')",
        "(SELECT 1)",
        "crm.customers JOIN shop.orders ON true",
        "",
    ],
)
def test_table_fqn_must_be_a_plain_table(sample_doc: dict, fqn: str) -> None:
    sample_doc["sources"][0]["table_fqn"] = fqn
    errs = errors_of(sample_doc)
    assert "sources[0].table_fqn" in errs


def test_table_fqn_forms() -> None:
    assert parse_table_fqn("customers").name == "customers"
    t = parse_table_fqn("warehouse.crm.customers")
    assert (t.catalog, t.db, t.name) == ("warehouse", "crm", "customers")
    assert parse_table_fqn('"My Schema"."My Table"').name == "My Table"


def test_watermark_column_must_exist(sample_doc: dict, adapter: Adapter) -> None:
    sample_doc["sources"][1]["watermark_column"] = "updated_at"  # shop.orders has ordered_at
    errs = errors_of(sample_doc, adapter)
    assert list(errs) == ["sources[1].watermark_column"]


def test_duplicates_are_reported(sample_doc: dict) -> None:
    sample_doc["sources"].append(dict(sample_doc["sources"][0]))
    sample_doc["rules"].append({"rule_id": "R_EMAIL", "identifier_type": "EMAIL2"})
    sample_doc["rules"].append({"rule_id": "R_EMAIL_B", "identifier_type": "EMAIL"})
    sample_doc["survivorship_rules"].append({"attribute_name": "phone", "strategy": "RECENCY"})
    sample_doc["attribute_mappings"].append(
        {"table_id": "crm", "attribute_name": "phone", "attribute_expr": "1"}
    )
    errs = errors_of(sample_doc)
    assert "sources[0]" in errs["sources[3].table_id"][0]
    assert "duplicate rule_id" in errs["rules[3].rule_id"][0]
    assert "active rule for identifier_type" in errs["rules[4].identifier_type"][0]
    assert "duplicate" in errs["survivorship_rules[4].attribute_name"][0]
    assert "duplicate" in errs["attribute_mappings[10].attribute_name"][0]


def test_inactive_rule_may_share_identifier_type(sample_doc: dict) -> None:
    sample_doc["rules"].append({"rule_id": "R_EMAIL_OLD", "identifier_type": "EMAIL", "is_active": False})
    cfg = validate_config(sample_doc)
    assert len([r for r in cfg.rules if r.identifier_type == "EMAIL"]) == 2


def test_references_are_checked(sample_doc: dict) -> None:
    sample_doc["identifier_mappings"][0]["table_id"] = "erp"
    sample_doc["identifier_mappings"][1]["identifier_type"] = "FAX"
    sample_doc["exclusions"][0]["identifier_type"] = "FAX"
    sample_doc["source_trust"][0]["table_id"] = "erp"
    sample_doc["attribute_mappings"][0]["table_id"] = "erp"
    sample_doc["survivorship_rules"][0]["attribute_name"] = "birthday"
    sample_doc["survivorship_rules"][1]["recency_field"] = "birthday"
    sample_doc["survivorship_rules"][2]["source_priority_list"] = "crm, erp,,shop"
    errs = errors_of(sample_doc)
    assert "erp" in errs["identifier_mappings[0].table_id"][0]
    assert "FAX" in errs["identifier_mappings[1].identifier_type"][0]
    assert "FAX" in errs["exclusions[0].identifier_type"][0]
    assert "source_trust[0].table_id" in errs
    assert "attribute_mappings[0].table_id" in errs
    assert "not mapped" in errs["survivorship_rules[0].attribute_name"][0]
    assert "birthday" in errs["survivorship_rules[1].recency_field"][0]
    prio = " ".join(errs["survivorship_rules[2].source_priority_list"])
    assert "erp" in prio and "empty" in prio


@pytest.mark.parametrize(
    ("settings", "field", "needle"),
    [
        ({"colour": 1}, "settings.colour", "unknown setting"),
        ({"large_cluster_threshold": 0}, "settings.large_cluster_threshold", ">= 1"),
        ({"max_cc_rounds": "0"}, "settings.max_cc_rounds", ">= 1"),
        ({"dry_run_retention_days": -1}, "settings.dry_run_retention_days", ">= 0"),
        ({"dry_run_keep_last": "many"}, "settings.dry_run_keep_last", "integer"),
        ({"dry_run_keep_last": True}, "settings.dry_run_keep_last", "integer"),
        ({"dry_run_keep_last": 1.5}, "settings.dry_run_keep_last", "integer"),
    ],
)
def test_settings_are_checked(sample_doc: dict, settings: dict, field: str, needle: str) -> None:
    sample_doc["settings"] = settings
    errs = errors_of(sample_doc)
    assert list(errs) == [field]
    assert needle in errs[field][0]


def test_settings_accept_numeric_strings(sample_doc: dict) -> None:
    sample_doc["settings"] = {"dry_run_keep_last": "3", "max_cc_rounds": 10}
    assert validate_config(sample_doc).settings == {"dry_run_keep_last": "3", "max_cc_rounds": "10"}


def test_all_errors_reported_at_once(sample_doc: dict, adapter: Adapter) -> None:
    sample_doc["bogus_section"] = []
    sample_doc["sources"][0]["entity_key_expr"] = "customer_id; DROP TABLE x"
    sample_doc["sources"][2]["table_fqn"] = "loyalty.gone"
    sample_doc["rules"][1]["canonicalize"] = "DIGITS"
    sample_doc["identifier_mappings"][3]["identifier_value_expr"] = "(SELECT 1)"
    sample_doc["attribute_mappings"][1]["attribute_expr"] = "surname"
    sample_doc["settings"]["max_cc_rounds"] = 0
    errs = errors_of(sample_doc, adapter)
    assert set(errs) == {
        "bogus_section",
        "sources[0].entity_key_expr",
        "sources[2].table_fqn",
        "rules[1].canonicalize",
        "identifier_mappings[3].identifier_value_expr",
        "attribute_mappings[1].attribute_expr",
        "settings.max_cc_rounds",
    }
    with pytest.raises(ConfigError, match=r"and 6 more"):
        validate_config(sample_doc, adapter)


def test_structural_errors(sample_doc: dict) -> None:
    assert "" in errors_of(["not", "a", "mapping"])
    sample_doc["rules"] = {"rule_id": "x"}
    sample_doc["sources"][0] = "crm"
    errs = errors_of(sample_doc)
    assert errs["rules"] == ["must be a list"]
    assert "sources[0]" in errs


GOOD_EXPRESSIONS = [
    "email",
    "lower(trim(email))",
    "regexp_replace(phone, '[^0-9]', '', 'g')",
    "'crm;' || customer_id",  # a ';' inside a string literal is data, not a statement separator
    "CASE WHEN email IS NULL THEN phone ELSE email END",
    "customer_id::VARCHAR",
    "coalesce(nullif(trim(email), ''), phone)",
    "list_transform([email, phone], x -> lower(x))[1]",
    "split_part(first_name, ' ', 1)",
    "updated_at + INTERVAL 1 DAY",
    '"EMAIL"',  # identifiers are case-insensitive
]


@pytest.mark.parametrize("expr", GOOD_EXPRESSIONS)
def test_good_expressions_parse(expr: str) -> None:
    cols = {"customer_id", "first_name", "last_name", "email", "phone", "updated_at"}
    tree = validate_expression(expr, cols)
    assert isinstance(tree, exp.Expression)
    assert tree.sql(dialect="duckdb")  # renders back to SQL the pipeline can embed


def test_validate_expression_strips_comments_and_names_field() -> None:
    tree = validate_expression("lower(email) /* note */ -- trailing", {"email"})
    assert tree.sql(dialect="duckdb") == "LOWER(email)"
    with pytest.raises(ConfigError) as info:
        validate_expression("email; DROP TABLE t", {"email"}, field="rules[0].x")
    assert info.value.errors[0]["field"] == "rules[0].x"


def test_validate_expression_without_columns_skips_only_column_check() -> None:
    assert isinstance(validate_expression("anything_goes", None), exp.Column)
    with pytest.raises(ConfigError):
        validate_expression("sum(anything_goes)", None)


def test_unqualified_table_resolves_in_default_schema(sample_doc: dict, adapter: Adapter) -> None:
    adapter.execute("CREATE TABLE main.web_events (event_id VARCHAR, email VARCHAR)")
    sample_doc["sources"].append(
        {"table_id": "web", "table_fqn": "web_events", "entity_key_expr": "event_id"}
    )
    sample_doc["identifier_mappings"].append(
        {"table_id": "web", "identifier_type": "EMAIL", "identifier_value_expr": "lower(email)"}
    )
    assert validate_config(sample_doc, adapter).sources[-1].table_fqn == "web_events"
    sample_doc["identifier_mappings"][-1]["identifier_value_expr"] = "phone"  # not a web_events column
    assert "identifier_mappings[8].identifier_value_expr" in errors_of(sample_doc, adapter)


def test_inactive_source_may_point_at_a_missing_table(sample_doc: dict, adapter: Adapter) -> None:
    sample_doc["sources"][2]["table_fqn"] = "loyalty.archived_members"
    sample_doc["sources"][2]["is_active"] = False
    assert validate_config(sample_doc, adapter).sources[2].is_active is False


def test_setting_values_must_be_whole_integers(sample_doc: dict) -> None:
    for bad in ("+-5", "5.0", "", "1e3"):
        sample_doc["settings"] = {"max_cc_rounds": bad}
        assert "integer" in errors_of(sample_doc)["settings.max_cc_rounds"][0]
