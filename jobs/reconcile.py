"""One reconciliation pass of one rule: gather, decide, act.

    rule -> search (one query per repository group) -> re-check selector -> snapshot
         -> prompt -> AI verdict -> guardrails -> decision            (in parallel, bounded)
         -> fresh facts -> plan -> apply                              (serialized)

The same functions serve ``ai-operator run`` (all stages in one process) and the pipeline's steps
(one stage per pod), so both reach the same decisions. One failing pull request is recorded with
its error and the others go on.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from jobs.apply import GitHubWriter, apply_plan
from jobs.clients.ai.errors import AIError, AIResponseInvalid
from jobs.clients.github.errors import GitHubError
from jobs.model import Action, PRReconciliationRule, Selector
from jobs.policy.decision import Decision, decide, plan
from jobs.policy.prompt import PromptError, build_prompt
from jobs.policy.selection import covers
from jobs.policy.verdict import InvalidVerdict, Verdict, parse_verdict, verdict_schema
from jobs.snapshot import PullRequestSnapshot

SEARCH_HEADROOM = 50  # candidates beyond the cap, for those the re-check drops


class GitHubReader(Protocol):
    """The GitHub client's reads, as a pass uses them."""

    def search_pull_requests(
        self, repositories: Sequence[str], selector: Selector, limit: int
    ) -> list[PullRequestSnapshot]:
        """Candidates from GitHub's search."""

    def pull_request(self, repository: str, number: int) -> PullRequestSnapshot:
        """Fresh facts of one pull request."""


class GitHubPort(GitHubReader, GitHubWriter, Protocol):
    """Everything a pass needs from GitHub."""


class Decider(Protocol):
    """An AI decision client."""

    def ask(self, system: str, user: str, schema: dict[str, Any]) -> object:
        """The model's decoded JSON answer."""


class PullRequestFailure(Exception):
    """Deciding or acting on one pull request failed; ``retryable`` if a later try may work."""

    def __init__(self, message: str, *, kind: str, retryable: bool) -> None:
        super().__init__(message)
        self.kind = kind  # "github" | "ai" | "template"
        self.retryable = retryable


@dataclass(frozen=True)
class PullRequestResult:
    """What a pass did about one pull request: the report's row."""

    rule: str
    repository: str
    number: int
    title: str = ""
    url: str = ""
    headOid: str = ""
    action: Action = Action.WAIT
    proposed: Action | None = None
    reason: str = ""
    applied: bool = False
    operations: tuple[str, ...] = ()
    guardrail: str | None = None
    guardrailReason: str | None = None
    fallback: bool = False
    dryRun: bool = False
    error: str | None = None
    errorKind: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The row as a JSON object (``--output json``)."""
        return {
            "rule": self.rule,
            "repository": self.repository,
            "number": self.number,
            "title": self.title,
            "url": self.url,
            "headOid": self.headOid,
            "action": self.action.value,
            "proposedAction": self.proposed.value if self.proposed else None,
            "reason": self.reason,
            "applied": self.applied,
            "operations": list(self.operations),
            "guardrail": self.guardrail,
            "guardrailReason": self.guardrailReason,
            "fallback": self.fallback,
            "dryRun": self.dryRun,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PullRequestResult:
        """Inverse of :meth:`to_json`."""
        proposed = data.get("proposedAction")
        return cls(
            rule=data["rule"],
            repository=data["repository"],
            number=int(data["number"]),
            title=data.get("title", ""),
            url=data.get("url", ""),
            headOid=data.get("headOid", ""),
            action=Action(data.get("action", "wait")),
            proposed=Action(proposed) if proposed else None,
            reason=data.get("reason", ""),
            applied=bool(data.get("applied")),
            operations=tuple(data.get("operations", ())),
            guardrail=data.get("guardrail"),
            guardrailReason=data.get("guardrailReason"),
            fallback=bool(data.get("fallback")),
            dryRun=bool(data.get("dryRun")),
            error=data.get("error"),
            errorKind=data.get("errorKind"),
        )


@dataclass
class PassReport:
    """Everything one pass of one rule did."""

    rule: str
    results: list[PullRequestResult] = field(default_factory=list)
    error: str | None = None  # the pass itself failed (e.g. the search)
    duration_seconds: float = 0.0

    @property
    def failed(self) -> list[PullRequestResult]:
        """Rows with an error."""
        return [r for r in self.results if r.error]

    @property
    def ok(self) -> bool:
        """Whether the pass and every pull request in it succeeded."""
        return self.error is None and not self.failed


# --- gather ----------------------------------------------------------------------------------


def ignored_labels(rule: PRReconciliationRule) -> frozenset[str]:
    """Labels left out of fingerprints: the ones this rule's own escalation adds."""
    escalation = rule.spec.escalation
    return frozenset([*escalation.labels, *escalation.optionalLabels])


def gather(
    rule: PRReconciliationRule, repositories: Sequence[str], github: GitHubReader
) -> list[PullRequestSnapshot]:
    """The open pull requests the rule covers, re-checked and capped (raises GitHubError)."""
    cap = rule.spec.maxPullRequests
    candidates = github.search_pull_requests(
        repositories, rule.spec.selector, min(1000, cap + SEARCH_HEADROOM)
    )
    covered = [pr for pr in candidates if covers(pr, rule.spec.selector)]
    return sorted(covered, key=lambda pr: (pr.repository, pr.number))[:cap]


def pull_request_ref(rule: PRReconciliationRule, pr: PullRequestSnapshot) -> dict[str, Any]:
    """The pipeline's reference to ``pr``: small, with a memoization key and a display name."""
    ref = pr.ref(ignored_labels(rule))
    digest = hashlib.sha256(
        f"{rule.spec_hash()}|{ref.repository}|{ref.number}|{ref.fingerprint}".encode()
    ).hexdigest()[:24]
    return {**ref.model_dump(), "key": f"d-{digest}", "display": ref.display}


# --- decide ----------------------------------------------------------------------------------


def ask(
    rule: PRReconciliationRule, pr: PullRequestSnapshot, ai: Decider
) -> Verdict | InvalidVerdict:
    """The model's verdict on ``pr``; an unusable answer is an InvalidVerdict.

    Raises :class:`PullRequestFailure` when the template cannot render or the model cannot be
    asked at all (unreachable, refused credentials): those are no answer about this PR, and a
    later pass asks again.
    """
    try:
        prompt = build_prompt(rule.spec, pr)
    except PromptError as exc:
        raise PullRequestFailure(str(exc), kind="template", retryable=False) from exc
    permitted = rule.spec.permitted_actions
    try:
        answer = ai.ask(prompt.system, prompt.user, verdict_schema(permitted))
    except AIResponseInvalid as exc:
        return InvalidVerdict(problem=str(exc))
    except AIError as exc:
        raise PullRequestFailure(f"AI: {exc}", kind="ai", retryable=exc.retryable) from exc
    return parse_verdict(answer, permitted)


def decide_pull_request(
    rule: PRReconciliationRule, pr: PullRequestSnapshot, ai: Decider
) -> Decision:
    """Ask the model about ``pr`` and pass its answer through the guardrails."""
    fingerprint = pr.fingerprint(ignored_labels(rule))
    return decide(rule, pr, ask(rule, pr, ai), fingerprint)


# --- act -------------------------------------------------------------------------------------


def act(
    rule: PRReconciliationRule,
    decision: Decision,
    github: GitHubPort,
    *,
    dry_run: bool,
    known: PullRequestSnapshot | None = None,
) -> PullRequestResult:
    """Re-read the PR, plan on fresh facts, and apply unless ``dry_run``.

    ``known`` are facts read moments ago in the same pass: when they already leave nothing to do
    (say, an escalation whose labels and comment are there), the fresh read is spared.
    """
    base = _result_from(decision, dry_run)
    if decision.action is Action.WAIT:
        return base
    if known is not None:
        settled = plan(rule, decision, known)
        if not settled.operations:
            return _with_plan(base, settled.action, settled.guardrail, settled.guardrail_reason)
    try:
        fresh = github.pull_request(decision.repository, decision.number)
    except GitHubError as exc:
        return _failed(base, f"reading fresh state failed: {exc}", "github")
    the_plan = plan(rule, decision, fresh)
    result = _with_plan(base, the_plan.action, the_plan.guardrail, the_plan.guardrail_reason)
    if dry_run or not the_plan.operations:
        return result
    outcome = apply_plan(github, the_plan)
    result = replace(result, operations=outcome.applied, applied=bool(outcome.applied))
    return result if outcome.ok else _failed(result, outcome.error or "", "github")


def _result_from(decision: Decision, dry_run: bool) -> PullRequestResult:
    return PullRequestResult(
        rule=decision.rule,
        repository=decision.repository,
        number=decision.number,
        title=decision.title,
        url=decision.url,
        headOid=decision.headOid,
        action=decision.action,
        proposed=decision.proposed,
        reason=decision.reason,
        guardrail=decision.guardrail,
        guardrailReason=decision.guardrailReason,
        fallback=decision.fallback,
        dryRun=dry_run,
    )


def _with_plan(
    result: PullRequestResult, action: Action, guardrail: str | None, why: str | None
) -> PullRequestResult:
    return replace(result, action=action, guardrail=guardrail, guardrailReason=why)


def _failed(result: PullRequestResult, message: str, kind: str) -> PullRequestResult:
    return replace(result, error=message, errorKind=kind)


def failure_result(
    rule: PRReconciliationRule, pr: PullRequestSnapshot, exc: PullRequestFailure
) -> PullRequestResult:
    """The row of a pull request whose decision failed: nothing was done to it."""
    return PullRequestResult(
        rule=rule.qualified_name,
        repository=pr.repository,
        number=pr.number,
        title=pr.title,
        headOid=pr.head_oid,
        reason="no decision",
        error=str(exc),
        errorKind=exc.kind,
    )


# --- the whole pass --------------------------------------------------------------------------


Progress = Callable[[str, PullRequestResult | None], None]


def run_pass(
    rule: PRReconciliationRule,
    repositories: Sequence[str],
    github: GitHubPort,
    ai: Decider,
    *,
    dry_run: bool,
    parallelism: int = 4,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> PassReport:
    """Gather, decide (in parallel) and act (serialized) for one rule."""
    started = clock()
    report = PassReport(rule=rule.qualified_name)
    try:
        prs = gather(rule, repositories, github)
    except GitHubError as exc:
        report.error = f"searching pull requests failed: {exc}"
        report.duration_seconds = clock() - started
        return report
    if progress:
        progress(f"{rule.qualified_name}: {len(prs)} pull requests", None)
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        outcomes = list(pool.map(lambda pr: _decide_safely(rule, pr, ai), prs))
    for pr, outcome in zip(prs, outcomes, strict=True):
        if isinstance(outcome, Decision):
            row = act(rule, outcome, github, dry_run=dry_run, known=pr)
        else:
            row = outcome
        report.results.append(row)
        if progress:
            progress(rule.qualified_name, row)
    report.duration_seconds = clock() - started
    return report


def _decide_safely(
    rule: PRReconciliationRule, pr: PullRequestSnapshot, ai: Decider
) -> Decision | PullRequestResult:
    try:
        return decide_pull_request(rule, pr, ai)
    except PullRequestFailure as exc:
        return failure_result(rule, pr, exc)
