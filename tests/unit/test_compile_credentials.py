"""Which pod gets which credential: GitHub's token or a GitHub App's key, Argo CD's token only in
the step that reads Argo CD. Always through a secretKeyRef, never a value."""

from __future__ import annotations

from typing import Any

import pytest

from ai_operator.pipelines.compile import CompileOptions, compile_rule
from ai_operator.pipelines.controller.config import compile_options
from tests.factories import inlined, make_rule

ARGO_RULE = make_rule(argocdEnabled=True, argocdAppNamePattern="{{ repository }}-staging")


def secret_refs(rule: Any, target: str, options: CompileOptions) -> dict[str, dict[str, Any]]:
    """Per step (container name), the variables read from Secrets and their references."""
    manifest = compile_rule(rule, target, options)
    document = inlined(manifest) if target == "argo" else manifest.document
    if target == "argo":
        containers = [
            (t["name"], t["container"])
            for t in document["spec"]["workflowSpec"]["templates"]
            if "container" in t
        ]
    else:
        pod = document["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        containers = [(c["name"], c) for c in pod["containers"]]
    return {
        name: {
            v["name"]: v["valueFrom"]["secretKeyRef"]
            for v in container.get("env", [])
            if "secretKeyRef" in v.get("valueFrom", {})
        }
        for name, container in containers
    }


def test_only_fetch_reads_argo_cd_and_its_token_is_optional() -> None:
    """Decide and act use the status fetch read; Argo CD may be reached without a token."""
    refs = secret_refs(ARGO_RULE, "argo", CompileOptions())
    assert refs["fetch"]["ARGOCD_TOKEN"] == {
        "name": "ai-operator-secrets",
        "key": "argocd-token",
        "optional": True,
    }
    assert [step for step, env in refs.items() if "ARGOCD_TOKEN" in env] == ["fetch"]


@pytest.mark.parametrize("target", ["argo", "cronjob"])
def test_a_rule_without_argo_cd_gets_no_argo_cd_token(target: str) -> None:
    """The token reaches no pod of a rule that does not ask Argo CD."""
    refs = secret_refs(make_rule(), target, CompileOptions())
    assert all("ARGOCD_TOKEN" not in env for env in refs.values())


@pytest.mark.parametrize("target", ["argo", "cronjob"])
def test_a_github_app_installation_gives_pods_the_apps_key_instead_of_a_token(
    target: str,
) -> None:
    """compile.githubApp: GITHUB_APP_PRIVATE_KEY from the Secret wherever GITHUB_TOKEN was."""
    options = compile_options({"githubApp": True})
    plain = secret_refs(make_rule(), target, CompileOptions())
    app = secret_refs(make_rule(), target, options)
    for step, env in plain.items():
        expected = {("GITHUB_APP_PRIVATE_KEY" if name == "GITHUB_TOKEN" else name) for name in env}
        assert set(app[step]) == expected
    assert any(
        env.get("GITHUB_APP_PRIVATE_KEY")
        == {"name": "ai-operator-secrets", "key": "github-app-private-key"}
        for env in app.values()
    )
