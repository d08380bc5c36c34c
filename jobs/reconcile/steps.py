"""The pipeline's steps, one per pod: fetch, decide, act, report.

Each step reads its rule from ``AI_OPERATOR_RULE`` (see :mod:`jobs.rules.encoding`) and shares its
code with ``ai-operator run`` (:mod:`jobs.reconcile.run`).

Exit codes: 0 done; 75 (EX_TEMPFAIL) a transient failure worth Argo's retry; 1 anything else.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from jobs.clients.github.errors import GitHubError
from jobs.policy.decision import Decision, leave_alone
from jobs.policy.selection import selection_problems
from jobs.reconcile.act import act
from jobs.reconcile.ask import decide_pull_request
from jobs.reconcile.gather import gather, own_labels, pull_request_ref
from jobs.reconcile.ports import Decider, GitHubPort, GitHubReader
from jobs.reconcile.results import PullRequestFailure, PullRequestResult
from jobs.rules.encoding import StepInputError
from jobs.rules.model import PRReconciliationRule

EX_TEMPFAIL = 75
NOOP_OUTPUT = "-"  # what the no-op item's decide node outputs


def dump_for_argo(value: object) -> str:
    r"""Compact JSON in which no ``{{`` appears, so Argo never reads PR text as one of its tags.

    ``{{`` cannot occur in JSON's own syntax, only inside strings, where ``\u007b`` decodes back
    to ``{``: a title such as ``Use {{pr.number}}`` survives the trip through Argo unchanged.
    """
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return text.replace("{{", "\\u007b\\u007b")


def fetch(
    rule: PRReconciliationRule, repositories: list[str], github: GitHubReader
) -> list[dict[str, Any]]:
    """References to the PRs to decide (small, capped), then the rule's no-op item.

    The no-op item gives the decide fan-out one node that always succeeds: Argo leaves the
    aggregated output of a fan-out unset when every iteration failed, and act would then wait for
    it until the workflow's deadline. Its memo key is fixed per rule, so it starts a pod once.
    """
    refs = [pull_request_ref(rule, pr) for pr in gather(rule, repositories, github)]
    return [*refs, noop_ref(rule)]


def noop_ref(rule: PRReconciliationRule) -> dict[str, Any]:
    """The item that decides nothing (see :func:`fetch`)."""
    return {"display": "(no-op)", "key": f"noop-{rule.spec_hash()}", "noop": True}


def is_noop(ref: Mapping[str, Any]) -> bool:
    """Whether ``ref`` is the no-op item."""
    return ref.get("noop") is True


def decision_output(decision: Decision) -> str:
    """The decide node's output: a line people read in the Argo UI, then the exact decision.

    It is deliberately not JSON: Argo re-serializes JSON outputs when it aggregates them (undoing
    any escaping) and would then substitute Argo variables named in PR text; a plain string is
    passed through as is. The decision itself travels base64-encoded after the last `` | ``.
    """
    payload = base64.b64encode(decision.model_dump_json().encode()).decode()
    reason = " ".join(decision.reason.split())[:160].replace("{{", "{ {")
    guard = f" [{decision.guardrail}]" if decision.guardrail else ""
    return f"{decision.action.value}{guard} {decision.display}: {reason} | {payload}"


def parse_decision_output(text: str) -> Decision | None:
    """Inverse of :func:`decision_output`; None for the no-op item's output."""
    if text.strip() in {"", NOOP_OUTPUT, "{}", "[]"}:
        return None
    _, sep, payload = text.rpartition(" | ")
    if not sep:
        raise StepInputError(f"--decisions holds an item that is no decision: {text[:80]!r}")
    try:
        return Decision.model_validate_json(base64.b64decode(payload, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise StepInputError(f"--decisions holds an invalid decision: {exc}") from exc


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
        return leave_alone(rule, pr, pr.fingerprint(own_labels(rule)), reason)
    return decide_pull_request(rule, pr, ai)


def act_all(
    rule: PRReconciliationRule, decisions: list[Decision], github: GitHubPort, *, dry_run: bool
) -> list[PullRequestResult]:
    """Apply every decision, serialized, each on fresh facts."""
    return [act(rule, decision, github, dry_run=dry_run) for decision in decisions]


def parse_decisions(text: str) -> list[Decision]:
    """The decide step's aggregated outputs: a JSON list of :func:`decision_output` strings.

    Decision objects are read too (one decide node's output is not aggregated), and the no-op
    item's output is skipped.
    """
    try:
        items = json.loads(text) if text.strip() else []
    except json.JSONDecodeError:
        items = [text]  # a single decide node's output, not aggregated
    if not isinstance(items, list):
        items = [items]
    decisions = []
    for item in items:
        decision = _decision_item(item)
        if decision is not None:
            decisions.append(decision)
    return decisions


def _decision_item(item: object) -> Decision | None:
    if isinstance(item, str) and item.lstrip().startswith("{") and item.strip() != "{}":
        try:
            item = json.loads(item)
        except json.JSONDecodeError as exc:
            raise StepInputError(f"--decisions holds an invalid decision: {exc}") from exc
    if isinstance(item, str):
        return parse_decision_output(item)
    if not item:
        return None
    try:
        return Decision.model_validate(item)
    except ValueError as exc:
        raise StepInputError(f"--decisions holds an invalid decision: {exc}") from exc


def parse_ref(text: str) -> dict[str, Any]:
    """The decide step's ``--pr`` argument."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StepInputError(f"--pr is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise StepInputError("--pr must be a JSON object")
    if not is_noop(data):
        _ref_target(data)
    return data


def parse_counts(text: str) -> dict[str, Any]:
    """The act step's counts, as the exit handler reads them.

    Tolerant: when act never ran, Argo passes its unresolved tag as text, which is no counts.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def failed_nodes(text: str) -> int:
    """How many nodes ``{{workflow.failures}}`` lists (JSON quoted twice; ``"null"`` for none)."""
    try:
        data = json.loads(text)
        if isinstance(data, str):
            data = json.loads(data)
    except json.JSONDecodeError:
        return 0
    return len(data) if isinstance(data, list) else 0


def parse_seconds(text: str) -> float:
    """``{{workflow.duration}}`` as a number (0 when Argo could not give one)."""
    try:
        return max(0.0, float(text))
    except ValueError:
        return 0.0


def _ref_target(ref: Mapping[str, Any]) -> tuple[str, int]:
    try:
        return str(ref["repository"]), int(ref["number"])
    except (KeyError, TypeError, ValueError) as exc:
        raise StepInputError(f"pull request reference lacks repository/number: {ref!r}") from exc
