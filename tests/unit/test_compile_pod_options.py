"""The cluster's pod choices reach every compiled pod, in both targets, and stay valid."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from ai_operator.pipelines.argo_checks import check_cron_workflow
from ai_operator.pipelines.compile import compile_rule
from ai_operator.pipelines.options import CompileError, CompileOptions, SecretKeyRef
from tests.argo_schema import schema_errors
from tests.factories import inlined, make_rule

TOLERATION = {"key": "batch", "operator": "Exists", "effect": "NoSchedule"}
AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["batch"]}]}
            ]
        }
    }
}
CHOSEN = CompileOptions(
    image_pull_secrets=("regcred", "mirror.example.com"),
    secret_keys={
        "GITHUB_TOKEN": SecretKeyRef("github-token", "token"),
        "AI_TOKEN": SecretKeyRef("ai-token", "token"),
    },
    node_selector={"pool": "batch"},
    tolerations=(TOLERATION,),
    affinity=AFFINITY,
    resources={"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
    pod_gc_delete_delay="30m",
)


def argo_pod_settings(options: CompileOptions) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The workflow spec and its containers."""
    spec = inlined(compile_rule(make_rule(), "argo", options))["spec"]["workflowSpec"]
    return spec, [t["container"] for t in spec["templates"] if "container" in t]


def cron_job_pod(options: CompileOptions) -> dict[str, Any]:
    document = compile_rule(make_rule(), "cronjob", options).document
    pod: dict[str, Any] = document["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return pod


def token_refs(containers: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {
        var["name"]: var["valueFrom"]["secretKeyRef"]
        for container in containers
        for var in container["env"]
        if "secretKeyRef" in var.get("valueFrom", {})
    }


def test_argo_pods_get_the_chosen_placement_secrets_and_resources() -> None:
    """Pull secrets, node selector, tolerations and affinity at the workflow level."""
    spec, containers = argo_pod_settings(CHOSEN)
    assert spec["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror.example.com"}]
    assert spec["nodeSelector"] == {"pool": "batch"}
    assert spec["tolerations"] == [TOLERATION]
    assert spec["affinity"] == AFFINITY
    assert spec["podGC"] == {"strategy": "OnPodSuccess", "deleteDelayDuration": "30m"}
    assert token_refs(containers) == {
        "GITHUB_TOKEN": {"name": "github-token", "key": "token"},
        "AI_TOKEN": {"name": "ai-token", "key": "token"},
    }
    for container in containers:
        assert container["resources"] == CHOSEN.resources


def test_cron_job_pods_get_the_same_choices() -> None:
    """The CronJob's pod spec carries the same placement, Secrets and resources."""
    pod = cron_job_pod(CHOSEN)
    assert pod["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror.example.com"}]
    assert (pod["nodeSelector"], pod["tolerations"], pod["affinity"]) == (
        {"pool": "batch"},
        [TOLERATION],
        AFFINITY,
    )
    assert token_refs(pod["containers"]) == {
        "GITHUB_TOKEN": {"name": "github-token", "key": "token"},
        "AI_TOKEN": {"name": "ai-token", "key": "token"},
    }
    assert pod["containers"][0]["resources"] == CHOSEN.resources


@pytest.mark.parametrize(
    "options",
    [pytest.param(CompileOptions(), id="defaults"), pytest.param(CHOSEN, id="every-choice")],
)
def test_the_results_pass_argos_schema_and_kubernetes_strict_validation(
    options: CompileOptions,
) -> None:
    """Argo v4.1.2's strict CronWorkflow schema, Argo's own checks, Kubernetes' CronJob schema."""
    document = compile_rule(make_rule(), "argo", options).document
    assert schema_errors(document) == []
    assert check_cron_workflow(document) == []
    kubernetes_validate.validate(
        compile_rule(make_rule(), "cronjob", options).document, "1.33.0", strict=True
    )


def test_defaults_add_nothing_and_read_tokens_from_the_one_secret() -> None:
    """No pull secret or placement unless chosen; both tokens from ai-operator-secrets."""
    spec, containers = argo_pod_settings(CompileOptions())
    assert not {"imagePullSecrets", "nodeSelector", "tolerations", "affinity"} & set(spec)
    assert token_refs(containers) == {
        "GITHUB_TOKEN": {"name": "ai-operator-secrets", "key": "github-token"},
        "AI_TOKEN": {"name": "ai-operator-secrets", "key": "ai-token"},
    }


def test_one_token_moved_keeps_the_other_in_the_default_secret() -> None:
    """secret_keys names only the token that lives elsewhere."""
    options = CompileOptions(secret_keys={"AI_TOKEN": SecretKeyRef("llm", "key")})
    assert token_refs(cron_job_pod(options)["containers"]) == {
        "GITHUB_TOKEN": {"name": "ai-operator-secrets", "key": "github-token"},
        "AI_TOKEN": {"name": "llm", "key": "key"},
    }


def test_no_delay_deletes_succeeded_pods_at_once() -> None:
    """pod_gc_delete_delay=None is Argo's plain OnPodSuccess."""
    spec, _ = argo_pod_settings(CompileOptions(pod_gc_delete_delay=None))
    assert spec["podGC"] == {"strategy": "OnPodSuccess"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"image_pull_secrets": ("Reg Cred",)}, "image_pull_secrets", id="pull"),
        pytest.param(
            {"secret_keys": {"GH": SecretKeyRef("s", "k")}}, "secret_keys names 'GH'", id="token"
        ),
        pytest.param(
            {"secret_keys": {"AI_TOKEN": SecretKeyRef("s", "a key")}},
            "AI_TOKEN must name a Secret and a key",
            id="key",
        ),
        pytest.param({"pod_gc_delete_delay": "10 min"}, "pod_gc_delete_delay", id="delay"),
        pytest.param({"memo_max_age": "1d"}, "memo_max_age", id="memo-age"),
        pytest.param({"resources": {"limit": {}}}, "requests and limits only", id="resources"),
    ],
)
def test_pod_options_that_cannot_work_are_refused(options: dict[str, Any], message: str) -> None:
    """Each bad choice fails at once, naming the option."""
    with pytest.raises(CompileError, match=message):
        CompileOptions(**options)
