"""Permissions: the controller's and the pipelines' accounts get what they need and no more."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chart.helm import (
    NAMESPACE,
    ROOT,
    VALUE_FILES,
    Helm,
    Rendered,
    allows,
    controller_rules,
    permissions,
)
from tests.controller.rbac_expectations import (
    CONTROLLER_IMPLICIT_PERMISSIONS,
    CONTROLLER_REQUESTS,
)

Granted = tuple[str, str, str]  # (API group, resource[/subresource], verb), as RBAC spells it

# What the controller's requests need (its tests record them), plus what the API server checks
# without a request showing it: the one source of the controller's permissions.
CONTROLLER_PERMISSIONS: frozenset[Granted] = frozenset(
    (group, f"{resource}/{subresource}" if subresource else resource, verb)
    for verb, group, resource, subresource in CONTROLLER_REQUESTS | CONTROLLER_IMPLICIT_PERMISSIONS
)

WATCH_MODES = [
    pytest.param([], id="release-namespace"),
    pytest.param(["watchNamespaces={team-a,team-b}"], id="listed"),
    pytest.param(["watchNamespaces={*}"], id="all"),
    pytest.param(["executor=cronjob"], id="cronjob"),
]
VALUE_SETS = [pytest.param(None, id="defaults")] + [
    pytest.param(path, id=path.stem) for path in VALUE_FILES
]


def granted(rendered: Rendered) -> set[Granted]:
    return set(permissions(controller_rules(rendered)))


@pytest.mark.parametrize("values", WATCH_MODES)
def test_controller_permissions_are_exactly_its_requests(helm: Helm, values: list[str]) -> None:
    """The controller may do exactly what it requests (tests/controller/rbac_expectations.py),
    in every watch mode and with either executor: no wildcard, no Secrets, no ConfigMaps, no
    pods, no leases."""
    rules = controller_rules(helm.template(values=values))
    assert set(permissions(rules)) == CONTROLLER_PERMISSIONS
    assert not any("*" in rule[field] for rule in rules for field in rule if field != "verbs")
    assert not allows(rules, "", "secrets", "get")


@pytest.mark.parametrize("value_file", VALUE_SETS)
def test_every_value_set_grants_exactly_the_controllers_requests(
    helm: Helm, value_file: Path | None
) -> None:
    """Nothing more and nothing missing, for every value set that creates the permissions."""
    rendered = helm.template(*((value_file,) if value_file else ()))
    if not rendered.of_kind("Role", "ClusterRole"):
        account = rendered.deployment["spec"]["template"]["spec"]["serviceAccountName"]
        assert rendered.named("ServiceAccount", account) == []  # rbac.create: false
        return
    have = granted(rendered)
    assert have - CONTROLLER_PERMISSIONS == set(), "granted but never requested"
    assert CONTROLLER_PERMISSIONS - have == set(), "requested but not granted"


def test_release_namespace_mode_uses_a_role(helm: Helm) -> None:
    """Serving the release namespace: a Role and a RoleBinding there, nothing cluster-wide."""
    rendered = helm.template()
    (binding,) = [
        b for b in rendered.of_kind("RoleBinding") if b["roleRef"]["name"].endswith("-controller")
    ]
    assert binding["metadata"]["namespace"] == NAMESPACE
    assert binding["roleRef"]["kind"] == "Role"
    cluster_wide = rendered.of_kind("ClusterRole", "ClusterRoleBinding")
    assert {doc["metadata"]["name"] for doc in cluster_wide} == {f"{NAMESPACE}-ai-operator-limits"}


def test_listed_namespaces_bind_a_cluster_role_in_each_only(helm: Helm) -> None:
    """Listed namespaces: one ClusterRole, bound by a RoleBinding in each listed namespace and
    nowhere else (no ClusterRoleBinding)."""
    rendered = helm.template(values=["watchNamespaces={team-a,team-b}"])
    (role,) = [
        r for r in rendered.of_kind("ClusterRole") if r["metadata"]["name"].endswith("-controller")
    ]
    bound = {
        b["metadata"]["namespace"]
        for b in rendered.of_kind("RoleBinding")
        if b["roleRef"]
        == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": role["metadata"]["name"],
        }
    }
    assert bound == {"team-a", "team-b"}
    assert [b["roleRef"]["name"] for b in rendered.of_kind("ClusterRoleBinding")] == [
        f"{NAMESPACE}-ai-operator-limits"
    ]


def test_all_namespaces_bind_a_cluster_role_cluster_wide(helm: Helm) -> None:
    """Every namespace: a ClusterRole and a ClusterRoleBinding to the controller's account."""
    rendered = helm.template(values=["watchAllNamespaces=true"])
    (binding,) = [
        b
        for b in rendered.of_kind("ClusterRoleBinding")
        if b["roleRef"]["name"].endswith("-controller")
    ]
    account = rendered.deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
    ]


def test_argo_pipeline_pods_may_only_report_task_results_and_read_the_memo(helm: Helm) -> None:
    """Argo's emissary executor needs workflowtaskresults create/patch; fetch reads the memo
    ConfigMaps by name (jobs/clients/argo_memo.py), so ``get`` on ConfigMaps: no list, no write;
    the exit handler reads its own Workflow's failed nodes (jobs/clients/argo_workflow.py); act
    takes the rule's Lease (jobs/clients/rule_lease.py): get, create, update on leases; every
    step reads its own Namespace's pause annotation (jobs/clients/pause.py): get on that one
    Namespace, by name, in a namespaced Role (no cluster-wide permission)."""
    rendered = helm.template()
    account = rendered.controller_config()["compile"]["serviceAccount"]
    role = rendered.one("Role", account, NAMESPACE)
    assert role["rules"] == [
        {
            "apiGroups": ["argoproj.io"],
            "resources": ["workflowtaskresults"],
            "verbs": ["create", "patch"],
        },
        {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "update"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "update"],
        },
        {
            "apiGroups": [""],
            "resources": ["namespaces"],
            "resourceNames": [NAMESPACE],
            "verbs": ["get"],
        },
    ]
    assert set(permissions(role["rules"])) == {
        ("", "namespaces", "get"),
        ("argoproj.io", "workflowtaskresults", "create"),
        ("argoproj.io", "workflowtaskresults", "patch"),
        ("argoproj.io", "workflows", "get"),
        ("", "configmaps", "get"),
        ("", "configmaps", "create"),
        ("", "configmaps", "update"),
        ("coordination.k8s.io", "leases", "get"),
        ("coordination.k8s.io", "leases", "create"),
        ("coordination.k8s.io", "leases", "update"),
    }
    assert not allows(role["rules"], "argoproj.io", "workflows", "list")
    assert not allows(role["rules"], "", "configmaps", "list")
    assert not allows(role["rules"], "", "secrets", "get")
    binding = rendered.one("RoleBinding", account, NAMESPACE)
    assert binding["subjects"][0]["name"] == account
    assert rendered.one("ServiceAccount", account, NAMESPACE)["automountServiceAccountToken"]


def test_cronjob_pipeline_pods_get_no_api_access(helm: Helm) -> None:
    """CronJob pods talk to no Kubernetes API: no Role, and no token mounted."""
    rendered = helm.template(values=["executor=cronjob"])
    account = rendered.controller_config()["compile"]["serviceAccount"]
    assert (
        rendered.one("ServiceAccount", account, NAMESPACE)["automountServiceAccountToken"] is False
    )
    assert rendered.named("Role", account) == []
    assert rendered.named("RoleBinding", account) == []


def test_listed_namespaces_each_get_the_pipeline_objects(helm: Helm) -> None:
    """Compiled objects live in their rule's namespace, so each served namespace gets the
    pipelines' ServiceAccount, Role and ConfigMaps; the chart's tokens only where the
    administrator asks (limits.namespaces.<ns>.copyTokens)."""
    rendered = helm.template(
        values=[
            "watchNamespaces={team-a,team-b}",
            "secret.create=true",
            "github.token=ghp-x",
            "ai.token=sk-x",
            "limits.namespaces.team-a.copyTokens=true",
        ]
    )
    compile_ = rendered.controller_config()["compile"]
    for namespace in ("team-a", "team-b"):
        assert compile_["serviceAccount"] in rendered.names("ServiceAccount", namespace)
        assert compile_["serviceAccount"] in rendered.names("Role", namespace)
        assert {compile_["configMap"], compile_["tokenSemaphore"].split("/")[0]} <= rendered.names(
            "ConfigMap", namespace
        )
    assert compile_["secretName"] in rendered.names("Secret", "team-a")
    assert rendered.names("Secret", "team-b") == set()


def test_no_token_is_copied_into_a_namespace_unless_asked(helm: Helm) -> None:
    """With listed namespaces and secret.create, the tokens stay in the release namespace."""
    rendered = helm.template(
        values=[
            "watchNamespaces={team-a,team-b}",
            "secret.create=true",
            "github.token=ghp-x",
            "ai.token=sk-x",
        ]
    )
    assert {secret["metadata"]["namespace"] for secret in rendered.of_kind("Secret")} == {NAMESPACE}


def test_leader_election_may_use_only_its_lease(helm: Helm) -> None:
    """The Lease: create (which cannot name it), and get/update of the one named in the
    controller's configuration, in the release namespace."""
    rendered = helm.template(values=["replicaCount=2"])
    election = rendered.controller_config()["leaderElection"]
    assert election["enabled"] is True
    assert election["namespace"] == NAMESPACE
    role = rendered.one("Role", f"{election['leaseName']}-lease", NAMESPACE)
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [election["leaseName"]],
            "verbs": ["get", "update"],
        },
    ]
    deployment = rendered.deployment
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate"}


def test_rbac_create_false_creates_no_account_and_no_permission(helm: Helm) -> None:
    """rbac.create=false: the named accounts are used as they are."""
    rendered = helm.template(
        values=[
            "rbac.create=false",
            "rbac.serviceAccountName=ops-controller",
            "workflow.serviceAccountName=ops-workflow",
        ]
    )
    kinds = {doc["kind"] for doc in rendered.docs}
    assert not kinds & {
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
    }
    assert rendered.deployment["spec"]["template"]["spec"]["serviceAccountName"] == "ops-controller"
    assert rendered.controller_config()["compile"]["serviceAccount"] == "ops-workflow"


def documented_controller_permissions() -> set[tuple[str, str, str]]:
    """The controller's rows of docs/cluster.md's permission table."""
    found: set[tuple[str, str, str]] = set()
    for line in (ROOT / "docs" / "cluster.md").read_text().splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] == "controller":
            group = "" if cells[1] == "core" else cells[1]
            found |= {(group, cells[2], verb.strip()) for verb in cells[3].split(",")}
    return found


def test_docs_list_the_controllers_permissions(helm: Helm) -> None:
    """docs/cluster.md's table says exactly what the chart grants."""
    assert documented_controller_permissions() == granted(helm.template())


def test_docs_list_the_argo_pipeline_pods_permissions(helm: Helm) -> None:
    """docs/cluster.md's rows for the argo pipeline pods say exactly what their Role grants."""
    found: set[Granted] = set()
    for line in (ROOT / "docs" / "cluster.md").read_text().splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] == "pipeline pods (`argo`)":
            group = "" if cells[1] == "core" else cells[1]
            found |= {(group, cells[2], verb.strip()) for verb in cells[3].split(",")}
    rendered = helm.template()
    role = rendered.one(
        "Role", rendered.controller_config()["compile"]["serviceAccount"], NAMESPACE
    )
    assert found == set(permissions(role["rules"]))
