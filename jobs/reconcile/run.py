"""One reconciliation pass of one rule: gather, decide, act.

    rule -> search (one query per repository group) -> re-check selector -> snapshot
         -> triage: reuse an unchanged PR's remembered decision; ask about at most the cap,
            least recently decided first; defer the rest                (jobs.policy.reuse)
         -> prompt -> AI verdict -> guardrails -> decision            (in parallel, bounded)
         -> fresh facts -> plan -> gate -> apply                      (serialized)

The gate (:mod:`jobs.reconcile.gate`) spends the pass's write budget plan by plan, in the order
the plans are carried out: a plan that does not fit, or any plan while writes are paused or
GitHub asked to wait, is deferred whole and recorded so (its pull request goes first next pass).
A pass that starts paused asks the model nothing: every pull request is deferred.

A reused decision is acted on exactly like a fresh one: planned, and its guardrails checked, on
the facts read in this pass. The same stage functions serve ``ai-operator run`` (all stages in one
process, here) and the pipeline's steps (one stage per pod, :mod:`jobs.reconcile.steps`), so both
reach the same decisions. One failing pull request is recorded with its error and the others go
on; a memory that cannot be written is logged and costs only model calls in a later pass.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from ai_operator.jobs.clients.ai.usage import ModelUsage
from ai_operator.jobs.clients.decision_cache import DecisionCacheError
from ai_operator.jobs.clients.github.errors import GitHubError
from ai_operator.jobs.log import get_logger
from ai_operator.jobs.policy.admission import Scope
from ai_operator.jobs.policy.decision import Decision, leave_alone
from ai_operator.jobs.policy.outcome import (
    armed_elsewhere,
    outcome_records,
    reacted,
    shadow_records,
)
from ai_operator.jobs.policy.reuse import Remembered, Triage
from ai_operator.jobs.policy.shadow import shadowing, with_decisions
from ai_operator.jobs.policy.snapshot import PullRequestSnapshot
from ai_operator.jobs.reconcile.act import act
from ai_operator.jobs.reconcile.argocd import ApplicationHealth
from ai_operator.jobs.reconcile.ask import decide_pull_request
from ai_operator.jobs.reconcile.gate import WriteGate
from ai_operator.jobs.reconcile.gather import gather, sort_out
from ai_operator.jobs.reconcile.ports import ArgoCDReader, Decider, DecisionMemory, GitHubPort
from ai_operator.jobs.reconcile.results import PassReport, PullRequestFailure, PullRequestResult
from ai_operator.jobs.reconcile.shadow import Sweep, settle_recorded
from ai_operator.jobs.rules.model import PRReconciliationRule

Progress = Callable[[str, PullRequestResult | None], None]

DEFAULT_PARALLELISM = 16
"""Decisions asked at once: 100 PRs at 200 ms of model latency take about 2 s, not 20."""


@dataclass(frozen=True)
class Reuse:
    """How a pass reuses decisions: where they are remembered, for how long, under which model."""

    memory: DecisionMemory
    model: str
    """``provider/model`` (:func:`jobs.config.model_identity`): another model decides anew."""
    max_age_seconds: float
    wall_clock: Callable[[], float] = time.time


def failure_result(
    rule: PRReconciliationRule, pr: PullRequestSnapshot, exc: PullRequestFailure
) -> PullRequestResult:
    """The row of a pull request whose decision failed: nothing was done to it."""
    no_decision = leave_alone(rule, pr, pr.fingerprint(), "no decision")
    row = PullRequestResult.of(no_decision, dry_run=False)
    return row.failed(str(exc), exc.kind, retryable=exc.retryable)


def run_pass(
    rule: PRReconciliationRule,
    repositories: Sequence[str],
    github: GitHubPort,
    ai: Decider,
    *,
    dry_run: bool,
    parallelism: int = DEFAULT_PARALLELISM,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.monotonic,
    reuse: Reuse | None = None,
    gate: WriteGate | None = None,
    argocd: ArgoCDReader | None = None,
) -> PassReport:
    """Gather, triage, decide (``parallelism`` at a time) and act (serialized) for one rule.

    Acting starts as soon as the first decision is made, one PR at a time, in the order asked.

    Without ``reuse`` nothing is remembered: every matching PR within the cap is asked about.
    ``gate`` holds the pass's writes to its budget and the pause (without it, nothing waits).
    With ``argocd``, a rule with ``argocdEnabled`` reads each application's status once.
    """
    started = clock()
    report = PassReport(rule=rule.qualified_name)
    try:
        prs = gather(rule, repositories, github)
    except GitHubError as exc:
        report.error = f"searching pull requests failed: {exc}"
        report.duration_seconds = clock() - started
        return report
    health = ApplicationHealth(argocd)
    prs = health.annotate(rule, prs)
    report.argocd_errors = dict(health.errors)
    now = reuse.wall_clock() if reuse else time.time()
    paused = gate is not None and gate.paused
    if shadowing(rule.spec):
        report.shadow = _settle(rule, github, reuse, now)
    split = _triage(rule, prs, reuse, now, cap=0 if paused else rule.spec.maxPullRequests)
    report.matched, report.deferred = split.matched, len(split.deferred)
    report.paused = paused
    if progress:
        progress(_progress_line(rule, split), None)
    rows: dict[str, PullRequestResult] = {}
    outcomes: list[Decision | PullRequestResult] = []
    scope = Scope(tuple(repositories))  # act admits only decisions about these
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        asked = [pool.submit(_decide_metered, rule, c.pr, ai, clock) for c in split.ask]
        # Acting is serialized, but starts with the first decision: it overlaps the asking.
        for candidate in split.reuse:
            decision = candidate.remembered.decision if candidate.remembered else None
            if decision is not None:
                row = act(
                    rule,
                    decision,
                    github,
                    dry_run=dry_run,
                    just_read=candidate.pr,
                    scope=scope,
                    gate=gate,
                )
                rows[candidate.pr.display] = row.metered(ModelUsage(), 0.0, reused=True)
        for candidate, future in zip(split.ask, asked, strict=True):
            outcome, usage, latency = future.result()
            outcomes.append(outcome)
            row = _act_on(rule, outcome, candidate.pr, github, dry_run, scope, gate)
            rows[candidate.pr.display] = row.metered(usage, latency, reused=False)
    kept = _keep(rule, reuse, split, outcomes, rows, github, now)
    if report.shadow is not None:
        rows = {name: row.in_shadow() for name, row in rows.items()}
        report.shadow_recorded = dict(
            Counter(r.decision.action.value for r in kept.values() if r.decision)
        )
        report.shadow = replace(
            report.shadow, score=with_decisions(report.shadow.score, report.shadow_recorded)
        )
    for pr in prs:  # the report keeps the search's order
        if pr.display in rows:
            report.results.append(rows[pr.display])
            if progress:
                progress(rule.qualified_name, rows[pr.display])
    report.results.extend(_disarm_left(rule, prs, github, reuse, dry_run, scope, now))
    report.duration_seconds = clock() - started
    return report


def _triage(
    rule: PRReconciliationRule,
    prs: Sequence[PullRequestSnapshot],
    reuse: Reuse | None,
    now: float,
    *,
    cap: int,
) -> Triage:
    remembered = reuse.memory.recall(rule.qualified_name) if reuse else {}
    return sort_out(
        rule,
        prs,
        remembered,
        model=reuse.model if reuse else "",
        now=now,
        max_age=reuse.max_age_seconds if reuse else -1.0,  # nothing is reusable without memory
        cap=cap,
        memory_ok=reuse is not None,
    )


def _keep(
    rule: PRReconciliationRule,
    reuse: Reuse | None,
    split: Triage,
    outcomes: Sequence[Decision | PullRequestResult],
    rows: Mapping[str, PullRequestResult],
    github: GitHubPort,
    now: float,
) -> dict[str, Remembered]:
    """Record the decisions just made and what was applied (:mod:`jobs.policy.outcome`).

    Failures and fallbacks are not recorded: they are asked again. A decision whose act failed
    is recorded with what was applied: the next pass acts on it again, on fresh facts. A reused
    decision whose writes had waited is recorded again with what this act did (:func:`reacted`).
    A shadow pass's records are marked so, with their decision to settle later. The records kept.
    """
    if reuse is None:
        return {}
    decided = [outcome for outcome in outcomes if isinstance(outcome, Decision)]
    keys = {candidate.pr.display: candidate.key for candidate in split.ask}
    applied = {name: row.operations for name, row in rows.items()}
    github_ids = {name: row.github_ids for name, row in rows.items() if row.github_ids}
    try:
        actor: str | None = github.viewer_login()
    except GitHubError:
        actor = None
    try:
        waited = {name for name, row in rows.items() if row.deferred}
        records = outcome_records(
            decided, keys, applied, actor=actor, now=now, github_ids=github_ids, deferred=waited
        )
        not_acted = {name for name, row in rows.items() if row.error or row.dry_run}
        records |= reacted(
            split.reuse,
            applied,
            actor=actor,
            github_ids=github_ids,
            deferred=waited,
            not_acted=not_acted,
        )
        if shadowing(rule.spec):
            records = shadow_records(records, now=now)
        reuse.memory.keep(rule.qualified_name, records)
    except DecisionCacheError as exc:
        get_logger("run", rule=rule.qualified_name).warning(
            "decisions not remembered", error=str(exc)
        )
        return {}
    return records


def _settle(
    rule: PRReconciliationRule, github: GitHubPort, reuse: Reuse | None, now: float
) -> Sweep:
    """A shadow pass first settles the decisions recorded earlier (:mod:`jobs.reconcile.shadow`)."""
    if reuse is None:
        get_logger("run", rule=rule.qualified_name).warning(
            "shadow mode without a memory (--no-cache): decisions are neither recorded nor scored"
        )
        return Sweep()
    remembered = reuse.memory.recall(rule.qualified_name)
    return settle_recorded(rule.qualified_name, remembered, github, reuse.memory, now=now)


def _disarm_left(
    rule: PRReconciliationRule,
    prs: Sequence[PullRequestSnapshot],
    github: GitHubPort,
    reuse: Reuse | None,
    dry_run: bool,
    scope: Scope,
    now: float,
) -> list[PullRequestResult]:
    """Pull requests the operator queued or armed that the search no longer finds.

    Each is read afresh and planned again: one that left the rule is disarmed (what the
    operator's token armed only), one merged or closed meanwhile gets nothing. Its record is
    kept with what this act applied, so it is read once, not every pass. Rows with nothing done
    are left out of the report: the rule does not cover those pull requests.
    """
    if reuse is None:
        return []
    seen = {pr.display for pr in prs}
    left = armed_elsewhere(reuse.memory.recall(rule.qualified_name), seen)
    rows, kept = [], {}
    for record in left:
        assert record.decision is not None  # armed_elsewhere keeps only decided records
        row = act(rule, record.decision, github, dry_run=dry_run, scope=scope)
        if row.operations or row.error:
            rows.append(row)
        if not row.error and not dry_run:
            kept[record.decision.display] = replace(
                record, applied=row.operations, github_ids=row.github_ids, decided_at=now
            )
    try:
        reuse.memory.keep(rule.qualified_name, kept)
    except DecisionCacheError as exc:
        get_logger("run", rule=rule.qualified_name).warning(
            "decisions not remembered", error=str(exc)
        )
    return rows


def _act_on(
    rule: PRReconciliationRule,
    outcome: Decision | PullRequestResult,
    pr: PullRequestSnapshot,
    github: GitHubPort,
    dry_run: bool,
    scope: Scope,
    gate: WriteGate | None,
) -> PullRequestResult:
    if isinstance(outcome, Decision):
        return act(rule, outcome, github, dry_run=dry_run, just_read=pr, scope=scope, gate=gate)
    return outcome


def _progress_line(rule: PRReconciliationRule, split: Triage) -> str:
    return (
        f"{rule.qualified_name}: {split.matched} pull requests: {len(split.ask)} to decide, "
        f"{len(split.reuse)} reused, {len(split.deferred)} deferred"
    )


def _decide_metered(
    rule: PRReconciliationRule, pr: PullRequestSnapshot, ai: Decider, clock: Callable[[], float]
) -> tuple[Decision | PullRequestResult, ModelUsage, float]:
    """Decide, and measure what it cost: this thread's model usage and the time taken."""
    started, before = clock(), ai.thread_usage()
    outcome = _decide_safely(rule, pr, ai)
    return outcome, ai.thread_usage() - before, clock() - started


def _decide_safely(
    rule: PRReconciliationRule, pr: PullRequestSnapshot, ai: Decider
) -> Decision | PullRequestResult:
    try:
        return decide_pull_request(rule, pr, ai)
    except PullRequestFailure as exc:
        return failure_result(rule, pr, exc)
