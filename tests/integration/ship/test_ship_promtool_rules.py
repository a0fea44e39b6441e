"""The shipped alerts and dashboard, checked by the pinned promtool (hack/promtool.sh).

- ``promtool check rules`` (with every lint) on the PrometheusRule's groups;
- ``promtool test rules`` on manifests/prometheus/rules/tests/: every alert fires in one case and
  stays quiet in another; and each case has teeth: an alert whose expression never fires fails
  its firing cases, one that always fires fails its quiet cases;
- every PromQL expression of the Grafana dashboard parses: promtool has no "check query", so they
  become recording rules of a generated rule file that ``promtool check rules`` parses.

No cluster: promtool is the real thing here (Prometheus 3.16's PromQL parser and rule engine).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.ship.ship_env import pinned_tool

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
RULES_DIR = REPO / "manifests" / "prometheus" / "rules"
RULE = RULES_DIR / "aimctl-alerts.yaml"
RULE_TESTS = RULES_DIR / "tests" / "aimctl-alerts_test.yaml"
DASHBOARD = REPO / "manifests" / "grafana" / "aimctl-dashboard.json"
# The name the test file's rule_files entry expects next to it.
RULES_FILE = "aimctl-alerts.rules.yaml"
PROMTOOL_VERSION = "3.16.0"


def find_promtool() -> str:
    """$PROMTOOL, else the pinned promtool hack/promtool.sh builds (minutes cold)."""
    path = str(pinned_tool("PROMTOOL", "promtool.sh", "promtool", timeout=3600))
    version = subprocess.run([path, "--version"], capture_output=True, text=True, check=True)
    assert f"promtool, version {PROMTOOL_VERSION} " in version.stdout + version.stderr
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return find_promtool()


def run(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )


def groups() -> list[dict[str, Any]]:
    """The PrometheusRule's spec.groups: what the Prometheus Operator hands Prometheus."""
    rule: dict[str, Any] = yaml.safe_load(RULE.read_text())
    result: list[dict[str, Any]] = rule["spec"]["groups"]
    return result


def write_rules(directory: Path, rule_groups: list[dict[str, Any]]) -> Path:
    """A plain Prometheus rule file of ``rule_groups``, with the unit tests next to it."""
    path = directory / RULES_FILE
    path.write_text(yaml.safe_dump({"groups": rule_groups}, sort_keys=False))
    shutil.copy(RULE_TESTS, directory / RULE_TESTS.name)
    return path


def test_promtool_check_rules_accepts_the_alerts(promtool: str, tmp_path: Path) -> None:
    path = write_rules(tmp_path, groups())
    out = run(promtool, "check", "rules", "--lint=all", "--lint-fatal", path.name, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    count = sum(len(g["rules"]) for g in groups())
    assert f"SUCCESS: {count} rules found" in out.stdout + out.stderr


def test_promtool_test_rules_passes(promtool: str, tmp_path: Path) -> None:
    write_rules(tmp_path, groups())
    out = run(promtool, "test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr


def _cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    return cases


def _mutated(alert: str, expr: str) -> list[dict[str, Any]]:
    mutated = copy.deepcopy(groups())
    (rule,) = [r for g in mutated for r in g["rules"] if r.get("alert") == alert]
    rule["expr"] = expr
    return mutated


ALERTS = [r["alert"] for g in groups() for r in g["rules"]]


@pytest.mark.parametrize("alert", ALERTS)
def test_each_case_checks_its_alert(promtool: str, tmp_path: Path, alert: str) -> None:
    """Break the alert both ways; the cases written to catch each break must fail."""
    firing = {
        c["name"]
        for c in _cases()
        if any(t["alertname"] == alert and t.get("exp_alerts") for t in c["alert_rule_test"])
    }
    # Quiet cases: groups that check the alert and never expect it (a group may also check a
    # pending moment before its firing one; an always-firing alert still waits for "for").
    quiet = {
        c["name"]
        for c in _cases()
        if any(t["alertname"] == alert for t in c["alert_rule_test"]) and c["name"] not in firing
    }
    assert firing and quiet
    for expr, expected in (("vector(0) > 1", firing), ("vector(1)", quiet)):
        directory = tmp_path / ("never" if expected is firing else "always")
        directory.mkdir()
        write_rules(directory, _mutated(alert, expr))
        out = run(promtool, "test", "rules", RULE_TESTS.name, cwd=directory)
        assert out.returncode != 0, f"{alert} with expr {expr!r} passed every case"
        failed = set(re.findall(r"^ +name: (.+),$", out.stdout + out.stderr, re.MULTILINE))
        assert expected <= failed, (expr, expected - failed, out.stdout + out.stderr)


def _substitute(expr: str) -> str:
    """A panel's expression as Grafana sends it: variables replaced by what they expand to
    (multi-value variables become a regex alternation, "All" the custom all value .+)."""
    values = {
        "__rate_interval": "2m",
        "job": "aimctl-controller-manager-metrics",
        "controller": "(aimkvcache-controller|aimservice-controller)",
        "cache_namespace": ".+",
        "aimkvcache": ".+",
    }
    return re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), m.group(0)), expr)


def dashboard_exprs() -> dict[str, str]:
    """Every PromQL expression of the dashboard, by a recording-rule name saying where it is."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs: dict[str, str] = {}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            exprs[f"aimctl:dashboard:panel{panel['id']}_{target['refId']}"] = target["expr"]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            # label_values(<selector>, <label>) is Grafana's; the selector is PromQL.
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", var["query"]["query"])
            assert m, var["query"]
            exprs[f"aimctl:dashboard:var_{var['name']}"] = m.group(1)
    return exprs


def test_every_dashboard_expression_parses(promtool: str, tmp_path: Path) -> None:
    exprs = dashboard_exprs()
    assert len(exprs) > 30
    rules = [{"record": name, "expr": _substitute(e)} for name, e in exprs.items()]
    path = tmp_path / "dashboard.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = run(promtool, "check", "rules", path.name, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(rules)} rules found" in out.stdout + out.stderr


def test_a_broken_dashboard_expression_is_caught(promtool: str, tmp_path: Path) -> None:
    """The check above would see a typo: promtool refuses what Grafana would show as an error."""
    path = tmp_path / "broken.rules.yaml"
    rule = {"record": "x:y", "expr": "sum by (controller (rate(x[5m]))"}
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [rule]}]}))
    out = run(promtool, "check", "rules", path.name, cwd=tmp_path)
    assert out.returncode != 0
    assert "parse error" in out.stdout + out.stderr
