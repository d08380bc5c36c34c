"""Values: wrong ones are refused with their path, and the earlier design's keep their meaning."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helm import CHART, NAMESPACE, VALUES, Helm, Rendered

EARLIER = VALUES / "earlier-design.yaml"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param(["executor=foo"], "- executor: executor must be one of", id="executor"),
        pytest.param(["replicaCount=x"], "- replicaCount: Invalid type", id="replicas-type"),
        pytest.param(["replicaCount=3"], "- replicaCount: Must be less than", id="replicas-max"),
        pytest.param(["workflow.parallelism=0"], "- workflow.parallelism:", id="parallelism"),
        pytest.param(["workflow.memoMaxAge=1 day"], "- workflow.memoMaxAge:", id="duration"),
        pytest.param(["workflow.podGCDeleteDelay=10"], "- workflow.podGCDeleteDelay:", id="gc"),
        pytest.param(["watchNamespaces={Team_A}"], "- watchNamespaces.0:", id="namespace"),
        pytest.param(["image.pullPolicy=Sometimes"], "- image.pullPolicy:", id="pull-policy"),
        pytest.param(["ai.provider=gemini"], "- ai.provider:", id="provider"),
        pytest.param(["ai.temperature=3"], "- ai.temperature:", id="temperature"),
        pytest.param(["logging.format=xml"], "- logging.format:", id="log-format"),
        pytest.param(["pushgateway.url=pushgateway:9091"], "- pushgateway.url:", id="url"),
        pytest.param(["metrics.port=70000"], "- metrics.port:", id="port"),
        pytest.param(["github.repositories={a/b/c}"], "- github.repositories.0:", id="repo"),
        pytest.param(["rules.myRule.name=x"], "- rules.myRule: enabled is required", id="rule"),
        pytest.param(
            ["argocd.url=https://admin:pw@argocd.example"], "- argocd.url:", id="argocd-credentials"
        ),
        pytest.param(["github.app.id=my-app"], "- github.app.id:", id="app-id-not-a-number"),
        pytest.param(
            ["github.app.privateKey=x"],
            "- github.app: Additional property privateKey",
            id="app-key-is-never-a-value",
        ),
        pytest.param(
            ["workflow.paralelism=3"], "- workflow: Additional property paralelism", id="typo"
        ),
        pytest.param(["executer=argo"], "- (root): Additional property executer", id="top-typo"),
    ],
)
def test_schema_refuses_wrong_values_naming_their_path(
    helm: Helm, values: list[str], message: str
) -> None:
    """values.schema.json refuses the value, and helm's error names where it is."""
    assert message in helm.template_error(values=values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param(
            ["github.token=ghp-x"],
            "github.token is set but secret.create is false",
            id="token-without-secret",
        ),
        pytest.param(
            ["replicaCount=2", "controller.leaderElection.enabled=false"],
            "replicaCount: more than one replica needs controller.leaderElection.enabled",
            id="two-replicas-without-election",
        ),
        pytest.param(
            ["secret.create=true", "github.token=ghp-x"],
            "secret.create is true: ai.token is required",
            id="secret-without-token",
        ),
        pytest.param(
            ["secret.create=true", "ai.token=x", "github.token=x", "github.tokenSecretName=gh"],
            "github.token and github.tokenSecretName are both set",
            id="token-twice",
        ),
        pytest.param(
            ["argocd.enabled=true"],
            "argocd.enabled is true: argocd.url is required",
            id="argocd-without-url",
        ),
        pytest.param(
            ["argocd.token=a", "argocd.tokenSecretName=argocd"],
            "argocd.token and argocd.tokenSecretName are both set",
            id="argocd-token-twice",
        ),
        pytest.param(
            ["github.app.id=4242", "github.tokenSecretName=gh"],
            "github.app.id and a GitHub token (github.token or github.tokenSecretName) are both "
            "set: choose one",
            id="app-and-token",
        ),
        pytest.param(
            ["watchNamespaces={*,team-a}"],
            "cannot be combined with namespace names",
            id="star-and-names",
        ),
        pytest.param(
            ["watchAllNamespaces=true", "watchNamespaces={team-a}"],
            "cannot be combined with namespace names",
            id="flag-and-names",
        ),
        pytest.param(
            ["rbac.create=false"],
            "rbac.serviceAccountName must name an existing ServiceAccount",
            id="no-rbac-no-account",
        ),
        pytest.param(
            ["rbac.create=false", "rbac.serviceAccountName=ops"],
            "workflow.serviceAccountName must name an existing ServiceAccount",
            id="no-rbac-no-workflow-account",
        ),
    ],
)
def test_values_that_cannot_work_are_refused(helm: Helm, values: list[str], message: str) -> None:
    """Combinations the schema cannot see fail with a sentence naming the values."""
    assert message in helm.template_error(values=values)


def test_token_values_never_leave_the_secret(helm: Helm) -> None:
    """A token given in values appears in the Secret only (base64), nowhere else."""
    rendered = helm.template(
        values=["secret.create=true", "github.token=ghp-secret-1", "ai.token=sk-secret-2"]
    )
    for doc in rendered.docs:
        if doc["kind"] != "Secret":
            text = yaml.safe_dump(doc)
            assert "ghp-secret-1" not in text
            assert "sk-secret-2" not in text


# --- the earlier design's values file ------------------------------------------------------


@pytest.fixture
def earlier(helm: Helm) -> Rendered:
    return helm.template(EARLIER)


@pytest.fixture
def written() -> Any:
    return yaml.safe_load(EARLIER.read_text())


def test_earlier_settings_reach_every_pod(earlier: Rendered, written: Any) -> None:
    """github.*, ai.*, argocd.*, logging.* become the pods' environment variables."""
    assert earlier.settings() == {
        "GITHUB_ORGANIZATION": written["github"]["organization"],
        "GITHUB_REPOSITORIES": ",".join(written["github"]["repositories"]),
        "GITHUB_GRAPHQL_URL": written["github"]["graphqlEndpoint"],
        "AI_ENDPOINT": written["ai"]["endpoint"],
        "AI_MODEL": written["ai"]["model"],
        "AI_MAX_TOKENS": str(written["ai"]["maxTokens"]),
        "AI_TEMPERATURE": str(written["ai"]["temperature"]),
        "LOG_LEVEL": written["logging"]["level"],
        "LOG_FORMAT": written["logging"]["format"],
        "ARGOCD_ENABLED": "false",
        "ARGOCD_URL": written["argocd"]["url"],
        "GITHUB_WRITES_PER_PASS": "60",
        "GITHUB_WRITES_PER_HOUR": "400",
    }


def test_earlier_controller_values(earlier: Rendered, written: Any) -> None:
    """image, replicaCount, resources, rbac, config, security contexts and probes keep their
    meaning for the controller's pod."""
    deployment = earlier.deployment
    pod = deployment["spec"]["template"]["spec"]
    container = earlier.container
    image = written["image"]
    assert container["image"] == f"{image['repository']}:{image['tag']}"
    assert container["imagePullPolicy"] == image["pullPolicy"]
    assert deployment["spec"]["replicas"] == written["replicaCount"]
    assert container["resources"] == written["resources"]
    assert pod["serviceAccountName"] == written["rbac"]["serviceAccountName"]
    assert earlier.named("ServiceAccount", written["rbac"]["serviceAccountName"])
    assert container["envFrom"] == [{"configMapRef": {"name": written["config"]["configMapName"]}}]
    for given, rendered in (
        (written["podSecurityContext"], pod["securityContext"]),
        (written["securityContext"], container["securityContext"]),
    ):
        assert {key: rendered[key] for key in given} == given  # the chart's defaults add to them
    health = written["healthcheck"]
    assert container["livenessProbe"]["httpGet"] == {
        "path": health["livenessPath"],
        "port": "health",
    }
    assert container["readinessProbe"]["httpGet"] == {
        "path": health["readinessPath"],
        "port": "health",
    }
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"health": health["port"], "metrics": written["metrics"]["port"]}
    service = earlier.one("Service")
    assert service["spec"]["ports"][0]["port"] == written["metrics"]["port"]


def test_earlier_reconciliation_defaults(earlier: Rendered, written: Any) -> None:
    """reconciliation.* become the controller's rule defaults and the steps' retries."""
    config = earlier.controller_config()
    reconciliation = written["reconciliation"]
    assert config["ruleDefaults"] == {
        "reconciliationInterval": reconciliation["defaultIntervalSeconds"],
        "maxPullRequests": reconciliation["maxPRsPerCycle"],
    }
    assert config["compile"]["decideRetryLimit"] == reconciliation["retryAttempts"]
    assert config["compile"]["retryBackoff"] == f"{reconciliation['retryBackoffSeconds']}s"


@pytest.mark.parametrize("key", ["stagingAutomerge", "productionApproval", "dependabotAutomerge"])
def test_earlier_rules_install_as_written(earlier: Rendered, written: Any, key: str) -> None:
    """Each of the earlier design's rules installs with its own fields unchanged; the chart's
    defaults add at most allowedActions, and only actions its own instruction names."""
    given = written["rules"][key]
    rule = earlier.one("PRReconciliationRule", given["name"], NAMESPACE)
    spec = rule["spec"]
    expected = {k: v for k, v in given.items() if k not in {"enabled", "name"}}
    assert {k: spec[k] for k in expected} == expected
    assert set(spec) - set(expected) <= {"allowedActions"}
    for action in spec.get("allowedActions", []):
        assert action.upper() in given["instruction"]


# --- NOTES.txt ---------------------------------------------------------------------------


def notes(helm: Helm, tmp_path: Path, values: list[str]) -> str:
    """NOTES.txt as `helm install` prints it (rendered through a copy of the chart, since
    `helm template` leaves NOTES.txt out)."""
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n"
        'data:\n  notes: {{ include "ai-operator.notes" . | toJson }}\n'
    )
    assert (CHART / "templates" / "NOTES.txt").read_text().strip() == (
        '{{ include "ai-operator.notes" . }}'
    )
    rendered = helm.template(values=values, chart=chart)
    return str(rendered.one("ConfigMap", "notes")["data"]["notes"])


def test_notes_say_what_to_do_next(helm: Helm, tmp_path: Path) -> None:
    """Create the Secret, have Argo, apply a rule, list rules, filter the Argo UI by rule."""
    text = notes(helm, tmp_path, [])
    assert "kubectl -n ai-operator-system create secret generic ai-operator-secrets" in text
    assert "--from-literal=github-token=" in text
    assert "--from-literal=ai-token=" in text
    assert "Argo Workflows v4" in text
    assert "kubectl -n ai-operator-system get prrules" in text
    assert "aioperator.io/rule=<rule name>" in text


def test_notes_skip_the_secret_when_the_chart_keeps_it(helm: Helm, tmp_path: Path) -> None:
    """With secret.create there is no Secret to create; cronjob needs no Argo."""
    text = notes(
        helm,
        tmp_path,
        ["secret.create=true", "github.token=x", "ai.token=y", "executor=cronjob"],
    )
    assert "create secret" not in text
    assert "Argo Workflows" not in text
    assert "get cronjobs,jobs -l aioperator.io/rule=<rule name>" in text


def test_notes_name_existing_secrets(helm: Helm, tmp_path: Path) -> None:
    """Tokens read from one's own Secrets are named with their keys."""
    text = notes(helm, tmp_path, ["github.tokenSecretName=gh", "github.tokenSecretKey=token"])
    assert "--from-literal=github-token" not in text
    assert "--from-literal=ai-token=" in text
    assert "read from the Secret gh, key token" in text


# --- write pacing and the global pause ------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param(
            [], {"GITHUB_WRITES_PER_PASS": "60", "GITHUB_WRITES_PER_HOUR": "400"}, id="defaults"
        ),
        pytest.param(
            ["writePacing.perPass=30", "writePacing.perHour=200", "paused=true"],
            {
                "GITHUB_WRITES_PER_PASS": "30",
                "GITHUB_WRITES_PER_HOUR": "200",
                "AI_OPERATOR_PAUSED": "true",
            },
            id="paced-and-paused",
        ),
    ],
)
def test_write_pacing_and_the_pause_reach_every_pod(
    helm: Helm, values: list[str], expected: dict[str, str]
) -> None:
    """writePacing.* and paused become every pipeline pod's (and the controller's) settings."""
    settings = helm.template(values=values).settings()
    assert {k: v for k, v in settings.items() if k in expected or k == "AI_OPERATOR_PAUSED"} == (
        expected
    )


def test_a_budget_github_would_refuse_is_rejected(helm: Helm) -> None:
    """values.schema.json: at least one pull request's writes a pass."""
    assert "perPass" in helm.template_error(values=["writePacing.perPass=1"])
