"""Builders for test data: an ordinary mergeable PR and an ordinary rule, overridable per test."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from ai_operator.jobs.policy.snapshot import (
    Check,
    CiStatus,
    Mergeable,
    PullRequestSnapshot,
    PullRequestState,
    Review,
)
from ai_operator.jobs.rules.model import PRReconciliationRule
from ai_operator.pipelines.options import CompiledManifest

HEAD = "a" * 40


def make_pr(**overrides: Any) -> PullRequestSnapshot:
    """An open, mergeable PR whose checks passed; override any field."""
    facts: dict[str, Any] = {
        "id": "PR_1",
        "repository": "acme/web",
        "number": 7,
        "url": "https://github.com/acme/web/pull/7",
        "title": "Roll back the cache change",
        "body": "",
        "author": "octocat",
        "labels": ("auto-merge", "staging"),
        "base_branch": "main",
        "head_branch": "rollback",
        "head_oid": HEAD,
        "state": PullRequestState.OPEN,
        "is_draft": False,
        "ci_status": CiStatus.SUCCESS,
        "checks": (Check(name="ci", status="COMPLETED", conclusion="SUCCESS"),),
        "mergeable": Mergeable.MERGEABLE,
        "merge_state_status": "CLEAN",
        "review_decision": None,
        "reviews": (),
        "created_at": datetime(2026, 11, 1, tzinfo=UTC),
        "updated_at": datetime(2026, 11, 2, tzinfo=UTC),
    }
    facts.update(overrides)
    return PullRequestSnapshot(**facts)


def review(author: str, state: str) -> Review:
    return Review(author=author, state=state)


def make_rule(name: str = "staging-automerge", **spec: Any) -> PRReconciliationRule:
    """A rule covering auto-merge+staging PRs on main; override any spec field."""
    body: dict[str, Any] = {
        "selector": {"labels": {"include": ["auto-merge", "staging"], "exclude": ["wip"]}},
        "instruction": "PR #{{pr.number}}: {{pr.title}} (CI {{pr.ciStatus}}). Merge if green.",
        "repositories": ["acme/web"],
    }
    body.update(spec)
    return PRReconciliationRule.model_validate(
        {
            "apiVersion": "aioperator.io/v1alpha1",
            "kind": "PRReconciliationRule",
            "metadata": {"name": name, "namespace": "ai-operator-system"},
            "spec": body,
        }
    )


RULE_DOCUMENT: dict[str, Any] = {
    "apiVersion": "aioperator.io/v1alpha1",
    "kind": "PRReconciliationRule",
    "metadata": {"name": "staging", "namespace": "ci"},
    "spec": {
        "selector": {"labels": {"include": ["auto-merge"]}},
        "instruction": "Merge #{{ pr.number }} when CI is {{ pr.ciStatus }}.",
        "repositories": ["acme/web"],
    },
}
"""An ordinary, valid rule as a file holds it (copy it before changing it)."""


def inlined(manifest: CompiledManifest) -> dict[str, Any]:
    """The compiled CronWorkflow with its WorkflowTemplate's spec in place of the reference.

    What a run of it executes, in one document: the shape the compiler wrote before rules
    compiled to a WorkflowTemplate, which tests of the workflow's content read.
    """
    document = copy.deepcopy(manifest.document)
    if manifest.workflow_template is not None:
        document["spec"]["workflowSpec"] = copy.deepcopy(manifest.workflow_template["spec"])
    return document
