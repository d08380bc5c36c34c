"""The controller's configuration file: its format, and every name in it is an object the chart
creates (one source of truth for names)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ai_operator.pipelines.controller.server import HEALTHZ_PATH, READY_PATH
from ai_operator.pipelines.options import TOKEN_SECRET_KEYS, CompileOptions
from tests.chart.helm import CONFIG_PATH, NAMESPACE, ROOT, VALUE_FILES, Helm, Rendered

VALUE_SETS = [pytest.param(None, id="defaults")] + [
    pytest.param(path, id=path.stem) for path in VALUE_FILES
]
TOP_KEYS = {
    "installation",
    "paused",
    "checkSeconds",
    "leaderElection",
    "namespaces",
    "target",
    "resyncSeconds",
    "healthPort",
    "metricsPort",
    "pushgatewayUrl",
    "ruleDefaults",
    "compile",
}
COMPILE_KEYS = {
    "image",
    "imagePullPolicy",
    "imagePullSecrets",
    "serviceAccount",
    "secretName",
    "secretKeys",
    "configMap",
    "parallelism",
    "tokenSemaphore",
    "memoMaxAge",
    "podGCDeleteDelay",
    "timezone",
    "decideRetryLimit",
    "retryBackoff",
    "resources",
    "nodeSelector",
    "tolerations",
    "affinity",
    "events",
    "eventSource",
    "eventBus",
    "sensorServiceAccount",
    "eventsNamespace",
}


def rendered_with(helm: Helm, value_file: Path | None) -> Rendered:
    return helm.template(*((value_file,) if value_file else ()))


@pytest.mark.parametrize("value_file", VALUE_SETS)
def test_format(helm: Helm, value_file: Path | None) -> None:
    """The file has exactly the documented keys, with the documented types."""
    config = rendered_with(helm, value_file).controller_config()
    assert set(config) == TOP_KEYS
    assert set(config["compile"]) == COMPILE_KEYS
    assert config["target"] in {"argo", "cronjob"}
    assert all(isinstance(namespace, str) for namespace in config["namespaces"])
    assert isinstance(config["resyncSeconds"], int)
    assert isinstance(config["healthPort"], int)
    assert config["metricsPort"] is None or isinstance(config["metricsPort"], int)
    assert isinstance(config["pushgatewayUrl"], str)
    assert set(config["ruleDefaults"]) == {"reconciliationInterval", "maxPullRequests"}
    compile_ = config["compile"]
    # Argo CD's token and a GitHub App's key are named only when their values ask for them.
    assert {"GITHUB_TOKEN", "AI_TOKEN"} <= set(compile_["secretKeys"]) <= set(TOKEN_SECRET_KEYS)
    for ref in compile_["secretKeys"].values():
        assert set(ref) == {"name", "key"}
    assert all(isinstance(name, str) for name in compile_["imagePullSecrets"])
    assert isinstance(compile_["parallelism"], int)
    assert compile_["timezone"] is None or isinstance(compile_["timezone"], str)


@pytest.mark.parametrize("value_file", VALUE_SETS)
def test_controller_reads_the_file_the_chart_writes(helm: Helm, value_file: Path | None) -> None:
    """The Deployment mounts the ConfigMap's controller.yaml where its command looks for it."""
    rendered = rendered_with(helm, value_file)
    container = rendered.container
    assert container["command"] + container["args"] == [
        "ai-operator",
        "controller",
        "--config",
        CONFIG_PATH,
    ]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "config"]
    assert f"{mount['mountPath']}/controller.yaml" == CONFIG_PATH
    assert "controller.yaml" in rendered.controller_config_map["data"]


def container_port(rendered: Rendered, port: int | str) -> int:
    """The number of a container port given by name or number."""
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in rendered.container["ports"] if p["name"] == port]
    return int(number)


def check_probes_and_ports(rendered: Rendered) -> None:
    """The probes ask for /healthz and /ready on healthPort; each port is declared once; the
    metrics Service reaches /metrics on metricsPort (which may be healthPort, where the
    controller always serves it)."""
    config = rendered.controller_config()
    container = rendered.container
    for probe, path in (("livenessProbe", HEALTHZ_PATH), ("readinessProbe", READY_PATH)):
        if probe in container:
            get = container[probe]["httpGet"]
            assert get["path"] == path
            assert container_port(rendered, get["port"]) == config["healthPort"]
    declared = sorted(port["containerPort"] for port in container["ports"])
    assert declared == sorted({config["healthPort"], config["metricsPort"] or config["healthPort"]})
    services = rendered.of_kind("Service")
    assert bool(services) == (config["metricsPort"] is not None)
    for service in services:
        (port,) = service["spec"]["ports"]
        assert container_port(rendered, port["targetPort"]) == config["metricsPort"]


@pytest.mark.parametrize("value_file", VALUE_SETS)
def test_probes_and_ports_are_what_the_controller_serves(
    helm: Helm, value_file: Path | None
) -> None:
    """Probes, ports and the metrics Service match the controller's endpoints
    (ai_operator.pipelines.controller.server) and its configured ports, for every value set."""
    check_probes_and_ports(rendered_with(helm, value_file))


@pytest.mark.parametrize(
    ("values", "probes"),
    [
        pytest.param(["metrics.port=8080"], True, id="metrics-on-the-health-port"),
        pytest.param(["healthcheck.enabled=false"], False, id="no-probes"),
        pytest.param(["metrics.enabled=false"], True, id="no-metrics"),
    ],
)
def test_probes_and_ports_with_other_values(helm: Helm, values: list[str], probes: bool) -> None:
    """One port for health and metrics is declared once; probes off leave the ports alone."""
    rendered = helm.template(values=values)
    assert ("livenessProbe" in rendered.container) == probes
    check_probes_and_ports(rendered)


@pytest.mark.parametrize("value_file", VALUE_SETS)
def test_pipeline_names_are_objects_the_chart_creates(helm: Helm, value_file: Path | None) -> None:
    """ServiceAccount, Secret, ConfigMaps and semaphore named in compile exist in every
    namespace whose rules the controller serves."""
    rendered = rendered_with(helm, value_file)
    compile_ = rendered.controller_config()["compile"]
    rbac = rendered.one("Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
    for namespace in rendered.pipeline_namespaces():
        if rendered.named("ServiceAccount", rbac):
            assert compile_["serviceAccount"] in rendered.names("ServiceAccount", namespace)
        if compile_["configMap"] is not None:
            assert compile_["configMap"] in rendered.names("ConfigMap", namespace)
        if compile_["tokenSemaphore"] is not None:
            name, key = compile_["tokenSemaphore"].split("/")
            semaphore = rendered.one("ConfigMap", name, namespace)
            assert int(semaphore["data"][key]) >= 1
        for ref in compile_["secretKeys"].values():
            copied = rendered.names("Secret", namespace)
            if ref["name"] == compile_["secretName"] and copied:
                assert ref["key"] in rendered.one("Secret", ref["name"], namespace)["data"]


def test_created_secret_holds_the_pipeline_keys(helm: Helm) -> None:
    """The chart's Secret has the keys compiled pods read (ai_operator.pipelines.options) for
    the tokens it was given; a GitHub App's key is never a value of the chart."""
    rendered = helm.template(
        values=["secret.create=true", "github.token=ghp-x", "ai.token=sk-x", "argocd.token=a-x"]
    )
    config = rendered.controller_config()["compile"]
    secret = rendered.one("Secret", config["secretName"], NAMESPACE)
    assert set(secret["data"]) == set(TOKEN_SECRET_KEYS.values()) - {"github-app-private-key"}
    assert config["secretKeys"] == {
        env: {"name": config["secretName"], "key": TOKEN_SECRET_KEYS[env]}
        for env in ("GITHUB_TOKEN", "AI_TOKEN")
    }
    defaults = CompileOptions(secret_name=config["secretName"])
    assert defaults.token_ref("ARGOCD_TOKEN").key == "argocd-token"


def test_a_github_app_reads_its_key_through_a_secret_key_ref(helm: Helm) -> None:
    """github.app.*: the App's id and installation in the settings ConfigMap, its key named by a
    secretKeyRef of the pods; no token is required and no key is written anywhere."""
    rendered = helm.template(
        values=[
            "github.app.id=4242",
            "github.app.installationId=12345678",
            "github.app.privateKeySecretName=github-app",
            "github.graphqlEndpoint=https://ghe.acme.io/api/graphql",
        ]
    )
    config = rendered.controller_config()["compile"]
    assert config["githubApp"] is True
    assert config["secretKeys"]["GITHUB_APP_PRIVATE_KEY"] == {
        "name": "github-app",
        "key": "github-app-private-key",
    }
    settings = rendered.one("ConfigMap", config["configMap"], NAMESPACE)["data"]
    assert (settings["GITHUB_APP_ID"], settings["GITHUB_APP_INSTALLATION_ID"]) == (
        "4242",
        "12345678",
    )
    assert settings["GITHUB_GRAPHQL_URL"] == "https://ghe.acme.io/api/graphql"
    assert rendered.of_kind("Secret") == []


def test_argo_cd_settings_reach_every_pod_and_its_token_a_secret(helm: Helm) -> None:
    """argocd.enabled and argocd.url are plain settings; the token comes by secretKeyRef."""
    rendered = helm.template(
        values=[
            "argocd.enabled=true",
            "argocd.url=https://argocd.example",
            "argocd.tokenSecretName=argocd-reader",
        ]
    )
    config = rendered.controller_config()["compile"]
    settings = rendered.one("ConfigMap", config["configMap"], NAMESPACE)["data"]
    assert (settings["ARGOCD_ENABLED"], settings["ARGOCD_URL"]) == (
        "true",
        "https://argocd.example",
    )
    assert config["secretKeys"]["ARGOCD_TOKEN"] == {"name": "argocd-reader", "key": "argocd-token"}


def test_existing_secrets_are_named_with_their_keys(helm: Helm) -> None:
    """Tokens in two Secrets of one's own: each reference names its Secret and key, and the
    chart creates no Secret."""
    existing = next(path for path in VALUE_FILES if path.stem == "existing-secret")
    rendered = helm.template(existing)
    keys = rendered.controller_config()["compile"]["secretKeys"]
    assert keys == {
        "GITHUB_TOKEN": {"name": "github-token", "key": "token"},
        "AI_TOKEN": {"name": "ai-token", "key": "token"},
    }
    assert rendered.of_kind("Secret") == []


def test_release_named_ai_operator_gives_the_compilers_default_names(helm: Helm) -> None:
    """`ai-operator compile` without options and the chart installed as `ai-operator` agree."""
    config = helm.template().controller_config()
    defaults = CompileOptions()
    compile_ = config["compile"]
    assert compile_["image"] == defaults.image
    assert compile_["serviceAccount"] == defaults.service_account
    assert compile_["secretName"] == defaults.secret_name
    assert compile_["configMap"] == defaults.config_map
    assert compile_["tokenSemaphore"] == defaults.token_semaphore
    assert compile_["parallelism"] == defaults.parallelism
    assert compile_["memoMaxAge"] == defaults.memo_max_age
    assert compile_["decideRetryLimit"] == defaults.decide_retry_limit
    assert compile_["timezone"] == defaults.timezone
    assert compile_["resources"] == {
        "requests": {"cpu": defaults.cpu_request, "memory": defaults.memory_request},
        "limits": {"memory": defaults.memory_limit},
    }


def test_controller_pod_runs_as_the_image_user(helm: Helm) -> None:
    """The controller runs as the same non-root user as the compiled pods."""
    security = helm.template().deployment["spec"]["template"]["spec"]["securityContext"]
    assert security["runAsUser"] == CompileOptions().run_as_user
    assert security["runAsNonRoot"] is True


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param([], ["ai-operator-system"], id="release-namespace"),
        pytest.param(["watchNamespaces={team-a,team-b}"], ["team-a", "team-b"], id="listed"),
        pytest.param(["watchNamespaces={*}"], [], id="star-means-all"),
        pytest.param(["watchAllNamespaces=true"], [], id="flag-means-all"),
    ],
)
def test_namespaces(helm: Helm, values: list[str], expected: list[str]) -> None:
    """`namespaces` lists what is served; [] means every namespace."""
    assert helm.template(values=values).controller_config()["namespaces"] == expected


@pytest.mark.parametrize(
    ("values", "key", "expected"),
    [
        pytest.param(["executor=cronjob"], "target", "cronjob", id="target"),
        pytest.param(["metrics.enabled=false"], "metricsPort", None, id="metrics-off"),
        pytest.param(
            ["pushgateway.url=http://pg:9091"], "pushgatewayUrl", "http://pg:9091", id="pg"
        ),
        pytest.param(["healthcheck.port=9000"], "healthPort", 9000, id="health-port"),
        pytest.param(["controller.resyncSeconds=60"], "resyncSeconds", 60, id="resync"),
    ],
)
def test_top_level_values(helm: Helm, values: list[str], key: str, expected: Any) -> None:
    """Each top-level key follows its value."""
    assert helm.template(values=values).controller_config()[key] == expected


@pytest.mark.parametrize(
    ("values", "key", "expected"),
    [
        pytest.param(["executor=cronjob"], "tokenSemaphore", None, id="no-semaphore-for-cronjob"),
        pytest.param(["config.useConfigMap=false"], "configMap", None, id="no-settings"),
        pytest.param(["workflow.timezone=UTC"], "timezone", "UTC", id="timezone"),
        pytest.param(["workflow.podGCDeleteDelay=30m"], "podGCDeleteDelay", "30m", id="pod-gc"),
        pytest.param(
            ["image.tag=1.2.3"], "image", "ghcr.io/ai-operator/ai-operator:1.2.3", id="tag"
        ),
        pytest.param(
            ["image.pullSecrets[0]=a", "image.pullSecrets[1].name=b"],
            "imagePullSecrets",
            ["a", "b"],
            id="pull-secrets",
        ),
        pytest.param(
            ["reconciliation.retryBackoffSeconds=15"], "retryBackoff", "15s", id="backoff"
        ),
    ],
)
def test_compile_values(helm: Helm, values: list[str], key: str, expected: Any) -> None:
    """Each compile option follows its value."""
    assert helm.template(values=values).controller_config()["compile"][key] == expected


def test_config_change_restarts_the_controller(helm: Helm) -> None:
    """The pod template carries a checksum of the configuration, so an upgrade that changes it
    rolls the controller."""

    def checksum(values: list[str]) -> str:
        pod = helm.template(values=values).deployment["spec"]["template"]
        return str(pod["metadata"]["annotations"]["checksum/controller-config"])

    assert checksum([]) != checksum(["workflow.parallelism=7"])


def test_docs_show_the_default_file(helm: Helm) -> None:
    """docs/cluster.md's example is what the chart writes with default values."""
    text = (ROOT / "docs" / "cluster.md").read_text()
    start = text.index("```yaml\nnamespaces:") + len("```yaml\n")
    example = yaml.safe_load(text[start : text.index("```", start)])
    assert example == helm.template().controller_config()
