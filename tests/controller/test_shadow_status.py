"""status.shadow: the shadow score the newest run reported, kept when the rule enforces again."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ai_operator.jobs.policy.counts import PassCounts
from ai_operator.jobs.policy.shadow import Happened, ShadowDecision, score
from ai_operator.jobs.rules.model import Action
from ai_operator.pipelines.controller.kube import RULES, WORKFLOWS
from tests.controller.apiserver import ApiServer
from tests.controller.conftest import NAMESPACE, add_rule, running, settled
from tests.controller.test_runs import workflow

pytestmark = pytest.mark.asyncio

HEAD = "a" * 40


def settled_as(decided: Action, happened: Happened | None, at: float) -> ShadowDecision:
    return ShadowDecision(decided, HEAD, at, happened, at + 1 if happened else None)


EARLIER = [
    settled_as(Action.MERGE, None, 1),
    settled_as(Action.CLOSE, None, 2),
]
LATER = [
    settled_as(Action.MERGE, Happened.MERGED, 1),
    settled_as(Action.MERGE, Happened.CLOSED, 3),
    settled_as(Action.CLOSE, Happened.CLOSED, 2),
    settled_as(Action.ESCALATE, Happened.STEPPED_IN, 4),
    settled_as(Action.WAIT, Happened.STEPPED_IN, 5),
]


def summary(decisions: list[ShadowDecision] | None) -> dict[str, Any]:
    shadow = {"shadow_score": score(decisions).to_json()} if decisions is not None else {}
    counts = PassCounts(prs_processed=2, dry_run=True, actions={"merge": 1}, **shadow)
    return {"parameters": [{"name": "summary", "value": json.dumps(counts.to_json())}]}


def finished(name: str, minute: int, decisions: list[ShadowDecision] | None) -> dict[str, Any]:
    return workflow(
        name,
        f"2026-12-06T10:0{minute}:00Z",
        "Succeeded",
        finishedAt=f"2026-12-06T10:0{minute}:30Z",
        outputs=summary(decisions),
    )


def shadow_status(api: ApiServer) -> dict[str, Any] | None:
    rule = api.stored(RULES, NAMESPACE, "staging-automerge")
    assert rule is not None
    return rule["status"].get("shadow")


async def test_status_shadow_is_the_newest_runs_score(api: ApiServer) -> None:
    """decisions, settled, agreed and agreement, in all and per action, from the newest run."""
    api.put(WORKFLOWS, finished("staging-automerge-1", 1, EARLIER))
    api.put(WORKFLOWS, finished("staging-automerge-2", 2, LATER))
    add_rule(api)
    async with running(api) as controller:
        await settled(controller)

    found = shadow_status(api)
    assert found is not None
    assert (found["decisions"], found["settled"], found["agreed"]) == (5, 5, 3)
    assert found["agreement"] == 0.6
    assert found["workflow"] == "staging-automerge-2"
    assert found["actions"]["merge"] == {
        "decisions": 2,
        "settled": 2,
        "agreed": 1,
        "happened": {"closed": 1, "merged": 1},
    }
    assert found["actions"]["wait"]["agreed"] == 0


async def test_status_shadow_stays_when_the_rule_enforces_again(api: ApiServer) -> None:
    """A run with no shadow score (the rule was switched to Enforce) leaves status.shadow be."""
    api.put(WORKFLOWS, finished("staging-automerge-1", 1, LATER))
    add_rule(api)
    async with running(api) as controller:
        await settled(controller)
    before = shadow_status(api)
    api.put(WORKFLOWS, finished("staging-automerge-2", 2, None))
    async with running(api) as controller:
        await settled(controller)

    assert before is not None and shadow_status(api) == before


async def test_an_enforcing_rule_has_no_status_shadow(api: ApiServer) -> None:
    """No shadow run, no status.shadow."""
    api.put(WORKFLOWS, finished("staging-automerge-1", 1, None))
    add_rule(api)
    async with running(api) as controller:
        await settled(controller)

    assert shadow_status(api) is None
