"""Act: re-read the pull request, plan on fresh facts, and apply the plan unless a dry run.

The guardrails run again on the facts read just before acting, and the merge itself carries
``expectedHeadOid``; :mod:`jobs.reconcile.apply` is the only module that changes GitHub.
A failure becomes the row's error, never an exception.
"""

from __future__ import annotations

from dataclasses import replace

from jobs.clients.github.errors import GitHubError
from jobs.policy.decision import Decision
from jobs.policy.plan import plan
from jobs.policy.snapshot import PullRequestSnapshot
from jobs.reconcile.apply import apply_plan
from jobs.reconcile.ports import GitHubPort
from jobs.reconcile.results import PullRequestResult
from jobs.rules.model import Action, PRReconciliationRule


def act(
    rule: PRReconciliationRule,
    decision: Decision,
    github: GitHubPort,
    *,
    dry_run: bool,
    just_read: PullRequestSnapshot | None = None,
) -> PullRequestResult:
    """Re-read the PR, plan on fresh facts, and apply unless ``dry_run``.

    ``just_read`` are facts read moments ago in the same pass: when they already leave nothing
    to do (say, an escalation whose labels and comment are there), the fresh read is spared.
    """
    row = PullRequestResult.of(decision, dry_run=dry_run)
    if decision.action is Action.WAIT:
        return row
    if just_read is not None:
        settled = plan(rule, decision, just_read)
        if not settled.operations:
            return row.with_action(settled.action, settled.guardrail, settled.guardrail_reason)
    try:
        fresh = github.pull_request(decision.repository, decision.number)
    except GitHubError as exc:
        return row.failed(f"reading fresh state failed: {exc}", "github")
    the_plan = plan(rule, decision, fresh)
    row = row.with_action(the_plan.action, the_plan.guardrail, the_plan.guardrail_reason)
    if dry_run or not the_plan.operations:
        return row
    outcome = apply_plan(github, the_plan)
    row = replace(row, operations=outcome.applied, applied=bool(outcome.applied))
    return row if outcome.ok else row.failed(outcome.error or "", "github")
