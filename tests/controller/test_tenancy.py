"""The administrator's limits: a rule outside its namespace's PRReconciliationLimits runs nothing.

Issue case 2: with only ``create`` on rules in one namespace, a rule author cannot reach another
team's repositories, an action the administrator withheld, or a model endpoint of their own.
"""

from __future__ import annotations

from typing import Any

import pytest

from ai_operator.pipelines.controller.config import Installation
from ai_operator.pipelines.controller.kube import CRON_WORKFLOWS, LIMITS, RULES, WORKFLOW_TEMPLATES
from tests.controller.apiserver import ApiServer
from tests.controller.conftest import (
    NAMESPACE,
    add_rule,
    config,
    eventually,
    running,
    settled,
)

pytestmark = pytest.mark.asyncio

RULE = "staging-automerge"


def put_limits(api: ApiServer, name: str, **spec: Any) -> dict[str, Any]:
    """Create or replace a cluster-scoped PRReconciliationLimits, as an administrator would."""
    return api.put(LIMITS, {"metadata": {"name": name}, "spec": spec})


def condition(api: ApiServer, kind: str, name: str = RULE) -> dict[str, Any]:
    rule = api.stored(RULES, NAMESPACE, name) or {}
    found = [c for c in (rule.get("status") or {}).get("conditions") or [] if c["type"] == kind]
    return found[0] if found else {}


def invalid(api: ApiServer, name: str = RULE) -> bool:
    return condition(api, "Invalid", name).get("status") == "True"


def ready(api: ApiServer, name: str = RULE) -> bool:
    return condition(api, "Ready", name).get("status") == "True"


def warnings(api: ApiServer) -> list[str]:
    from ai_operator.pipelines.controller.kube import EVENTS

    return [e["message"] for e in api.stored_all(EVENTS, NAMESPACE) if e["type"] == "Warning"]


def secret_names(document: Any) -> set[str]:
    """Every Secret a manifest's pods read (``secretKeyRef`` names)."""
    if isinstance(document, dict):
        found = {str(document["secretKeyRef"]["name"])} if "secretKeyRef" in document else set()
        return found.union(*(secret_names(value) for value in document.values()))
    if isinstance(document, list):
        return set().union(*(secret_names(item) for item in document))
    return set()


# (id, the namespace's limits, the rule's spec, the field path and words of the refusal)
REFUSED = [
    (
        "another-teams-repository",
        {"namespaces": [NAMESPACE], "repositories": ["acme/*"]},
        {"repositories": ["globex/payments"]},
        "spec.repositories[0]: globex/payments is outside the repositories allowed",
    ),
    (
        "an-action-withheld",
        {"namespaces": [NAMESPACE], "allowedActions": ["escalate", "wait"]},
        {"allowedActions": ["merge", "wait"]},
        "spec.allowedActions[0]: 'merge' is not allowed in this namespace",
    ),
    (
        "an-endpoint-of-the-authors-own",
        {"namespaces": [NAMESPACE]},
        {"ai": {"endpoint": "https://collector.example.net/v1"}},
        "spec.ai.endpoint: 'https://collector.example.net/v1' is not an allowed model endpoint",
    ),
    (
        "plain-http-inside-the-cluster",
        {"namespaces": [NAMESPACE], "ai": {"endpoints": ["http://llm.team.svc:8080"]}},
        {"ai": {"endpoint": "http://llm.team.svc:8080"}},
        "spec.ai.endpoint: 'http://llm.team.svc:8080' is plain http",
    ),
]


@pytest.mark.parametrize(
    ("limits", "spec", "words"), [pytest.param(*case[1:], id=case[0]) for case in REFUSED]
)
async def test_a_rule_outside_its_limits_is_invalid_and_runs_nothing(
    api: ApiServer, limits: dict[str, Any], spec: dict[str, Any], words: str
) -> None:
    """Invalid (OutsideLimits) with the field path and the limit, a Warning event, no workflow."""
    put_limits(api, "team", **limits)
    add_rule(api, **spec)
    async with running(api) as controller:
        await settled(controller)
    refusal = condition(api, "Invalid")
    assert (refusal["status"], refusal["reason"]) == ("True", "OutsideLimits")
    assert words in refusal["message"]
    assert refusal["message"].endswith("(PRReconciliationLimits team)")
    assert any(words in message for message in warnings(api))
    assert api.stored(CRON_WORKFLOWS, NAMESPACE, RULE) is None


async def test_the_default_limits_govern_namespaces_no_other_object_names(
    api: ApiServer,
) -> None:
    """`default` applies where no object names the namespace; a naming object wins over it."""
    put_limits(api, "default", repositories=["acme/*"])
    add_rule(api, repositories=["globex/app"])
    async with running(api) as controller:
        await settled(controller)
        assert invalid(api)
        assert "(PRReconciliationLimits default)" in condition(api, "Invalid")["message"]
        put_limits(api, "ours", namespaces=[NAMESPACE], repositories=["globex/*"])
        await eventually(lambda: ready(api))


async def test_changed_limits_check_every_rule_again_at_once(api: ApiServer) -> None:
    """Narrowed: the rule becomes Invalid and its CronWorkflow goes; widened: it comes back."""
    put_limits(api, "team", namespaces=[NAMESPACE], repositories=["acme/*"])
    add_rule(api, repositories=["acme/web"])
    async with running(api) as controller:
        await settled(controller)
        assert ready(api)
        put_limits(api, "team", namespaces=[NAMESPACE], repositories=["acme/api"])
        await eventually(lambda: invalid(api))
        await eventually(lambda: api.stored(CRON_WORKFLOWS, NAMESPACE, RULE) is None)
        api.remove(LIMITS, "", "team")
        await eventually(lambda: ready(api))
        assert api.stored(CRON_WORKFLOWS, NAMESPACE, RULE) is not None


async def test_rules_without_repositories_are_checked_with_the_installations(
    api: ApiServer,
) -> None:
    """A rule that names no repositories covers the installation's: those are checked too."""
    put_limits(api, "team", namespaces=[NAMESPACE], repositories=["acme/*"])
    add_rule(api, repositories=[])
    installation = Installation(organization="globex", repositories=("app",))
    async with running(api, config(installation=installation)) as controller:
        await settled(controller)
    assert "globex/app is outside" in condition(api, "Invalid")["message"]


async def test_the_namespaces_secret_is_the_one_its_pods_read(api: ApiServer) -> None:
    """limits.secretName: the compiled pods read both tokens from that Secret, no other."""
    put_limits(api, "team", namespaces=[NAMESPACE], secretName="team-tokens")
    add_rule(api)
    async with running(api) as controller:
        await settled(controller)
    applied = api.stored(WORKFLOW_TEMPLATES, NAMESPACE, RULE)  # the pods are the template's
    assert applied is not None
    assert secret_names(applied) == {"team-tokens"}


async def test_two_limits_naming_one_namespace_refuse_its_rules(api: ApiServer) -> None:
    """Ambiguous limits: the rules of that namespace are Invalid until one object goes."""
    put_limits(api, "a", namespaces=[NAMESPACE])
    put_limits(api, "b", namespaces=[NAMESPACE])
    add_rule(api)
    async with running(api) as controller:
        await settled(controller)
        assert (
            "named by more than one PRReconciliationLimits: a, b"
            in (condition(api, "Invalid")["message"])
        )
        api.remove(LIMITS, "", "b")
        await eventually(lambda: ready(api))


async def test_no_rule_is_admitted_before_the_limits_are_read(api: ApiServer) -> None:
    """While the limits cannot be listed, nothing is applied; then the limits refuse the rule."""
    api.fail("GET", "prreconciliationlimits", 503, times=8)  # two lists of four attempts
    put_limits(api, "team", namespaces=[NAMESPACE], allowedActions=["escalate", "wait"])
    add_rule(api)
    async with running(api) as controller:
        await eventually(lambda: invalid(api))
        await settled(controller)
    assert [c for c in api.calls if c.resource == "cronworkflows" and c.verb == "patch"] == []


async def test_without_the_limits_crd_the_built_in_limits_apply(
    api: ApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """No PRReconciliationLimits resource in the cluster (404): the built-in limits, a warning."""
    api.fail("GET", "prreconciliationlimits", 404)
    add_rule(api, ai={"endpoint": "https://collector.example.net"})
    add_rule(api, "plain")
    async with running(api) as controller:
        await settled(controller)
    assert ready(api, "plain")
    assert "is not an allowed model endpoint" in condition(api, "Invalid")["message"]
    assert "(the built-in limits)" in condition(api, "Invalid")["message"]
    assert "the built-in limits apply" in capsys.readouterr().out
