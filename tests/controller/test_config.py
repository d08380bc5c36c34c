"""The controller's configuration file: the chart's format, and one-line errors naming the field."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ai_operator.pipelines.controller.config import (
    ControllerConfigError,
    camel_name,
    load_config,
    parse_config,
)
from ai_operator.pipelines.options import CompileOptions, SecretKeyRef
from tests.chart.helm import VALUE_FILES, Helm, find_helm

ROOT = Path(__file__).resolve().parents[2]

# The file as the chart writes it (docs/cluster.md), with two Secrets of one's own.
CHART_FILE = """
namespaces: [team-a, team-b]
target: argo
resyncSeconds: 300
healthPort: 8080
metricsPort: 9090
pushgatewayUrl: ""
ruleDefaults: {reconciliationInterval: 30, maxPullRequests: 100}
compile:
  image: registry.example.com/ai-operator:1.2.3
  imagePullPolicy: IfNotPresent
  imagePullSecrets: [regcred]
  serviceAccount: ai-operator-workflow
  secretName: ai-operator-secrets
  secretKeys:
    GITHUB_TOKEN: {name: github-token, key: token}
    AI_TOKEN: {name: ai-token, key: token}
  configMap: ai-operator-config
  parallelism: 5
  tokenSemaphore: ai-operator-sync/github-token
  memoMaxAge: 24h
  podGCDeleteDelay: 10m
  timezone: null
  decideRetryLimit: 3
  retryBackoff: 5s
  resources: {requests: {cpu: 50m, memory: 128Mi}, limits: {memory: 512Mi}}
  nodeSelector: {pool: batch}
  tolerations: [{key: batch, operator: Exists, effect: NoSchedule}]
  affinity: {}
"""


def test_the_charts_file_becomes_the_compile_options() -> None:
    """Every key lands in its CompileOptions field (camelCase to snake_case)."""
    config = parse_config(yaml.safe_load(CHART_FILE))
    assert config.namespaces == ("team-a", "team-b")
    assert (config.target, config.resync_seconds, config.health_port) == ("argo", 300, 8080)
    assert (config.metrics_port, config.pushgateway_url) == (9090, "")
    assert config.rule_defaults.reconciliation_interval == 30
    options = config.compile
    assert options.image == "registry.example.com/ai-operator:1.2.3"
    assert options.image_pull_secrets == ("regcred",)
    assert options.token_ref("GITHUB_TOKEN") == SecretKeyRef("github-token", "token")
    assert options.token_ref("AI_TOKEN") == SecretKeyRef("ai-token", "token")
    assert (options.pod_gc_delete_delay, options.retry_backoff) == ("10m", "5s")
    assert options.resources == {
        "requests": {"cpu": "50m", "memory": "128Mi"},
        "limits": {"memory": "512Mi"},
    }
    assert options.node_selector == {"pool": "batch"}
    assert options.tolerations == ({"key": "batch", "operator": "Exists", "effect": "NoSchedule"},)


def test_an_empty_file_means_the_defaults() -> None:
    """Every key is optional: all namespaces, argo, the compiler's defaults."""
    config = parse_config(None)
    assert config.namespaces == ()
    assert config.compile == CompileOptions()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"bogus": 1}, "bogus: unknown field", id="unknown-key"),
        pytest.param(
            {"target": "tekton"}, "target: Input should be 'argo' or 'cronjob'", id="target"
        ),
        pytest.param(
            {"resyncSeconds": 1}, "resyncSeconds: Input should be greater than", id="resync"
        ),
        pytest.param(
            {"namespaces": ["Team_A"]}, "namespaces.0: String should match", id="namespace-name"
        ),
        pytest.param(
            {"compile": {"parallelism": 0}},
            "compile.parallelism: must be positive, not 0",
            id="parallelism",
        ),
        pytest.param(
            {"compile": {"parallelism": "many"}},
            "compile.parallelism: Input should be a valid integer",
            id="parallelism-type",
        ),
        pytest.param({"compile": {"imag": "x"}}, "compile.imag: unknown field", id="typo"),
        pytest.param(
            {"compile": {"namespace": "x"}},
            "compile.namespace: not allowed",
            id="namespace-is-the-rules",
        ),
        pytest.param(
            {"compile": {"secretKeys": {"GITHUB_TOKEN": {"name": "s"}}}},
            "compile.secretKeys.GITHUB_TOKEN.key: Field required",
            id="secret-key-missing",
        ),
        pytest.param(
            {"compile": {"secretKeys": {"SLACK_TOKEN": {"name": "s", "key": "k"}}}},
            "compile.secretKeys: names 'SLACK_TOKEN'",
            id="unknown-token",
        ),
        pytest.param(
            {"compile": {"podGCDeleteDelay": "ten minutes"}},
            "compile.podGCDeleteDelay: must be a duration",
            id="duration",
        ),
        pytest.param(
            {"compile": {"imagePullSecrets": ["Bad Name"]}},
            "compile.imagePullSecrets: must hold Secret names",
            id="pull-secret-name",
        ),
        pytest.param(
            {"compile": {"resources": {"request": {"cpu": "1"}}}},
            "compile.resources: may hold requests and limits only",
            id="resources",
        ),
        pytest.param(
            {"compile": {"limits": {}}},
            "compile.limits: not allowed: the PRReconciliationLimits objects",
            id="limits-are-the-administrators",
        ),
        pytest.param(
            {"leaderElection": {"renewSeconds": 20}},
            "leaderElection: retrySeconds < renewSeconds < leaseSeconds is needed",
            id="renew-after-expiry",
        ),
        pytest.param(
            {"checkSeconds": 0}, "checkSeconds: Input should be greater than 0", id="check"
        ),
        pytest.param(
            {"installation": {"repos": []}}, "installation.repos: unknown field", id="installation"
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_the_field(change: dict[str, Any], message: str) -> None:
    """The error says the file, the field path and what is wrong, on one line."""
    with pytest.raises(ControllerConfigError) as caught:
        parse_config(change, "controller.yaml")
    text = str(caught.value)
    assert text.startswith(f"controller.yaml: {message}"), text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("namespaces: [a\n", "not valid YAML at line", id="yaml"),
        pytest.param("- a\n- b\n", "expected a mapping of settings, found a list", id="list"),
    ],
)
def test_an_unreadable_file_is_one_line(tmp_path: Path, content: str, message: str) -> None:
    """Broken YAML, or not a mapping: one line naming the file."""
    path = tmp_path / "controller.yaml"
    path.write_text(content)
    with pytest.raises(ControllerConfigError, match=f"^controller.yaml: {message}"):
        load_config(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(None, "cannot read the file: No such file or directory", id="missing"),
        pytest.param("compile: {parallelism: 0}\n", "compile.parallelism: must be", id="bad"),
    ],
)
def test_the_command_fails_in_one_line_without_a_traceback(
    tmp_path: Path, content: str | None, message: str
) -> None:
    """`ai-operator controller --config FILE` exits 1 with one error line."""
    path = tmp_path / "controller.yaml"
    if content is not None:
        path.write_text(content)
    result = subprocess.run(
        [sys.executable, "-m", "ai_operator.pipelines", "controller", "--config", str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=60,
    )
    assert result.returncode == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    binary = find_helm()
    if binary is None:
        pytest.skip("helm is missing: run scripts/fetch-helm (it puts helm in .cache/bin/helm)")
    return Helm(binary, tmp_path_factory.mktemp("helm-home"))


@pytest.mark.parametrize(
    "value_file",
    [pytest.param(None, id="defaults")]
    + [pytest.param(path, id=path.stem) for path in VALUE_FILES],
)
def test_the_controller_reads_every_file_the_chart_renders(
    helm: Helm, value_file: Path | None
) -> None:
    """What `helm template` writes into controller.yaml, the controller accepts, and every key
    lands in its setting (nothing the chart writes is left unread)."""
    written = helm.template(*((value_file,) if value_file else ())).controller_config()
    config = parse_config(written)
    assert list(config.namespaces) == written["namespaces"]
    assert config.target == written["target"]
    assert config.resync_seconds == written["resyncSeconds"]
    assert config.health_port == written["healthPort"]
    assert config.metrics_port == written["metricsPort"]
    assert config.pushgateway_url == written["pushgatewayUrl"]
    defaults = written["ruleDefaults"]
    assert config.rule_defaults.reconciliation_interval == defaults["reconciliationInterval"]
    assert config.rule_defaults.max_pull_requests == defaults["maxPullRequests"]
    options = {camel_name(f.name): f.name for f in dataclasses.fields(CompileOptions)}
    for key, value in written["compile"].items():
        if key == "secretKeys":
            continue
        read = getattr(config.compile, options[key])
        assert (list(read) if isinstance(read, tuple) else read) == value, key
    for token, ref in written["compile"]["secretKeys"].items():
        assert config.compile.token_ref(token) == SecretKeyRef(ref["name"], ref["key"])
