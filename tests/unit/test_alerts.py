"""The shipped alert rules load in Prometheus, pass their promtool unit tests, and use our metrics."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from ai_operator.jobs.clients.metrics import METRICS
from tests.services import PROMTOOL_BINARY, find_binary

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "charts" / "ai-operator" / "alerts" / "ai-operator.rules.yaml"
RULE_TESTS = ROOT / "tests" / "alerts" / "ai-operator.test.yaml"
ALERTS = {
    "AIOperatorRuleNotSucceeding",
    "AIOperatorErrorRatioHigh",
    "AIOperatorModelUnreachable",
    "AIOperatorGitHubUnreachable",
    "AIOperatorGitHubRateLimitLow",
}


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [find_binary(PROMTOOL_BINARY), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def alert_rules() -> list[dict[str, object]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


@pytest.mark.services
def test_promtool_accepts_the_rules() -> None:
    """promtool check rules: the file is a valid Prometheus rules file."""
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


@pytest.mark.services
def test_every_alert_fires_when_it_should_and_not_otherwise() -> None:
    """promtool test rules: each alert's unit test, a healthy rule beside it, passes."""
    result = promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_unit_tested_and_documented() -> None:
    """Each alert has a promtool test, a severity, a summary, and a section in the docs."""
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    docs = (ROOT / "docs" / "observability.md").read_text()
    assert {str(rule["alert"]) for rule in alert_rules()} == ALERTS == tested
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}  # type: ignore[index]
        assert rule["annotations"]["summary"]  # type: ignore[index]
        assert f"### {rule['alert']}" in docs


def test_alerts_use_only_metrics_the_runs_push() -> None:
    """A renamed metric cannot leave an alert silently watching nothing."""
    declared = {spec.name for spec in METRICS}
    used = set(re.findall(r"\bai_operator_\w+", RULES.read_text()))
    assert used and used <= declared, used - declared
