"""The chart's defaults are the program's: each value the chart passes on equals the model's default.

The program's defaults live once, in its settings models: ``jobs.config.Settings`` (the pods'
environment), ``pipelines.controller.config`` (the controller's file), ``pipelines.options``
``CompileOptions`` (what the compiler puts in each pipeline) and the rule model. values.yaml
cannot import them, so this table checks every value the chart shares with them; a row fails
when one side changes alone. The values the chart chooses otherwise, on purpose, are the second
table, each with its reason.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from ai_operator.jobs.config import Settings
from ai_operator.jobs.rules.model import RuleSpec
from ai_operator.jobs.rules.schedule import DEFAULT_INTERVAL_SECONDS
from ai_operator.pipelines.controller.config import ControllerConfig, LeaderElection
from ai_operator.pipelines.options import CompileOptions, resources
from tests.chart.helm import CHART, VALUES, Helm

DEFAULTS: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
EARLIER = VALUES / "earlier-design.yaml"
SETTINGS = {name: field.default for name, field in Settings.model_fields.items()}
CONTROLLER = ControllerConfig()
ELECTION = LeaderElection()
COMPILE = CompileOptions()


def value(path: str) -> Any:
    found: Any = DEFAULTS
    for key in path.split("."):
        found = found[key]
    return found


@pytest.mark.parametrize(
    ("path", "default"),
    [
        pytest.param("github.graphqlEndpoint", SETTINGS["github_url"], id="graphql-url"),
        pytest.param("ai.maxTokens", SETTINGS["ai_max_tokens"], id="ai-max-tokens"),
        pytest.param("logging.level", SETTINGS["log_level"], id="log-level"),
        pytest.param("controller.resyncSeconds", CONTROLLER.resync_seconds, id="resync"),
        pytest.param("controller.checkSeconds", CONTROLLER.check_seconds, id="check-time"),
        pytest.param("healthcheck.port", CONTROLLER.health_port, id="health-port"),
        pytest.param("controller.leaderElection.leaseSeconds", ELECTION.lease_seconds, id="lease"),
        pytest.param("controller.leaderElection.renewSeconds", ELECTION.renew_seconds, id="renew"),
        pytest.param(
            "controller.leaderElection.retrySeconds", ELECTION.retry_seconds, id="lease-retry"
        ),
        pytest.param(
            "reconciliation.defaultIntervalSeconds", DEFAULT_INTERVAL_SECONDS, id="interval"
        ),
        pytest.param(
            "reconciliation.maxPRsPerCycle",
            RuleSpec.model_fields["maxPullRequests"].default,
            id="max-pull-requests",
        ),
        pytest.param("reconciliation.retryAttempts", COMPILE.decide_retry_limit, id="retries"),
        pytest.param(
            "reconciliation.retryBackoffSeconds",
            int(COMPILE.retry_backoff.removesuffix("s")),
            id="retry-backoff",
        ),
        pytest.param("workflow.parallelism", COMPILE.parallelism, id="parallelism"),
        pytest.param("workflow.memoMaxAge", COMPILE.memo_max_age, id="memo-max-age"),
        pytest.param("workflow.podGCDeleteDelay", COMPILE.pod_gc_delete_delay, id="pod-gc"),
        pytest.param("workflow.resources", resources(COMPILE), id="pod-resources"),
        pytest.param("executor", CONTROLLER.target, id="target"),
    ],
)
def test_the_chart_passes_on_the_program_default(path: str, default: object) -> None:
    """values.yaml's default for ``path`` is the program's own."""
    assert value(path) == default


@pytest.mark.parametrize(
    ("path", "chosen", "program"),
    [
        # The chart runs two replicas safely only with an election; the program alone runs one.
        pytest.param("controller.leaderElection.enabled", True, ELECTION.enabled, id="election-on"),
        # Pods are never terminals: the program would pick json there too.
        pytest.param("logging.format", "json", SETTINGS["log_format"], id="json-logs"),
        # The chart scrapes the controller on a port of its own; the program alone serves none.
        pytest.param("metrics.port", 9090, CONTROLLER.metrics_port, id="metrics-port"),
        # The earlier design's chart sent 0.2; the program alone leaves it to the server.
        pytest.param("ai.temperature", 0.2, SETTINGS["ai_temperature"], id="temperature"),
    ],
)
def test_the_chart_chooses_otherwise_on_purpose(path: str, chosen: object, program: object) -> None:
    """These values differ from the program's default for the reason given with each row."""
    assert value(path) == chosen != program


def test_every_variable_the_chart_sets_is_a_setting(helm: Helm) -> None:
    """Each key of the pods' settings ConfigMap is a variable the settings model reads, and its
    value passes the model's checks."""
    settings = helm.template(EARLIER, values=["ai.provider=openai"]).settings()
    assert set(settings) <= {
        str(field.validation_alias) for field in Settings.model_fields.values()
    }
    Settings.from_env(settings)
