"""The pipeline's steps, one per pod: fetch, decide, act, report.

Each step reads its rule from ``AI_OPERATOR_RULE`` (the rule document as base64 JSON, carried
inside the workflow so that ``argo resubmit`` repeats the same run and Argo never reads the rule's
``{{...}}`` as its own tags) and shares its code with ``ai-operator run`` (:mod:`jobs.reconcile`).

Exit codes: 0 done; 75 (EX_TEMPFAIL) a transient failure worth Argo's retry; 1 anything else.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from jobs.clients.github.errors import GitHubError
from jobs.model import PRReconciliationRule
from jobs.policy.decision import Decision, leave_alone
from jobs.policy.selection import selection_problems
from jobs.reconcile import (
    Decider,
    GitHubPort,
    GitHubReader,
    PullRequestFailure,
    PullRequestResult,
    act,
    decide_pull_request,
    gather,
    ignored_labels,
    pull_request_ref,
)

RULE_ENV = "AI_OPERATOR_RULE"
EX_TEMPFAIL = 75


class StepInputError(Exception):
    """A step's input (rule, reference, decision list) is malformed; the message says which."""


def dump_for_argo(value: object) -> str:
    r"""Compact JSON in which no ``{{`` appears, so Argo never reads PR text as one of its tags.

    ``{{`` cannot occur in JSON's own syntax, only inside strings, where ``\u007b`` decodes back
    to ``{``: a title such as ``Use {{pr.number}}`` survives the trip through Argo unchanged.
    """
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return text.replace("{{", "\\u007b\\u007b")


def encode_rule(rule: PRReconciliationRule) -> str:
    """The value of ``AI_OPERATOR_RULE`` for ``rule``."""
    document = json.dumps(rule.to_document(), sort_keys=True, separators=(",", ":"))
    return base64.b64encode(document.encode()).decode()


def decode_rule(value: str) -> PRReconciliationRule:
    """The rule carried in ``AI_OPERATOR_RULE``."""
    try:
        document = json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise StepInputError(f"{RULE_ENV} is not base64-encoded JSON: {exc}") from exc
    try:
        return PRReconciliationRule.model_validate(document)
    except ValueError as exc:
        raise StepInputError(f"{RULE_ENV} is not a valid rule: {exc}") from exc


def rule_from_env(env: Mapping[str, str]) -> PRReconciliationRule:
    """The step's rule, or a StepInputError naming the variable."""
    value = env.get(RULE_ENV, "").strip()
    if not value:
        raise StepInputError(f"{RULE_ENV} is not set: the step has no rule")
    return decode_rule(value)


def fetch(
    rule: PRReconciliationRule, repositories: list[str], github: GitHubReader
) -> list[dict[str, Any]]:
    """References to the PRs to decide: small, capped, one per covered PR."""
    return [pull_request_ref(rule, pr) for pr in gather(rule, repositories, github)]


def decide(
    rule: PRReconciliationRule, ref: Mapping[str, Any], github: GitHubPort, ai: Decider
) -> Decision:
    """Decide one PR on fresh facts (raises PullRequestFailure)."""
    repository, number = _ref_target(ref)
    try:
        pr = github.pull_request(repository, number)
    except GitHubError as exc:
        raise PullRequestFailure(
            f"reading {repository}#{number} failed: {exc}", kind="github", retryable=exc.retryable
        ) from exc
    problems = selection_problems(pr, rule.spec.selector)
    if problems:
        reason = f"no longer covered by the rule: {'; '.join(problems)}"
        return leave_alone(rule, pr, pr.fingerprint(ignored_labels(rule)), reason)
    return decide_pull_request(rule, pr, ai)


def act_all(
    rule: PRReconciliationRule, decisions: list[Decision], github: GitHubPort, *, dry_run: bool
) -> list[PullRequestResult]:
    """Apply every decision, serialized, each on fresh facts."""
    return [act(rule, decision, github, dry_run=dry_run) for decision in decisions]


def parse_decisions(text: str) -> list[Decision]:
    """The decide step's aggregated outputs: a JSON list of objects (or of JSON strings)."""
    try:
        items = json.loads(text) if text.strip() else []
    except json.JSONDecodeError as exc:
        raise StepInputError(f"--decisions is not JSON: {exc}") from exc
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        raise StepInputError("--decisions must be a JSON list")
    decisions = []
    for item in items:
        data = json.loads(item) if isinstance(item, str) else item
        if not data:  # a failed or skipped decide node contributes nothing
            continue
        try:
            decisions.append(Decision.model_validate(data))
        except ValueError as exc:
            raise StepInputError(f"--decisions holds an invalid decision: {exc}") from exc
    return decisions


def parse_ref(text: str) -> dict[str, Any]:
    """The decide step's ``--pr`` argument."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StepInputError(f"--pr is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise StepInputError("--pr must be a JSON object")
    _ref_target(data)
    return data


def parse_results(text: str) -> list[PullRequestResult]:
    """The act step's results, as the report step reads them (tolerant: bad input is no rows)."""
    try:
        items = json.loads(text) if text.strip() else []
    except json.JSONDecodeError:
        return []
    if not isinstance(items, list):
        return []
    return [PullRequestResult.from_json(item) for item in items if isinstance(item, dict)]


def _ref_target(ref: Mapping[str, Any]) -> tuple[str, int]:
    try:
        return str(ref["repository"]), int(ref["number"])
    except (KeyError, TypeError, ValueError) as exc:
        raise StepInputError(f"pull request reference lacks repository/number: {ref!r}") from exc
