"""Act: re-read the pull request, plan on fresh facts, and apply the plan unless a dry run.

First of all the decision must be one the rule could make (:mod:`jobs.policy.admission`): in
the pipeline it arrives from another pod, so a decision for a repository, an action or labels
outside the rule is refused as the row's error before anything is read or written.

The guardrails and the selector run again on the facts read just before acting, and the merge
itself carries ``expectedHeadOid``; :mod:`jobs.reconcile.apply` is the only module that changes
GitHub, and it is reached from here only when the pass writes: never in a dry run, never for a
rule in shadow mode (``spec.mode: Shadow``, :mod:`jobs.policy.shadow`), whatever the caller
says. Any failure, expected or not, becomes the row's error, never an exception: one pull request
never stops the others.
"""

from __future__ import annotations

from dataclasses import replace

from ai_operator.jobs.clients.github.errors import GitHubAuthError, GitHubError
from ai_operator.jobs.policy.admission import Scope, admission_problems
from ai_operator.jobs.policy.decision import Decision
from ai_operator.jobs.policy.plan import plan
from ai_operator.jobs.policy.shadow import shadowing
from ai_operator.jobs.policy.snapshot import PullRequestSnapshot
from ai_operator.jobs.reconcile.apply import apply_plan
from ai_operator.jobs.reconcile.gate import WriteGate
from ai_operator.jobs.reconcile.ports import GitHubPort
from ai_operator.jobs.reconcile.results import PullRequestResult
from ai_operator.jobs.rules.model import Action, PRReconciliationRule


def act(
    rule: PRReconciliationRule,
    decision: Decision,
    github: GitHubPort,
    *,
    dry_run: bool,
    just_read: PullRequestSnapshot | None = None,
    scope: Scope | None = None,
    gate: WriteGate | None = None,
) -> PullRequestResult:
    """Re-read the PR, plan on fresh facts, and apply unless ``dry_run``.

    ``just_read`` are facts read moments ago in the same pass: when they already leave nothing
    to do (say, an escalation whose labels and comment are there), the fresh read is spared.
    ``scope`` is what the rule may touch; without it the repository is not checked (the pass
    gathered the pull request itself). ``gate`` decides whether the writes may happen in this
    pass (:mod:`jobs.reconcile.gate`); a plan it holds back is the row's ``deferred``.
    """
    return act_seeing(
        rule, decision, github, dry_run=dry_run, just_read=just_read, scope=scope, gate=gate
    )[0]


def act_seeing(
    rule: PRReconciliationRule,
    decision: Decision,
    github: GitHubPort,
    *,
    dry_run: bool,
    just_read: PullRequestSnapshot | None = None,
    scope: Scope | None = None,
    gate: WriteGate | None = None,
    undo: bool = False,
) -> tuple[PullRequestResult, PullRequestSnapshot | None]:
    """Like :func:`act`, and the facts it planned on (None when it read none: a wait).

    ``undo``: the decision is a wait whose plan still had something to do when it was made (the
    operator's auto-merge or queue entry on a PR that no longer passes the rule): it is planned
    on fresh facts, which disarm what the operator armed, instead of being skipped.
    """
    # The one gate of shadow mode: such a rule plans like any other, and nothing is written.
    shadow = shadowing(rule.spec)
    dry_run = dry_run or shadow
    row = PullRequestResult.of(decision, dry_run=dry_run)
    if shadow:
        row = row.in_shadow()
    refused = admission_problems(rule, decision, scope)
    if refused:
        return row.failed(f"refused: {'; '.join(refused)}", "guardrail"), None
    if decision.action is Action.WAIT and not undo:
        return row, just_read
    seen: list[PullRequestSnapshot] = []
    try:
        row = _act(
            rule, decision, github, row, dry_run=dry_run, just_read=just_read, seen=seen, gate=gate
        )
    except Exception as exc:  # a fault of this pull request's act is its row's error
        row = row.failed(f"acting failed: {type(exc).__name__}: {exc}", "internal")
    return row, seen[-1] if seen else None


def _act(
    rule: PRReconciliationRule,
    decision: Decision,
    github: GitHubPort,
    row: PullRequestResult,
    *,
    dry_run: bool,
    just_read: PullRequestSnapshot | None,
    seen: list[PullRequestSnapshot],
    gate: WriteGate | None = None,
) -> PullRequestResult:
    if just_read is not None:
        settled = plan(rule, decision, just_read)
        if not settled.operations:
            seen.append(just_read)
            return row.with_action(
                settled.action, settled.guardrail, settled.guardrail_reason, route=settled.route
            )
    try:
        fresh = github.pull_request(decision.repository, decision.number)
    except GitHubError as exc:
        kind = "auth" if isinstance(exc, GitHubAuthError) else "github"
        return row.failed(f"reading fresh state failed: {exc}", kind, retryable=exc.retryable)
    seen.append(fresh)
    the_plan = plan(rule, decision, fresh)
    row = row.with_action(
        the_plan.action, the_plan.guardrail, the_plan.guardrail_reason, route=the_plan.route
    )
    if dry_run or not the_plan.operations:
        return row
    outcome = apply_plan(github, the_plan, gate)
    row = replace(
        row,
        operations=outcome.applied,
        applied=bool(outcome.applied),
        github_ids=outcome.github_ids,
        deferred=outcome.deferred.value if outcome.deferred else None,
    )
    if outcome.ok:
        return row
    return row.failed(outcome.error or "", "github", retryable=outcome.error_retryable)
