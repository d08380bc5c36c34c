"""One reconciliation pass of one rule: gather, decide, act.

    rule -> search (one query per repository group) -> re-check selector -> snapshot
         -> prompt -> AI verdict -> guardrails -> decision            (in parallel, bounded)
         -> fresh facts -> plan -> apply                              (serialized)

The same stage functions serve ``ai-operator run`` (all stages in one process, here) and the
pipeline's steps (one stage per pod, :mod:`jobs.reconcile.steps`), so both reach the same
decisions. One failing pull request is recorded with its error and the others go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from jobs.clients.github.errors import GitHubError
from jobs.policy.decision import Decision, leave_alone
from jobs.policy.snapshot import PullRequestSnapshot
from jobs.reconcile.act import act
from jobs.reconcile.ask import decide_pull_request
from jobs.reconcile.gather import gather, own_labels
from jobs.reconcile.ports import Decider, GitHubPort
from jobs.reconcile.results import PassReport, PullRequestFailure, PullRequestResult
from jobs.rules.model import PRReconciliationRule

Progress = Callable[[str, PullRequestResult | None], None]


def failure_result(
    rule: PRReconciliationRule, pr: PullRequestSnapshot, exc: PullRequestFailure
) -> PullRequestResult:
    """The row of a pull request whose decision failed: nothing was done to it."""
    no_decision = leave_alone(rule, pr, pr.fingerprint(own_labels(rule)), "no decision")
    return PullRequestResult.of(no_decision, dry_run=False).failed(str(exc), exc.kind)


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
    """Gather, decide (``parallelism`` at a time) and act (serialized) for one rule."""
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
            row = act(rule, outcome, github, dry_run=dry_run, just_read=pr)
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
