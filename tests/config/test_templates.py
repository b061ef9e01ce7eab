"""`idr config template NAME`: each template applies to the table layout its header
documents and links what it should, and nothing an exclusion or a guard blocks."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
import yaml
from typer.testing import CliRunner

from app.cli import app
from app.config.templates import TEMPLATES
from app.core.settings import get_settings
from app.platforms.duckdb import DuckDBAdapter


@dataclass
class Case:
    tables: list[str]  # DDL + INSERTs of the layout in the template's header
    together: list[set[str]]  # entity keys each in one cluster
    apart: list[str]  # entity keys that must stay alone
    golden: dict[str, str]  # attribute -> value of the first "together" cluster


TS = "TIMESTAMP '2026-01-0{}'"
CASES = {
    "retail": Case(
        [
            "CREATE SCHEMA crm; CREATE SCHEMA pos; CREATE SCHEMA ecom",
            "CREATE TABLE crm.customers (customer_id VARCHAR, first_name VARCHAR, last_name VARCHAR, email VARCHAR, "
            "phone VARCHAR, address_line1 VARCHAR, postal_code VARCHAR, updated_at TIMESTAMP)",
            "CREATE TABLE pos.transactions (txn_id VARCHAR, loyalty_id VARCHAR, email VARCHAR, phone VARCHAR, "
            "store_id VARCHAR, txn_ts TIMESTAMP)",
            "CREATE TABLE ecom.orders (order_id VARCHAR, email VARCHAR, phone VARCHAR, loyalty_id VARCHAR, "
            "first_name VARCHAR, last_name VARCHAR, ship_address_line1 VARCHAR, ship_postal_code VARCHAR, "
            "ordered_at TIMESTAMP)",
            f"INSERT INTO crm.customers VALUES ('C1', 'Ann', 'Lee', ' Ann@Shop.io ', '+1 (555) 010-0001', "
            f"'12  Main St', 'ab1 2cd', {TS.format(1)}), ('C2', 'Bob', 'Test', 'test@test.com', '000-000-0000', "
            f"'unknown', 'X1', {TS.format(1)})",
            f"INSERT INTO pos.transactions VALUES ('T1', ' L-1 ', 'ann@shop.io', NULL, 'S1', {TS.format(2)}), "
            f"('T2', 'L-1', NULL, NULL, 'S1', {TS.format(3)}), ('T3', 'N/A', 'test@test.com', '0000000000', 'S2', "
            f"{TS.format(3)}), ('T4', 'N/A', NULL, '(000) 000-0000', 'S2', {TS.format(4)})",
            f"INSERT INTO ecom.orders VALUES ('O1', 'other@x.io', '1-555-010-0001', NULL, 'Annie', 'Lee', NULL, NULL, "
            f"{TS.format(4)}), ('O2', 'carl@y.io', NULL, NULL, 'Carl', 'Lee', '12 main st', 'AB12CD', "
            f"{TS.format(5)}), ('O3', 'someone@example.com', NULL, NULL, 'X', 'Y', 'unknown', 'Z9', {TS.format(5)}), "
            f"('O4', 'Someone@Example.com', NULL, NULL, 'X', 'Y', 'unknown', 'Z9', {TS.format(6)})",
        ],
        together=[{"crm:C1", "pos:T1", "pos:T2", "ecom:O1", "ecom:O2"}],
        apart=["crm:C2", "pos:T3", "pos:T4", "ecom:O3", "ecom:O4"],
        golden={"first_name": "Ann", "address": "12 main st, AB12CD"},
    ),
    "healthcare": Case(
        [
            "CREATE SCHEMA ehr; CREATE SCHEMA claims; CREATE SCHEMA lab",
            "CREATE TABLE ehr.patients (patient_id VARCHAR, mrn VARCHAR, ssn VARCHAR, first_name VARCHAR, "
            "last_name VARCHAR, date_of_birth DATE, phone VARCHAR, updated_at TIMESTAMP)",
            "CREATE TABLE claims.members (member_id VARCHAR, mrn VARCHAR, ssn VARCHAR, first_name VARCHAR, "
            "last_name VARCHAR, date_of_birth DATE, updated_at TIMESTAMP)",
            "CREATE TABLE lab.orders (order_id VARCHAR, mrn VARCHAR, first_name VARCHAR, last_name VARCHAR, "
            "date_of_birth DATE, collected_at TIMESTAMP)",
            f"INSERT INTO ehr.patients VALUES ('P1', 'm-100', '219-09-9999', 'Jane', 'Roe', DATE '1980-02-03', "
            f"'555-0100', {TS.format(1)})",
            f"INSERT INTO claims.members VALUES ('M1', NULL, '219099999', 'J.', 'Roe', NULL, {TS.format(2)}), "
            f"('M2', 'UNKNOWN', '123-45-6789', 'John', 'Doe', DATE '1970-01-01', {TS.format(2)}), "
            f"('M3', 'unknown', '123456789', 'John', 'Doe', DATE '1970-01-01', {TS.format(3)}), "
            f"('M4', 'TEMP-1', '900-12-3456', 'Al', 'Bo', DATE '1900-01-01', {TS.format(3)}), "
            f"('M5', 'temp-1', '900123456', 'Al', 'Bo', DATE '1900-01-01', {TS.format(4)})",
            f"INSERT INTO lab.orders VALUES ('L1', ' M-100', NULL, NULL, NULL, {TS.format(2)}), "
            f"('L2', NULL, ' jane ', 'ROE', DATE '1980-02-03', {TS.format(3)}), "
            f"('L3', NULL, 'Ann', 'Smith', NULL, {TS.format(4)}), ('L4', NULL, 'Ann', 'Smith', NULL, {TS.format(5)})",
        ],
        together=[{"ehr:P1", "claims:M1", "lab:L1", "lab:L2"}],
        apart=["claims:M2", "claims:M3", "claims:M4", "claims:M5", "lab:L3", "lab:L4"],
        golden={"first_name": "Jane", "date_of_birth": "1980-02-03", "mrn": "M-100"},
    ),
    "financial": Case(
        [
            "CREATE SCHEMA core; CREATE SCHEMA cards; CREATE SCHEMA online",
            "CREATE TABLE core.accounts (account_id VARCHAR, account_number VARCHAR, holder_name VARCHAR, "
            "holder_email VARCHAR, ssn VARCHAR, updated_at TIMESTAMP)",
            "CREATE TABLE cards.cardholders (card_id VARCHAR, account_number VARCHAR, cardholder_name VARCHAR, "
            "email VARCHAR, ssn VARCHAR, phone VARCHAR, updated_at TIMESTAMP)",
            "CREATE TABLE online.users (user_id VARCHAR, login_email VARCHAR, linked_account_number VARCHAR, "
            "last_login TIMESTAMP)",
            f"INSERT INTO core.accounts VALUES ('A1', 'de12 3456-78', 'Ann Lee', 'ann@bank.io', '219-09-9999', "
            f"{TS.format(1)}), ('A2', 'SUSPENSE-1', 'Suspense', 'test@bank.io', '000-00-0000', {TS.format(1)})",
            f"INSERT INTO cards.cardholders VALUES ('K1', 'DE1234 5678', 'A LEE', NULL, NULL, '555', {TS.format(2)}), "
            f"('K2', 'suspense 1', 'X', 'test@bank.io', '000000000', NULL, {TS.format(2)}), "
            f"('K3', NULL, 'Bo', 'bo@bank.io', '219-09-9998', NULL, {TS.format(2)})",
            f"INSERT INTO online.users VALUES ('U1', ' ANN@bank.io', NULL, {TS.format(3)}), "
            f"('U2', 'x@example.com', 'Suspense-1', {TS.format(3)}), ('U3', 'y@example.com', NULL, {TS.format(4)})",
        ],
        together=[{"core:A1", "cards:K1", "online:U1"}],
        apart=["core:A2", "cards:K2", "cards:K3", "online:U2", "online:U3"],
        golden={"full_name": "Ann Lee", "email": "ann@bank.io"},
    ),
    "b2b_saas": Case(
        [
            "CREATE SCHEMA crm; CREATE SCHEMA billing; CREATE SCHEMA product",
            "CREATE TABLE crm.contacts (contact_id VARCHAR, email VARCHAR, first_name VARCHAR, last_name VARCHAR, "
            "company_name VARCHAR, updated_at TIMESTAMP)",
            "CREATE TABLE billing.accounts (account_id VARCHAR, billing_email VARCHAR, company_name VARCHAR, "
            "plan VARCHAR, updated_at TIMESTAMP)",
            "CREATE TABLE product.users (user_id VARCHAR, email VARCHAR, signup_company VARCHAR, created_at TIMESTAMP)",
            f"INSERT INTO crm.contacts VALUES ('C1', 'ann@acme.io', 'Ann', 'Lee', 'ACME, Inc.', {TS.format(1)}), "
            f"('C2', 'bob@gmail.com', 'Bob', 'B', 'n/a', {TS.format(1)}), "
            f"('C3', 'carol@gmail.com', 'Carol', 'C', 'Self', {TS.format(1)})",
            f"INSERT INTO billing.accounts VALUES ('B1', 'Billing@Acme.io', 'Acme Inc', 'enterprise', {TS.format(2)}), "
            f"('B2', 'x@hotmail.co.uk', 'N/A', 'free', {TS.format(2)})",
            f"INSERT INTO product.users VALUES ('U1', 'dev@acme.io', NULL, {TS.format(3)}), "
            f"('U2', 'dave@gmail.com', 'none', {TS.format(3)}), ('U3', 'eve@newco.dev', 'NewCo', {TS.format(4)}), "
            f"('U4', 'x2@hotmail.co.uk', 'Self', {TS.format(4)})",
        ],
        together=[{"crm:C1", "billing:B1", "product:U1"}],
        apart=["crm:C2", "crm:C3", "billing:B2", "product:U2", "product:U3", "product:U4"],
        golden={"company_name": "Acme Inc", "plan": "enterprise", "domain": "acme.io"},
    ),
}


def test_every_template_has_a_case():
    assert set(CASES) == set(TEMPLATES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_template_applies_and_links_as_documented(name, tmp_path, monkeypatch):
    case = CASES[name]
    db = tmp_path / "wh.duckdb"
    monkeypatch.setenv("IDR_DUCKDB_PATH", str(db))
    monkeypatch.setenv("IDR_STATE_DB_URL", f"sqlite:///{tmp_path}/state.db")
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        assert runner.invoke(app, ["init"]).exit_code == 0
        with DuckDBAdapter.from_path(str(db)) as a:
            for stmt in case.tables:
                for part in stmt.split("; "):
                    a.execute(part)
        text = runner.invoke(app, ["config", "template", name]).stdout
        assert text.startswith("# idr configuration template") and "exclusions:" in text
        doc = yaml.safe_load(text)
        assert doc["exclusions"] and doc["survivorship_rules"] and all(r.get("canonicalize") for r in doc["rules"])
        cfg = tmp_path / "idr.yml"
        cfg.write_text(text)
        r = runner.invoke(app, ["config", "apply", str(cfg)])
        assert r.exit_code == 0, r.output
        r = runner.invoke(app, ["run", "--mode", "FULL", "-q"])
        assert r.exit_code == 0, r.output
        with DuckDBAdapter.from_path(str(db)) as a:
            member = dict(
                a.fetchall("SELECT entity_key, resolved_id FROM idr_out.identity_resolved_membership_current")
            )
            golden = {}
            for group in case.together:
                ids = {member[k] for k in group}
                assert len(ids) == 1, (group, {k: member[k] for k in group})
            rid = member[next(iter(case.together[0]))]
            golden = dict(
                a.fetchall(
                    "SELECT attribute_name, attribute_value FROM idr_out.golden_profile_current WHERE resolved_id = $r",
                    {"r": rid},
                )
            )
        everyone = [k for g in case.together for k in g] + case.apart
        assert set(member) == set(everyone)
        for a_key, b_key in itertools.combinations(case.apart, 2):
            assert member[a_key] != member[b_key], (a_key, b_key)
        for a_key in case.apart:
            assert all(member[a_key] != member[k] for g in case.together for k in g), a_key
        for attr, value in case.golden.items():
            assert golden.get(attr) == value, (attr, golden)
    finally:
        get_settings.cache_clear()


def test_unknown_template_is_bad_input():
    r = CliRunner().invoke(app, ["config", "template", "bakery"])
    assert r.exit_code == 2 and "retail" in r.stderr
