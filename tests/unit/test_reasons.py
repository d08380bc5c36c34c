"""Reasons as data: each selector clause and each safety rule of a merge, held or not, on what.

`selection_problems` and `merge_blocks` (what a pass reads) are built from these very lists, so
an explanation and a pass cannot say different things.
"""

from __future__ import annotations

from typing import Any

import pytest

from ai_operator.jobs.policy.guardrails import merge_blocks, merge_gates
from ai_operator.jobs.policy.selection import selection_problems, selector_clauses
from ai_operator.jobs.policy.snapshot import Mergeable, PullRequestState
from ai_operator.jobs.rules.model import Selector
from tests.factories import HEAD, make_pr, make_rule, review

SELECTOR = Selector.model_validate(
    {
        "labels": {"include": ["auto-merge"], "exclude": ["wip"]},
        "baseBranch": "main",
        "author": "dependabot[bot]",
        "titlePattern": "^Bump ",
    }
)
BUMP = {"author": "app/dependabot", "title": "Bump x from 1 to 2", "labels": ("auto-merge",)}


@pytest.mark.parametrize(
    ("overrides", "clauses"),
    [
        pytest.param(
            {},
            [
                ("state", True, "open"),
                ("labels.include", True, "carries auto-merge"),
                ("labels.exclude", True, "carries none of wip"),
                ("baseBranch", True, "base branch is main"),
                ("author", True, "author is app/dependabot"),
                ("titlePattern", True, "title matches '^Bump '"),
            ],
            id="every-clause-held-and-on-what",
        ),
        pytest.param(
            {"state": PullRequestState.MERGED, "labels": ("wip",), "base_branch": "dev",
             "author": "octocat", "title": "Fix"},
            [
                ("state", False, "state is MERGED"),
                ("labels.include", False, "missing labels auto-merge"),
                ("labels.exclude", False, "carries excluded labels wip"),
                ("baseBranch", False, "base branch is dev, not main"),
                ("author", False, "author is octocat, not dependabot[bot]"),
                ("titlePattern", False, "title does not match '^Bump '"),
            ],
            id="every-clause-missed-and-why",
        ),
    ],
)  # fmt: skip
def test_each_selector_clause(overrides: dict[str, Any], clauses: list[tuple[str, bool, str]]):
    """Only the clauses the selector sets, in order; the misses are the pass's own problems."""
    pr = make_pr(**{**BUMP, **overrides})
    found = selector_clauses(pr, SELECTOR)
    assert [(c.name, c.held, c.detail) for c in found] == clauses
    assert selection_problems(pr, SELECTOR) == tuple(d for _, held, d in clauses if not held)


def test_match_all_is_a_clause_of_its_own():
    selector = Selector(matchAll=True)
    assert [c.name for c in selector_clauses(make_pr(), selector)] == ["state", "matchAll"]


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="mergeable"),
        pytest.param({"is_draft": True, "merge_state_status": "DRAFT"}, id="draft"),
        pytest.param({"mergeable": Mergeable.CONFLICTING, "merge_state_status": "DIRTY"}, id="conflict"),
        pytest.param({"reviews": (review("alice", "CHANGES_REQUESTED"),)}, id="changes-requested"),
        pytest.param({"merge_state_status": "BEHIND"}, id="behind"),
        pytest.param({"head_oid": "b" * 40}, id="head-moved"),
    ],
)  # fmt: skip
def test_the_merge_gates_are_the_merge_blocks(overrides: dict[str, Any]):
    """Every safety rule of a merge is one gate, in order; its blocks are exactly merge_blocks."""
    pr, spec = make_pr(**overrides), make_rule().spec
    gates = merge_gates(pr, spec, HEAD)
    assert [g.name for g in gates] == [
        "open", "head", "draft", "checks", "mergeable", "reviews", "merge-method", "merge-state",
    ]  # fmt: skip
    assert [g.block for g in gates if g.block] == merge_blocks(pr, spec, HEAD)
