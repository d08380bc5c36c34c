"""No rule can knock the controller over, and no stale workflow acts (issue cases 3 and 4).

The emulated API server stores rules as they are sent (it does not enforce the CRD's bounds), as
a real one would for a CRD installed before the bounds, so the controller's own checks are what
is tested: a megabyte of instruction and a template nested a hundred deep are refused in well
under a second each, while ``/healthz`` keeps answering; a rule whose check raises or takes too
long is Invalid with one line, never retried in a loop; an invalid new generation removes the
rule's CronWorkflow before anything else.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

import ai_operator.pipelines.controller.checking as checking
from ai_operator.pipelines.controller.checking import Checker, Governing, evaluate_rule
from ai_operator.pipelines.controller.config import ControllerConfig
from ai_operator.pipelines.controller.kube import CRON_WORKFLOWS, RULES
from ai_operator.pipelines.controller.objects import RuleKey, RuleObject
from ai_operator.pipelines.controller.server import HealthServer
from ai_operator.pipelines.controller.status import Outcome
from tests.controller.apiserver import ApiServer
from tests.controller.conftest import (
    NAMESPACE,
    add_rule,
    eventually,
    rule_document,
    running,
    settled,
)

pytestmark = pytest.mark.asyncio

NESTED_100 = "{% if true %}" * 100 + "x" + "{% endif %}" * 100


def status(api: ApiServer, name: str) -> dict[str, Any]:
    return dict((api.stored(RULES, NAMESPACE, name) or {}).get("status") or {})


def condition(api: ApiServer, name: str, kind: str) -> dict[str, Any]:
    found = [c for c in status(api, name).get("conditions") or [] if c["type"] == kind]
    return found[0] if found else {}


def put_raw_rule(api: ApiServer, name: str, **spec: Any) -> None:
    """A rule with fields the CRD would refuse, stored as is."""
    document = rule_document(name)
    document["spec"].update(spec)
    api.put(RULES, document)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        pytest.param({"instruction": "x" * 2**20}, "at most 16384 characters", id="1mb"),
        pytest.param({"instruction": NESTED_100}, "nested more than 20 deep", id="nested-100"),
        pytest.param({"timezone": "America"}, "unknown timezone 'America'", id="tz-directory"),
        pytest.param({"timezone": "A" * 5000}, "at most 64 characters", id="tz-too-long"),
    ],
)
async def test_a_huge_or_broken_rule_is_invalid_in_under_a_second_while_healthz_answers(
    api: ApiServer, spec: dict[str, Any], words: str
) -> None:
    """Invalid with a one-line reason within a second; /healthz answers all along; the other
    rule is Ready."""
    add_rule(api, "ordinary")
    async with running(api) as controller:
        server = HealthServer(controller, "127.0.0.1", 0)
        await server.start()
        try:
            await settled(controller)
            put_raw_rule(api, "huge", **spec)
            started = time.monotonic()
            slowest = 0.0
            async with aiohttp.ClientSession() as session:
                while condition(api, "huge", "Invalid").get("status") != "True":
                    asked = time.monotonic()
                    async with session.get(f"http://127.0.0.1:{server.port}/healthz") as answer:
                        assert answer.status == 200
                    slowest = max(slowest, time.monotonic() - asked)
                    assert time.monotonic() - started < 1.0
                    await asyncio.sleep(0.01)
            await settled(controller)
        finally:
            await server.close()
    assert slowest < 0.5
    refusal = condition(api, "huge", "Invalid")
    assert refusal["reason"] == "ValidationFailed"
    assert words in refusal["message"]
    assert "\n" not in refusal["message"] and "Traceback" not in refusal["message"]
    assert condition(api, "ordinary", "Ready")["status"] == "True"


async def test_any_exception_while_checking_is_one_line_and_never_retried(
    api: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RecursionError (or anything) in a check: Invalid, CheckFailed, one line; no retry loop."""

    def too_deep(*_: object) -> list[object]:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(checking, "check_document", too_deep)
    add_rule(api)
    async with running(api) as controller:
        await settled(controller)
        await asyncio.sleep(0.3)  # longer than several retry delays
        assert controller.reconciled == {RuleKey(NAMESPACE, "staging-automerge"): 1}
        assert controller.pending_retries == 0
    refusal = condition(api, "staging-automerge", "Invalid")
    assert (refusal["reason"], refusal["message"]) == (
        "CheckFailed",
        "the rule is nested too deeply to be checked",
    )


def slow_for_one(
    rule: RuleObject, config: ControllerConfig, governing: Governing
) -> checking.Compiled | Outcome:
    """The real check, except that the rule named ``slow`` takes far too long."""
    if rule.ref.name == "slow":
        time.sleep(1.0)
    return evaluate_rule(rule, config, governing)


async def test_a_rule_that_cannot_be_checked_in_time_is_invalid_and_the_others_go_on(
    api: ApiServer,
) -> None:
    """Past the time limit: Invalid (CheckTimedOut); the next rule is checked meanwhile."""
    add_rule(api, "slow")
    add_rule(api, "quick")
    checker = Checker(0.3, evaluate=slow_for_one)
    async with running(api, checker=checker, workers=2) as controller:
        await eventually(lambda: condition(api, "quick", "Ready").get("status") == "True")
        await eventually(lambda: condition(api, "slow", "Invalid").get("status") == "True")
        await settled(controller)
    refusal = condition(api, "slow", "Invalid")
    assert refusal["reason"] == "CheckTimedOut"
    assert refusal["message"] == "checking the rule took longer than 0.3 s"


async def test_an_invalid_new_generation_removes_the_old_workflow_first(api: ApiServer) -> None:
    """dryRun plus a typo: the old CronWorkflow is deleted before the status is written, and the
    status says Invalid for generation 2 (no Ready left from generation 1)."""
    add_rule(api)
    async with running(api) as controller:
        await settled(controller)
        assert api.stored(CRON_WORKFLOWS, NAMESPACE, "staging-automerge") is not None
        before = len(api.calls)
        put_raw_rule(api, "staging-automerge", dryRun=True, timezone="America")
        await eventually(lambda: status(api, "staging-automerge").get("observedGeneration") == 2)
        await settled(controller)
    assert api.stored(CRON_WORKFLOWS, NAMESPACE, "staging-automerge") is None
    later = [(c.verb, c.resource, c.subresource) for c in api.calls[before:]]
    deleted = later.index(("delete", "cronworkflows", ""))
    written = later.index(("patch", "prreconciliationrules", "status"))
    assert deleted < written
    rule = api.stored(RULES, NAMESPACE, "staging-automerge")
    assert rule is not None
    assert rule["metadata"]["generation"] == 2
    ready = condition(api, "staging-automerge", "Ready")
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == (
        "False",
        "Invalid",
        2,
    )
    assert "unknown timezone 'America'" in status(api, "staging-automerge")["lastError"]


async def test_an_invalid_rules_workflow_that_cannot_be_deleted_is_suspended(
    api: ApiServer,
) -> None:
    """The deletion refused: the CronWorkflow is suspended at once, and deleted on a retry."""
    add_rule(api)
    async with running(api) as controller:
        await settled(controller)
        api.fail("DELETE", "cronworkflows", 500, times=4)  # one deletion's every attempt
        put_raw_rule(api, "staging-automerge", timezone="America")
        await eventually(
            lambda: (
                (api.stored(CRON_WORKFLOWS, NAMESPACE, "staging-automerge") or {})
                .get("spec", {})
                .get("suspend")
                is True
                or api.stored(CRON_WORKFLOWS, NAMESPACE, "staging-automerge") is None
            )
        )
        await eventually(lambda: api.stored(CRON_WORKFLOWS, NAMESPACE, "staging-automerge") is None)
        await settled(controller)
    suspends = [c for c in api.calls if (c.verb, c.resource) == ("patch", "cronworkflows")]
    assert len(suspends) == 2  # the first apply, then the suspension
    assert condition(api, "staging-automerge", "Invalid")["status"] == "True"
