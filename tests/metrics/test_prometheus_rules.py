"""promtool on the shipped Prometheus files: rules unit tests, rule and config syntax."""

from __future__ import annotations

import subprocess

import yaml

from tests.metrics.conftest import PROM_DIR, require_binary


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=PROM_DIR)


def test_promtool_test_rules():
    promtool = require_binary("promtool")
    proc = run(promtool, "test", "rules", "alerts_test.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


def test_promtool_check_rules_and_config():
    promtool = require_binary("promtool")
    rules = run(promtool, "check", "rules", "alerts.yml")
    assert rules.returncode == 0 and "4 rules found" in rules.stdout, rules.stdout + rules.stderr
    config = run(promtool, "check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


def test_design_alert_expressions_are_kept_verbatim():
    rules = {r["alert"]: r for g in yaml.safe_load((PROM_DIR / "alerts.yml").read_text())["groups"]
             for r in g["rules"]}  # fmt: skip
    assert rules["IDRRunFailed"]["expr"] == 'idr_run_status{status="FAILED"} > 0'
    assert rules["IDRLargeClusterCreated"]["expr"] == "idr_largest_cluster_size > 5000"
    assert rules["IDRHighSkipRate"]["expr"] == "idr_groups_skipped / idr_entities_processed > 0.1"
    assert {r["labels"]["severity"] for r in rules.values()} == {"critical", "warning"}
    # every rule is covered by the unit tests
    tests = yaml.safe_load((PROM_DIR / "alerts_test.yml").read_text())["tests"]
    tested = {t["alertname"] for case in tests for t in case.get("alert_rule_test", []) if t.get("exp_alerts")}
    assert tested == set(rules)
