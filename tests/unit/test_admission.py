"""Admission: act refuses any decision its rule could not have made, before it reads or writes."""

from __future__ import annotations

from typing import Any

import pytest

from ai_operator.jobs.policy.admission import Scope, admission_problems
from ai_operator.jobs.policy.decision import Decision
from ai_operator.jobs.rules.limits import LimitsSpec
from ai_operator.jobs.rules.model import Action
from tests.factories import make_rule

RULE = make_rule(
    repositories=["acme/web", "acme/api"],
    allowedActions=["merge", "escalate"],
    escalation={"labels": ["needs-human"], "optionalLabels": ["security"]},
)


def make_decision(**overrides: Any) -> Decision:
    """An ordinary decision of RULE: merge acme/web#1."""
    fields: dict[str, Any] = {
        "rule": RULE.qualified_name,
        "repository": "acme/web",
        "number": 1,
        "title": "Bump",
        "url": "https://github.com/acme/web/pull/1",
        "head_oid": "a" * 40,
        "fingerprint": "fp",
        "action": Action.MERGE,
        "reason": "green",
    }
    return Decision.model_validate(fields | overrides)


@pytest.mark.parametrize(
    ("decision", "scope", "refused"),
    [
        pytest.param(make_decision(), None, [], id="ordinary-merge-admitted"),
        pytest.param(
            make_decision(repository="ACME/Web"),
            Scope(["acme/web"]),
            [],
            id="repository-case-insensitive",
        ),
        pytest.param(
            make_decision(action=Action.WAIT, repository="acme/api"), None, [], id="wait-always"
        ),
        pytest.param(
            make_decision(action=Action.ESCALATE, labels=("needs-human", "Security")),
            None,
            [],
            id="escalation-and-optional-labels",
        ),
        pytest.param(
            make_decision(repository="other/payments"),
            Scope(RULE.spec.repositories),
            ["other/payments is not among the rule's repositories (acme/web, acme/api)"],
            id="repository-outside-the-rule",
        ),
        pytest.param(
            make_decision(repository="other/payments"),
            None,
            [],
            id="a-pass-that-gathered-the-pr-itself-names-no-scope",
        ),
        pytest.param(
            make_decision(action=Action.CLOSE),
            None,
            ["the action 'close' is not allowed by the rule"],
            id="action-the-rule-does-not-allow",
        ),
        pytest.param(
            make_decision(action=Action.ESCALATE, labels=("needs-human", "approved")),
            None,
            ["the labels approved are not the rule's escalation labels"],
            id="label-outside-the-rule",
        ),
        pytest.param(
            make_decision(head_oid="abc --> <!-- ai-operator:x -->"),
            None,
            ["the head 'abc --> <!-- ai-operator:x -->' is no commit id"],
            id="head-that-is-no-commit-id",
        ),
        pytest.param(
            make_decision(rule="team-b/other"),
            None,
            ["the decision is rule 'team-b/other''s, not 'ai-operator-system/staging-automerge''s"],
            id="another-rules-decision",
        ),
        pytest.param(
            make_decision(repository="acme/api"),
            Scope(["acme/web"]),
            ["acme/api is not among the rule's repositories (acme/web)"],
            id="resolved-repositories-win-over-the-rules-list",
        ),
        pytest.param(
            make_decision(),
            Scope(["acme/web"], LimitsSpec(repositories=["team-b/*"])),
            ["acme/web is outside the repositories of the namespace"],
            id="repository-outside-the-limits",
        ),
        pytest.param(
            make_decision(),
            Scope(["acme/web"], LimitsSpec(allowedActions=[Action.ESCALATE])),
            ["the action 'merge' is not allowed by the rule"],
            id="action-outside-the-limits",
        ),
    ],
)
def test_a_decision_is_admitted_only_within_its_rule(
    decision: Decision, scope: Scope | None, refused: list[str]
) -> None:
    """Repository, action and labels must be the rule's (and within limits); else refused."""
    assert admission_problems(RULE, decision, scope) == refused
