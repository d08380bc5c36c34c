"""The controller against an emulated API server: rules in, CronWorkflows, status and events out."""

from __future__ import annotations

from typing import Any

import pytest

from ai_operator.jobs.rules.encoding import parse_rule_text, rule_digest
from ai_operator.pipelines.compile import compile_rule
from ai_operator.pipelines.controller.config import RuleDefaults
from ai_operator.pipelines.controller.kube import (
    CONFIG_MAPS,
    CRON_JOBS,
    CRON_WORKFLOWS,
    EVENTS,
    RULES,
    WORKFLOW_TEMPLATES,
)
from ai_operator.pipelines.controller.reconcile import FIELD_MANAGER, MANIFEST_HASH_ANNOTATION
from ai_operator.pipelines.controller.status import RuleState, State
from ai_operator.pipelines.options import CompileOptions
from tests.controller.apiserver import APPLY, MERGE, ApiServer
from tests.controller.conftest import (
    NAMESPACE,
    add_rule,
    config,
    eventually,
    rule_document,
    running,
    settled,
)
from tests.factories import make_rule

pytestmark = pytest.mark.asyncio

RULE_CONFIG_MAP = "ai-operator-rule-staging-automerge"


def condition(rule: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in rule["status"]["conditions"] if c["type"] == kind)


def events_of(api: ApiServer, rule: str) -> list[tuple[str, str]]:
    return [
        (event["type"], event["reason"])
        for event in api.stored_all(EVENTS, NAMESPACE)
        if event["involvedObject"]["name"] == rule
    ]


def requests(api: ApiServer, method: str, plural: str, subresource: str = "") -> list[Any]:
    return [
        request
        for request in api.received
        if str(request.method.value) == method
        and request.resource is not None
        and request.resource.plural == plural
        and (request.subresource or "") == subresource
    ]


async def test_a_new_rule_becomes_a_cron_workflow_owned_by_it(api: ApiServer) -> None:
    """The compiled CronWorkflow is applied in the rule's namespace, controlled by the rule."""
    rule = add_rule(api)
    async with running(api):
        await eventually(lambda: api.stored(CRON_WORKFLOWS, NAMESPACE, "staging-automerge"))
    applied = api.stored(CRON_WORKFLOWS, NAMESPACE, "staging-automerge")
    assert applied is not None
    assert applied["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "aioperator.io/v1alpha1",
            "kind": "PRReconciliationRule",
            "name": "staging-automerge",
            "uid": rule["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    compiled = compile_rule(make_rule(), "argo", CompileOptions()).document
    assert applied["spec"] == compiled["spec"]
    assert MANIFEST_HASH_ANNOTATION in applied["metadata"]["annotations"]


async def test_the_rule_is_applied_once_as_its_own_config_map_owned_by_it(api: ApiServer) -> None:
    """The rule's ConfigMap: what ``compile`` writes, controlled by the rule, the pods' digest."""
    rule = add_rule(api)
    async with running(api) as controller:
        await settled(controller)
    stored = api.stored(CONFIG_MAPS, NAMESPACE, RULE_CONFIG_MAP)
    workflow = api.stored(WORKFLOW_TEMPLATES, NAMESPACE, "staging-automerge")
    assert stored is not None and workflow is not None
    compiled = compile_rule(make_rule(), "argo", CompileOptions()).config_map
    assert compiled is not None
    assert stored["data"] == compiled["data"]
    assert [ref["uid"] for ref in stored["metadata"]["ownerReferences"]] == [
        rule["metadata"]["uid"]
    ]
    assert MANIFEST_HASH_ANNOTATION in stored["metadata"]["annotations"]
    annotations = workflow["spec"]["podMetadata"]["annotations"]
    assert annotations["aioperator.io/rule-sha256"] == rule_digest(stored["data"]["rule.yaml"])


async def test_a_hand_edited_rule_config_map_is_put_back(api: ApiServer) -> None:
    """An edit of the rule's text in the cluster is repaired at the next resync, with an event."""
    add_rule(api)
    async with running(api, config(resync_seconds=0.3)) as controller:  # type: ignore[arg-type]
        await settled(controller)
        stored = api.stored(CONFIG_MAPS, NAMESPACE, RULE_CONFIG_MAP)
        assert stored is not None
        wanted = stored["data"]["rule.yaml"]
        api.put(CONFIG_MAPS, stored | {"data": {"rule.yaml": wanted.replace("merge", "close")}})
        await eventually(
            lambda: (
                (api.stored(CONFIG_MAPS, NAMESPACE, RULE_CONFIG_MAP) or {})
                .get("data", {})
                .get("rule.yaml")
                == wanted
            )
        )
        await settled(controller)
    assert ("Warning", "DriftRepaired") in events_of(api, "staging-automerge")


async def test_the_status_says_ready_with_the_effective_schedule(api: ApiServer) -> None:
    """Ready, the generated object, the interval rounded to a cron, and its note."""
    add_rule(api, reconciliationInterval=20)
    async with running(api) as controller:
        await settled(controller)
    rule = api.stored(RULES, NAMESPACE, "staging-automerge")
    assert rule is not None
    status = rule["status"]
    assert status["observedGeneration"] == rule["metadata"]["generation"]
    assert status["generated"] == {"kind": "CronWorkflow", "name": "staging-automerge"}
    assert status["schedule"] == "* * * * *"
    assert "shorter than a minute" in status["scheduleNote"]
    ready = condition(rule, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Applied")
    assert ready["observedGeneration"] == rule["metadata"]["generation"]
    assert ready["lastTransitionTime"].endswith("Z")
    assert condition(rule, "Invalid")["status"] == "False"
    assert condition(rule, "ApplyFailed")["status"] == "False"
    assert events_of(api, "staging-automerge") == [("Normal", "Applied")]


async def test_requests_are_what_the_api_expects(api: ApiServer) -> None:
    """Server-side apply with our field manager and force; status through its subresource."""
    add_rule(api)
    async with running(api) as controller:
        await settled(controller)
    (apply,) = requests(api, "PATCH", "cronworkflows")
    assert apply.headers["Content-Type"] == APPLY
    assert apply.params == {"fieldManager": FIELD_MANAGER, "force": "true"}
    (status,) = requests(api, "PATCH", "prreconciliationrules", "status")
    assert status.headers["Content-Type"] == MERGE
    assert set(status.data) == {"status"}
    assert requests(api, "PATCH", "prreconciliationrules") == []


async def test_a_changed_rule_updates_its_cron_workflow(api: ApiServer) -> None:
    """A new spec is compiled and applied again, and the status follows the generation."""
    add_rule(api)
    async with running(api) as controller:
        await settled(controller)
        add_rule(api, schedule="*/5 * * * *")
        await eventually(
            lambda: (
                (api.stored(CRON_WORKFLOWS, NAMESPACE, "staging-automerge") or {})
                .get("spec", {})
                .get("schedules")
                == ["*/5 * * * *"]
            )
        )
        await settled(controller)
    rule = api.stored(RULES, NAMESPACE, "staging-automerge")
    assert rule is not None
    assert rule["metadata"]["generation"] == 2
    assert rule["status"]["observedGeneration"] == 2
    assert rule["status"]["schedule"] == "*/5 * * * *"
    assert events_of(api, "staging-automerge") == [("Normal", "Applied"), ("Normal", "Applied")]


@pytest.mark.parametrize(
    "collector",
    [
        pytest.param(True, id="with-the-garbage-collector"),
        pytest.param(False, id="the-controller-deletes-it-itself"),
    ],
)
async def test_a_deleted_rule_takes_its_cron_workflow_with_it(
    api: ApiServer, collector: bool
) -> None:
    """Nothing generated outlives its rule, even where the garbage collector is slow."""
    api.garbage_collection = collector
    add_rule(api)
    async with running(api) as controller:
        await settled(controller)
        assert api.stored(CRON_WORKFLOWS, NAMESPACE, "staging-automerge") is not None
        api.remove(RULES, NAMESPACE, "staging-automerge")
        await eventually(lambda: api.stored(CRON_WORKFLOWS, NAMESPACE, "staging-automerge") is None)
        await eventually(lambda: api.stored(CONFIG_MAPS, NAMESPACE, RULE_CONFIG_MAP) is None)
        await settled(controller)
    assert controller.rule_states() == []


async def test_an_invalid_rule_is_reported_and_the_others_keep_working(api: ApiServer) -> None:
    """Invalid names the field and the problem; the valid rule is applied all the same."""
    add_rule(api, "broken", instruction="PR {{pr.titel}}")
    add_rule(api, "working")
    async with running(api) as controller:
        await settled(controller)
    broken = api.stored(RULES, NAMESPACE, "broken")
    assert broken is not None
    invalid = condition(broken, "Invalid")
    assert (invalid["status"], invalid["reason"]) == ("True", "ValidationFailed")
    assert invalid["message"].startswith("spec.instruction: line 1 of the template: unknown")
    assert "'pr.title'" in invalid["message"]
    assert condition(broken, "Ready")["status"] == "False"
    assert broken["status"]["lastError"] == invalid["message"]
    assert "generated" not in broken["status"]
    assert api.stored(CRON_WORKFLOWS, NAMESPACE, "broken") is None
    assert events_of(api, "broken") == [("Warning", "Invalid")]
    working = api.stored(RULES, NAMESPACE, "working")
    assert working is not None
    assert condition(working, "Ready")["status"] == "True"
    assert api.stored(CRON_WORKFLOWS, NAMESPACE, "working") is not None
    assert sorted(controller.rule_states()) == [
        RuleState(NAMESPACE, State.INVALID),
        RuleState(NAMESPACE, State.READY),
    ]


async def test_a_rule_the_model_refuses_is_invalid_with_its_field_path(api: ApiServer) -> None:
    """What the API server's schema lets through but the model refuses is reported, not fatal."""
    document = rule_document("regex")
    document["spec"]["selector"]["titlePattern"] = "(unclosed"
    api.put(RULES, document)
    async with running(api) as controller:
        await settled(controller)
    rule = api.stored(RULES, NAMESPACE, "regex")
    assert rule is not None
    message = condition(rule, "Invalid")["message"]
    assert message.startswith("spec.selector.titlePattern: ")


async def test_a_selector_that_covers_everything_is_invalid_without_match_all(
    api: ApiServer,
) -> None:
    """`selector: {}` is reported Invalid at spec.selector; with matchAll it is applied."""
    empty = rule_document("everything")
    empty["spec"]["selector"] = {}
    api.put(RULES, empty)
    opted = rule_document("opted-in")
    opted["spec"]["selector"] = {"matchAll": True}
    api.put(RULES, opted)
    async with running(api) as controller:
        await settled(controller)
    rule = api.stored(RULES, NAMESPACE, "everything")
    assert rule is not None
    assert condition(rule, "Invalid")["message"].startswith("spec.selector: ")
    assert api.stored(CRON_WORKFLOWS, NAMESPACE, "everything") is None
    assert api.stored(CRON_WORKFLOWS, NAMESPACE, "opted-in") is not None


async def test_a_rule_that_becomes_invalid_stops_running(api: ApiServer) -> None:
    """An invalid edit removes the CronWorkflow: nothing runs that the rule does not say."""
    add_rule(api)
    async with running(api) as controller:
        await settled(controller)
        assert api.stored(CRON_WORKFLOWS, NAMESPACE, "staging-automerge") is not None
        add_rule(api, instruction="{{ unknown }}")
        await eventually(lambda: api.stored(CRON_WORKFLOWS, NAMESPACE, "staging-automerge") is None)
        await settled(controller)
    assert api.stored(CONFIG_MAPS, NAMESPACE, RULE_CONFIG_MAP) is None  # nor its rule text
    rule = api.stored(RULES, NAMESPACE, "staging-automerge")
    assert rule is not None
    assert condition(rule, "Ready")["reason"] == "Invalid"
    assert condition(rule, "ApplyFailed")["reason"] == "NotApplied"


async def test_switching_the_target_deletes_the_other_kind(api: ApiServer) -> None:
    """CronWorkflow -> CronJob: the rule's own CronWorkflow goes; a foreign one stays."""
    rule = add_rule(api)
    foreign = {
        "metadata": {
            "name": "gitops-copy",
            "namespace": NAMESPACE,
            "labels": {"aioperator.io/rule": "staging-automerge"},
        },
        "spec": {},
    }
    api.put(CRON_WORKFLOWS, foreign)
    async with running(api) as controller:
        await settled(controller)
    assert api.stored(CRON_WORKFLOWS, NAMESPACE, "staging-automerge") is not None
    async with running(api, config(target="cronjob")) as controller:
        await settled(controller)
    assert api.stored(CRON_WORKFLOWS, NAMESPACE, "staging-automerge") is None
    assert api.stored(CRON_WORKFLOWS, NAMESPACE, "gitops-copy") is not None
    cron_job = api.stored(CRON_JOBS, NAMESPACE, "staging-automerge")
    assert cron_job is not None
    assert cron_job["metadata"]["ownerReferences"][0]["uid"] == rule["metadata"]["uid"]
    status = (api.stored(RULES, NAMESPACE, "staging-automerge") or {})["status"]
    assert status["generated"] == {"kind": "CronJob", "name": "staging-automerge"}


async def test_an_object_the_rule_does_not_own_is_never_taken_over(api: ApiServer) -> None:
    """A CronWorkflow of the same name made by someone else: ApplyFailed, left untouched."""
    api.put(CRON_WORKFLOWS, {"metadata": {"name": "staging-automerge", "namespace": NAMESPACE}})
    add_rule(api)
    async with running(api) as controller:
        await settled(controller)
    rule = api.stored(RULES, NAMESPACE, "staging-automerge")
    assert rule is not None
    failed = condition(rule, "ApplyFailed")
    assert (failed["status"], failed["reason"]) == ("True", "NotOwned")
    assert "not controlled by this rule" in failed["message"]
    assert requests(api, "PATCH", "cronworkflows") == []
    assert ("Warning", "ApplyFailed") in events_of(api, "staging-automerge")


@pytest.mark.parametrize(
    ("namespaces", "served"),
    [
        pytest.param(("team-a",), {"team-a"}, id="one-namespace"),
        pytest.param(("team-a", "team-b"), {"team-a", "team-b"}, id="a-list"),
        pytest.param((), {"team-a", "team-b", "team-c"}, id="all-namespaces"),
    ],
)
async def test_only_the_served_namespaces_are_reconciled(
    api: ApiServer, namespaces: tuple[str, ...], served: set[str]
) -> None:
    """Rules elsewhere are left alone; [] serves every namespace with one cluster-wide watch."""
    for namespace in ("team-a", "team-b", "team-c"):
        document = rule_document()
        document["metadata"]["namespace"] = namespace
        api.put(RULES, document)
    async with running(api, config(namespaces=namespaces)) as controller:
        await settled(controller)
    compiled = {item["metadata"]["namespace"] for item in api.stored_all(CRON_WORKFLOWS)}
    assert compiled == served
    watched = {request.namespace for request in requests(api, "GET", "prreconciliationrules")}
    assert watched == ({None} if not namespaces else set(namespaces))


async def test_rule_defaults_fill_what_a_rule_leaves_out(api: ApiServer) -> None:
    """ruleDefaults: the interval of a rule without one, and its cap on pull requests."""
    document = rule_document()
    del document["spec"]["maxPullRequests"]
    api.put(RULES, document)
    settings = config(rule_defaults=RuleDefaults(reconciliation_interval=120, max_pull_requests=7))
    async with running(api, settings) as controller:
        await settled(controller)
    applied = api.stored(CRON_WORKFLOWS, NAMESPACE, "staging-automerge")
    assert applied is not None
    assert applied["spec"]["schedules"] == ["*/2 * * * *"]
    config_map = api.stored(CONFIG_MAPS, NAMESPACE, "ai-operator-rule-staging-automerge")
    assert config_map is not None
    rule = parse_rule_text(config_map["data"]["rule.yaml"], "the rule's ConfigMap")
    assert (rule.spec.reconciliationInterval, rule.spec.maxPullRequests) == (120, 7)
    metadata = rule.to_document()["metadata"]
    assert (metadata["name"], metadata["namespace"]) == ("staging-automerge", NAMESPACE)
    assert not {"uid", "resourceVersion", "generation", "managedFields"} & set(metadata)
