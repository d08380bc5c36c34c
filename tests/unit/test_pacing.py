"""Write pacing: what a pass may write, and which pull requests wait for the next one."""

from __future__ import annotations

import pytest

from ai_operator.jobs.policy.pacing import (
    WRITES_PER_PULL_REQUEST,
    Deferral,
    Ledger,
    WriteBudget,
    admit,
    allot,
    writes_per_pass,
)
from ai_operator.jobs.policy.plan import AddLabels, Close, Comment, Merge, Operation
from ai_operator.jobs.policy.reuse import Candidate, Remembered, triage
from ai_operator.jobs.rules.model import MergeMethod, RuleLimits
from tests.factories import make_pr

MERGE = Merge("PR_1", "abc", MergeMethod.SQUASH, "Title (#1)")
CLOSE = Close("PR_1")
COMMENT = Comment("PR_1", "body", "marker")
LABELS = AddLabels("acme/web", "PR_1", ("needs-human",), create_missing=False)
ESCALATE: tuple[Operation, ...] = (LABELS, COMMENT)


@pytest.mark.parametrize(
    ("left", "spent", "plan", "waits", "after"),
    [
        pytest.param(WriteBudget(4), 0, ESCALATE, None, WriteBudget(2), id="fits"),
        pytest.param(WriteBudget(1), 2, ESCALATE, Deferral.BUDGET, WriteBudget(1), id="too-big"),
        pytest.param(WriteBudget(0), 4, (COMMENT,), Deferral.BUDGET, WriteBudget(0), id="spent"),
        pytest.param(WriteBudget(0), 4, (), None, WriteBudget(0), id="nothing-to-write-fits"),
        pytest.param(
            WriteBudget(1), 0, ESCALATE, None, WriteBudget(0), id="first-plan-always-fits"
        ),
        pytest.param(
            WriteBudget(10, merges=0), 0, (MERGE,), Deferral.MERGES, WriteBudget(10, 0),
            id="merge-cap-zero-stops-merges",
        ),
        pytest.param(
            WriteBudget(10, merges=1), 0, (MERGE, COMMENT), None, WriteBudget(8, 0),
            id="merge-within-cap",
        ),
        pytest.param(
            WriteBudget(10, closes=0), 0, (COMMENT, CLOSE), Deferral.CLOSES,
            WriteBudget(10, closes=0), id="close-cap-reached",
        ),
        pytest.param(
            WriteBudget(None, merges=0), 0, ESCALATE, None, WriteBudget(None, merges=0),
            id="merge-cap-does-not-hold-escalations",
        ),
    ],
)  # fmt: skip
def test_a_plan_is_admitted_whole_or_deferred_whole(
    left: WriteBudget,
    spent: int,
    plan: tuple[Operation, ...],
    waits: Deferral | None,
    after: WriteBudget,
) -> None:
    """A plan fits what is left, or waits with its reason and spends nothing."""
    reason, ledger = admit(Ledger(left, spent), plan)
    assert (reason, ledger.left) == (waits, after)


def test_a_budget_spent_in_order_admits_the_first_plans() -> None:
    """Thirty escalations under sixty writes: every one; thirty-one: the last waits."""
    ledger = Ledger.of(WriteBudget(60))
    reasons = []
    for _ in range(31):
        reason, ledger = admit(ledger, ESCALATE)
        reasons.append(reason)
    assert reasons == [None] * 30 + [Deferral.BUDGET]


@pytest.mark.parametrize(
    ("budget", "expected"),
    [
        pytest.param(
            WriteBudget(5), [WriteBudget(2), WriteBudget(2), WriteBudget(0), WriteBudget(0)],
            id="whole-shares-while-the-budget-lasts",
        ),
        pytest.param(
            WriteBudget(None, merges=1, closes=2),
            [WriteBudget(None, 1, 1), WriteBudget(None, 0, 1), WriteBudget(None, 0, 0),
             WriteBudget(None, 0, 0)],
            id="merge-and-close-caps-to-the-first",
        ),
        pytest.param(WriteBudget(), [WriteBudget()] * 4, id="no-cap-no-share"),
    ],
)  # fmt: skip
def test_the_budget_is_shared_out_before_the_fan_out_in_order(
    budget: WriteBudget, expected: list[WriteBudget]
) -> None:
    """Fetch gives each PR its share in the pass's order; together they never exceed the budget."""
    shares = allot(["a#1", "a#2", "a#3", "a#4"], budget)
    assert list(shares.values()) == expected
    if budget.writes is not None:
        assert sum(s.writes or 0 for s in shares.values()) <= budget.writes


def test_merge_and_close_rights_go_to_the_likely_first_then_to_the_undecided() -> None:
    """What waited for its right last pass gets it; a PR last decided otherwise gets none."""
    order = ["a#1", "a#2", "a#3", "a#4"]
    last = {"a#1": "escalate", "a#3": "close", "a#4": "merge"}
    shares = allot(order, WriteBudget(None, merges=1, closes=1), last)
    assert [(s.merges, s.closes) for s in shares.values()] == [(0, 0), (0, 0), (0, 1), (1, 0)]
    two = allot(order, WriteBudget(None, merges=2, closes=0), last)
    assert [s.merges for s in two.values()] == [0, 1, 0, 1]


def test_each_share_carries_out_one_whole_plan() -> None:
    """A share is what the largest plan writes: an escalation, a merge and its comment."""
    share = allot(["a#1"], WriteBudget(60, merges=1))["a#1"]
    assert share.writes == WRITES_PER_PULL_REQUEST
    assert admit(Ledger.of(share), (MERGE, COMMENT))[0] is None


@pytest.mark.parametrize(
    ("per_pass", "per_hour", "interval", "expected"),
    [
        pytest.param(60, 400, 3600.0, 60, id="hourly-rule-per-pass-cap"),
        pytest.param(60, 400, 300.0, 33, id="every-5-minutes-spreads-the-hour"),
        pytest.param(60, 400, 60.0, 6, id="every-minute"),
        pytest.param(60, 10, 60.0, 2, id="never-below-one-pull-request"),
        pytest.param(60, 400, None, 60, id="no-schedule-known"),
    ],
)
def test_the_default_budget_stays_below_github_s_limits(
    per_pass: int, per_hour: int, interval: float | None, expected: int
) -> None:
    """80 a minute and 500 an hour per token: the defaults (60, 400) stay below both."""
    assert writes_per_pass(per_pass, per_hour, interval) == expected


def test_the_rule_s_limits_make_the_caps() -> None:
    """``spec.limits`` caps merges and closes; the writes come from the installation."""
    budget = WriteBudget.of(RuleLimits(maxMergesPerPass=3, maxClosesPerPass=0), 60)
    assert budget == WriteBudget(60, 3, 0)


def test_what_waited_last_pass_goes_first() -> None:
    """A PR whose writes were deferred is decided again, before those decided longer ago."""
    old, waited, never = make_pr(number=1), make_pr(number=2), make_pr(number=3)
    decision_time = 1000.0
    candidates = [
        Candidate(old, "k1", Remembered("old-key", 10.0)),
        Candidate(waited, "k2", Remembered("k2", decision_time, deferred=True)),
        Candidate(never, "k3"),
    ]
    split = triage(candidates, now=2000.0, max_age=86400.0, cap=3)
    assert [c.pr.number for c in split.ask] == [2, 3, 1]
    assert split.reuse == ()
