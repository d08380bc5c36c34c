"""Specification of a rule compiled into a Kubernetes batch/v1 CronJob (ai_operator.pipelines.cronjob)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from ai_operator.jobs.rules.encoding import RULE_ENV, RULE_FILE_ENV, read_rule_file
from ai_operator.jobs.rules.files import load_rules
from ai_operator.jobs.rules.model import PRReconciliationRule, RuleMode
from ai_operator.pipelines.compile import compile_rule, to_yaml
from ai_operator.pipelines.options import CompileError, CompileOptions
from tests.argo_schema import ROOT
from tests.factories import make_rule

KUBERNETES = "1.33.0"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
COMPILED = ROOT / "examples" / "compiled"
OPTIONS = CompileOptions()
EXAMPLE_CASES = [
    pytest.param(loaded.rule, id=loaded.rule.metadata.name) for loaded in load_rules(EXAMPLES)
]
ALL_RULES = [
    *EXAMPLE_CASES,
    pytest.param(make_rule(), id="ordinary"),
    pytest.param(make_rule("reconcile-" + "x" * 80), id="long-name"),
    pytest.param(make_rule(reconciliationInterval=20), id="interval-20s"),
    pytest.param(make_rule(schedule="30 8 * * 1-5", timezone="Europe/Paris"), id="cron-with-timezone"),
    pytest.param(make_rule(suspend=True, dryRun=True), id="suspended-dry-run"),
    pytest.param(make_rule(repositories=[f"acme/service-{i}" for i in range(60)]), id="many-repositories"),
]  # fmt: skip


def compiled(rule: PRReconciliationRule, options: CompileOptions = OPTIONS) -> dict[str, Any]:
    return compile_rule(rule, "cronjob", options).document


def pod_spec(document: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = document["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


def container(document: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod_spec(document)["containers"]
    result: dict[str, Any] = only
    return result


@pytest.mark.parametrize("rule", ALL_RULES)
def test_compiles_to_a_cron_job_kubernetes_accepts(rule: PRReconciliationRule) -> None:
    """Every rule becomes a CronJob valid under Kubernetes 1.33's schema, unknown fields refused."""
    kubernetes_validate.validate(compiled(rule), KUBERNETES, strict=True)


def test_the_validation_is_strict() -> None:
    """A misspelt field is refused (so the test above proves something)."""
    document = compiled(make_rule())
    container(document)["imagee"] = "busybox"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(document, KUBERNETES, strict=True)


@pytest.mark.parametrize("rule", ALL_RULES)
def test_the_pod_runs_the_whole_pass_from_the_rules_config_map(
    rule: PRReconciliationRule, tmp_path: Path
) -> None:
    """One container runs ``ai-operator run --rule-from-env`` on the rule its ConfigMap holds.

    The file, checked against the digest of the pod's annotation, reads back as the rule.
    ``--no-cache``: a CronJob's pod has nowhere to keep decisions between passes.
    """
    manifest = compile_rule(rule, "cronjob", OPTIONS)
    document, config_map = manifest.document, manifest.config_map
    assert config_map is not None
    kubernetes_validate.validate(config_map, KUBERNETES, strict=True)
    assert container(document)["command"] == [
        "ai-operator", "run", "--rule-from-env", "--output", "json", "--no-cache",
    ]  # fmt: skip
    env = {var["name"]: var for var in container(document)["env"]}
    assert RULE_ENV not in env
    assert env[RULE_FILE_ENV]["value"] == "/etc/ai-operator/rule/rule.yaml"
    assert env["LOG_FORMAT"]["value"] == "json"
    pod = document["spec"]["jobTemplate"]["spec"]["template"]
    digest = pod["metadata"]["annotations"]["aioperator.io/rule-sha256"]
    path = tmp_path / "rule.yaml"
    path.write_text(config_map["data"]["rule.yaml"])
    assert read_rule_file(str(path), digest) == rule.model_copy(update={"status": None})
    assert "pr.number" not in json.dumps(document)


def test_tokens_come_only_from_the_secret() -> None:
    """Both tokens are secretKeyRefs into the configured Secret, never values."""
    env = {
        v["name"]: v
        for v in container(compiled(make_rule(), CompileOptions(secret_name="s")))["env"]
    }
    assert env["GITHUB_TOKEN"] == {
        "name": "GITHUB_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "s", "key": "github-token"}},
    }
    assert env["AI_TOKEN"] == {
        "name": "AI_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "s", "key": "ai-token"}},
    }


def test_schedule_settings_come_from_the_rule() -> None:
    """Cron line, time zone and suspend from the rule; one run at a time; bounded history."""
    spec = compiled(make_rule(schedule="0 9 * * *", timezone="Asia/Tokyo", suspend=True))["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["suspend"]) == (
        "0 9 * * *",
        "Asia/Tokyo",
        True,
    )
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] == 60
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 3)
    every_minute = compile_rule(make_rule(reconciliationInterval=20), "cronjob", OPTIONS)
    assert every_minute.document["spec"]["schedule"] == "* * * * *"
    assert "timeZone" not in every_minute.document["spec"]
    assert "shorter than a minute" in every_minute.notes[0]


def test_the_job_retries_only_transient_failures_and_cleans_up() -> None:
    """Only exit code 75 is retried; a deadline and a TTL bound each Job."""
    job = compiled(make_rule())["spec"]["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 2
    assert job["podFailurePolicy"]["rules"] == [
        {
            "action": "FailJob",
            "onExitCodes": {"containerName": "run", "operator": "NotIn", "values": [75]},
        }
    ]
    assert job["activeDeadlineSeconds"] == 1800
    assert job["ttlSecondsAfterFinished"] == 86400


def test_the_pod_runs_hardened() -> None:
    """Never restarted in place, non-root, read-only root, no capabilities, /tmp emptyDir."""
    document = compiled(make_rule())
    spec = pod_spec(document)
    assert spec["restartPolicy"] == "Never"
    assert spec["serviceAccountName"] == "ai-operator-workflow"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["volumes"][0] == {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}
    assert container(document)["securityContext"]["readOnlyRootFilesystem"] is True
    assert container(document)["volumeMounts"][0] == {"name": "tmp", "mountPath": "/tmp"}
    assert container(document)["volumeMounts"][1]["readOnly"] is True


def test_labels_mark_the_cron_job_its_jobs_and_pods() -> None:
    """The rule label is on the CronJob, on each Job and on each pod."""
    document = compiled(make_rule("staging-automerge"))
    label = "aioperator.io/rule"
    assert document["metadata"]["labels"][label] == "staging-automerge"
    assert document["spec"]["jobTemplate"]["metadata"]["labels"][label] == "staging-automerge"
    template = document["spec"]["jobTemplate"]["spec"]["template"]
    assert template["metadata"]["labels"][label] == "staging-automerge"


def test_a_long_rule_name_fits_the_cron_job_limit() -> None:
    """CronJob names, like CronWorkflow names, have at most 52 characters."""
    assert len(compiled(make_rule("reconcile-" + "x" * 80))["metadata"]["name"]) <= 52


@pytest.mark.parametrize("rule", EXAMPLE_CASES)
def test_golden_cron_jobs(rule: PRReconciliationRule) -> None:
    """examples/compiled/<rule>.cronjob.yaml is what the example compiles to.

    Regenerate with ``AI_OPERATOR_UPDATE_GOLDEN=1 pytest tests/unit/test_compile_cronjob.py``.
    """
    path = COMPILED / f"{rule.metadata.name}.cronjob.yaml"
    text = to_yaml([compile_rule(rule, "cronjob", OPTIONS)])
    if os.environ.get("AI_OPERATOR_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path.name} is missing: run with AI_OPERATOR_UPDATE_GOLDEN=1"
    assert path.read_text() == text, f"{path.name} drifted: run with AI_OPERATOR_UPDATE_GOLDEN=1"


def test_a_shadow_rule_needs_the_argo_target() -> None:
    """A CronJob's run keeps no outcome store: a shadow rule is refused, on one line."""
    rule = make_rule()
    spec = rule.spec.model_copy(update={"mode": RuleMode.SHADOW})
    shadow = rule.model_copy(update={"spec": spec})
    with pytest.raises(CompileError, match=r"spec\.mode Shadow needs the argo target"):
        compile_rule(shadow, "cronjob", OPTIONS)
    assert compile_rule(shadow, "argo", OPTIONS).kind == "CronWorkflow"
