"""Hard safety rules applied after the AI, whatever it answered. Pure.

Never broken:
- nothing is done to a pull request that is no longer open, whose head is not the commit that
  was decided on, or that no longer meets every condition of the rule's selector;
- only the actions the rule allows can happen (``wait`` is always possible);
- no merge unless the PR is not a draft, mergeable, GitHub's merge state lets it through, its
  checks passed, no change was requested, and the repository allows the rule's merge method;
  with ``merge.strategy: AutoMerge`` checks may still be running (GitHub's own gate then holds
  the merge until its required checks pass), but never when a check has failed;
- ``update`` only for a branch that is behind its base and would otherwise be mergeable.

Checks are read as GitHub's merge gate reads them: of several runs of one check, the latest
counts; a head on which no check actually ran (none at all, or each skipped or neutral) has not
passed unless the rule allows merging without checks.

A blocked action becomes ``escalate``, or ``wait`` when waiting may clear the block (checks or
required checks still running, mergeability or merge state being computed, the branch behind its
base) and when the rule does not allow escalation. The name of the guardrail that changed the
action is kept with the decision.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ai_operator.jobs.policy.selection import selection_problems
from ai_operator.jobs.policy.snapshot import (
    Check,
    CiStatus,
    Mergeable,
    PullRequestSnapshot,
    PullRequestState,
)
from ai_operator.jobs.rules.model import Action, MergeStrategy, RuleSpec

PASSING_CONCLUSIONS = frozenset({"SUCCESS", "NEUTRAL", "SKIPPED"})
RAN_CONCLUSIONS = frozenset({"SUCCESS"})  # NEUTRAL and SKIPPED pass, but nothing was tested
GITHUB_GATE_HOLDS = frozenset(
    {"checks-pending", "required-checks-pending", "required-checks-not-reported"}
)
"""Blocks GitHub's own auto-merge gate holds the merge for: with ``AutoMerge`` they do not stop
arming it (GitHub merges once its required checks pass)."""


@dataclass(frozen=True)
class Block:
    """A guardrail that refused an action: its name, why, and whether waiting may clear it."""

    guardrail: str
    reason: str
    transient: bool = False


@dataclass(frozen=True)
class Guarded:
    """The action that may happen, and the block that changed it, if any."""

    action: Action
    block: Block | None = None


@dataclass(frozen=True)
class Gate:
    """One safety rule of a merge on one pull request: held (with on what), or its block."""

    name: str
    held: str
    """What it held on (read when ``block`` is None)."""
    block: Block | None = None


def merge_blocks(pr: PullRequestSnapshot, spec: RuleSpec, decided_head: str) -> list[Block]:
    """Every reason ``pr`` must not be merged now; empty when merging is safe."""
    blocks = [gate.block for gate in merge_gates(pr, spec, decided_head) if gate.block is not None]
    if spec.merge.strategy is MergeStrategy.AUTO_MERGE:
        failed = _failed_check_block(pr)
        blocks = [b for b in blocks if b.guardrail not in GITHUB_GATE_HOLDS]
        blocks = [failed, *blocks] if failed and failed not in blocks else blocks
    return blocks


def merge_gates(pr: PullRequestSnapshot, spec: RuleSpec, decided_head: str) -> tuple[Gate, ...]:
    """Every safety rule of a merge, in the order :func:`merge_blocks` reads them."""
    checks = latest_checks(pr.checks)
    passed = ", ".join(sorted(c.name for c in checks)) or "none required (allowWithoutChecks)"
    return (
        Gate("open", "the pull request is open", _state_block(pr)),
        Gate("head", f"the head is {decided_head[:12]}", _head_block(pr, decided_head)),
        Gate(
            "draft",
            "not a draft",
            Block("draft", "the pull request is a draft") if pr.is_draft else None,
        ),
        Gate("checks", f"checks passed: {passed}", _checks_block(pr, spec)),
        Gate("mergeable", "no merge conflict", _mergeable_block(pr)),
        Gate(
            "reviews",
            "no change requested",
            Block("changes-requested", "a reviewer requested changes")
            if pr.changes_requested
            else None,
        ),
        Gate(
            "merge-method",
            f"the repository allows {spec.mergeMethod.value} merges",
            _merge_method_block(pr, spec),
        ),
        Gate(
            "merge-state",
            f"GitHub's merge state is {pr.merge_state_status}",
            _merge_state_block(pr, spec),
        ),
    )


def update_blocks(pr: PullRequestSnapshot, spec: RuleSpec, decided_head: str) -> list[Block]:
    """Every reason ``pr``'s branch must not be updated now; empty when it may be.

    Only a branch behind its base, and only when being behind is all that keeps it from merging.
    """
    if pr.merge_state_status != "BEHIND":
        reason = "the branch is not behind its base branch: there is nothing to update"
        return [Block("not-behind", reason, transient=True)]
    return [b for b in merge_blocks(pr, spec, decided_head) if b.guardrail != "branch-behind"]


def guard(pr: PullRequestSnapshot, spec: RuleSpec, wanted: Action, decided_head: str) -> Guarded:
    """The action that may happen to ``pr`` when ``wanted`` was decided for ``decided_head``."""
    if wanted is Action.WAIT:
        return Guarded(Action.WAIT)
    stale = _stale_blocks(pr, spec, decided_head)
    if stale:
        # Nothing is done to a PR that is closed, moved on, or left the rule; the next pass
        # decides anew.
        return Guarded(Action.WAIT, stale[0])
    if wanted not in spec.permitted_actions:
        block = Block("action-not-allowed", f"the rule does not allow {wanted.value}")
        return Guarded(blocked_action(spec, block), block)
    blocks = []
    if wanted is Action.MERGE:
        blocks = merge_blocks(pr, spec, decided_head)
    elif wanted is Action.UPDATE:
        blocks = update_blocks(pr, spec, decided_head)
    if not blocks:
        return Guarded(wanted)
    block = _most_telling(blocks)
    return Guarded(blocked_action(spec, block), block)


def blocked_action(spec: RuleSpec, block: Block) -> Action:
    """What a blocked action becomes: wait for a transient block, else escalate if allowed."""
    if block.transient or Action.ESCALATE not in spec.permitted_actions:
        return Action.WAIT
    return Action.ESCALATE


def latest_checks(checks: Iterable[Check]) -> list[Check]:
    """One run per check name, the latest (a re-run supersedes the run before it)."""
    latest: dict[str, tuple[int, Check]] = {}
    for position, check in enumerate(checks):
        kept = latest.get(check.name)
        if kept is None or _newer(check, position, *kept):
            latest[check.name] = (position, check)
    return [check for _, check in sorted(latest.values(), key=lambda item: item[0])]


def _newer(check: Check, position: int, kept_position: int, kept: Check) -> bool:
    if check.started_at and kept.started_at and check.started_at != kept.started_at:
        return check.started_at > kept.started_at
    return position > kept_position


def _stale_blocks(pr: PullRequestSnapshot, spec: RuleSpec, decided_head: str) -> list[Block]:
    blocks = [_state_block(pr), _head_block(pr, decided_head), _selection_block(pr, spec)]
    return [b for b in blocks if b is not None]


def _state_block(pr: PullRequestSnapshot) -> Block | None:
    if pr.state is PullRequestState.OPEN:
        return None
    return Block("not-open", f"the pull request is {pr.state.value.lower()}", transient=True)


def _head_block(pr: PullRequestSnapshot, decided_head: str) -> Block | None:
    if pr.head_oid == decided_head:
        return None
    return Block(
        "head-moved",
        f"the head moved from {decided_head[:12]} to {pr.head_oid[:12]} after the decision",
        transient=True,
    )


def _selection_block(pr: PullRequestSnapshot, spec: RuleSpec) -> Block | None:
    problems = selection_problems(pr, spec.selector)
    if not problems:
        return None
    reason = f"no longer covered by the rule: {'; '.join(problems)}"
    return Block("not-covered", reason, transient=True)


def _checks_block(pr: PullRequestSnapshot, spec: RuleSpec) -> Block | None:
    checks = latest_checks(pr.checks)
    pending = [c for c in checks if not c.completed]
    if pending or pr.ci_status is CiStatus.PENDING:
        names = f": {', '.join(sorted(c.name for c in pending))}" if pending else ""
        return Block("checks-pending", f"checks are still running{names}", transient=True)
    failing = [c.name for c in checks if c.conclusion not in PASSING_CONCLUSIONS]
    if failing:
        return Block("checks-not-passed", f"checks not passed: {', '.join(sorted(failing))}")
    # GitHub's combined state still counts a failed run that a newer run of the same check
    # superseded; any other failure it reports stands.
    superseded = [
        c for c in pr.checks if c not in checks and c.conclusion not in PASSING_CONCLUSIONS
    ]
    if pr.ci_status in {CiStatus.FAILURE, CiStatus.ERROR} and not superseded:
        return Block("checks-not-passed", f"checks are {pr.ci_status.value}")
    ran = [c for c in checks if c.conclusion in RAN_CONCLUSIONS]
    if not ran and not spec.merge.allowWithoutChecks:
        what = "no check reported" if not checks else "every check was skipped or neutral"
        return Block(
            "checks-not-passed",
            f"no check ran on the head commit ({what}); set merge.allowWithoutChecks to merge such"
            " pull requests",
        )
    return None


def _failed_check_block(pr: PullRequestSnapshot) -> Block | None:
    """A check that ended and did not pass (whatever else is still running)."""
    ended = [c for c in latest_checks(pr.checks) if c.completed]
    failing = [c.name for c in ended if c.conclusion not in PASSING_CONCLUSIONS]
    if failing:
        return Block("checks-not-passed", f"checks not passed: {', '.join(sorted(failing))}")
    return None


def _mergeable_block(pr: PullRequestSnapshot) -> Block | None:
    if pr.mergeable is Mergeable.UNKNOWN:
        return Block("mergeability-unknown", "GitHub is still computing mergeability", True)
    if pr.mergeable is not Mergeable.MERGEABLE:
        return Block("not-mergeable", "the pull request has merge conflicts")
    return None


def _merge_state_block(pr: PullRequestSnapshot, spec: RuleSpec) -> Block | None:
    """GitHub's own merge gate (``mergeStateStatus``), as far as it blocks a merge."""
    state = pr.merge_state_status
    if state == "UNKNOWN":
        return Block("merge-state-unknown", "GitHub is still computing the merge state", True)
    if state == "BEHIND":
        reason = "the branch is behind its base branch and must be updated before merging"
        return Block("branch-behind", reason, transient=True)
    if state == "BLOCKED":
        return _blocked_state_block(pr, spec)
    if state in {"DIRTY", "DRAFT"}:
        return Block("merge-blocked", f"GitHub reports merge state {state}")
    return None


def _blocked_state_block(pr: PullRequestSnapshot, spec: RuleSpec) -> Block:
    # A required check that has not reported yet blocks the merge until it does: wait for it.
    pending = [c for c in latest_checks(pr.checks) if not c.completed]
    waiting = [c for c in pending if c.required is not False]
    if waiting or pr.ci_status is CiStatus.PENDING:
        names = f": {', '.join(sorted(c.name for c in waiting))}" if waiting else ""
        reason = f"branch protection waits for required checks{names}"
        return Block("required-checks-pending", reason, transient=True)
    if pr.review_decision in {"REVIEW_REQUIRED", "CHANGES_REQUESTED"}:
        return Block("review-required", "branch protection requires an approving review")
    # Every reported check passed and no review is missing: what GitHub still waits for is a
    # required check that has not reported yet. Wait for it, up to the rule's grace period.
    grace = spec.merge.requiredChecksGraceSeconds
    age = _head_age_seconds(pr)
    if age is not None and age < grace:
        reason = (
            "branch protection waits for a required check that has not reported yet "
            f"(escalated if it has not {grace // 60} minutes after the head commit)"
        )
        return Block("required-checks-not-reported", reason, transient=True)
    late = f" {grace // 60} minutes after the head commit" if age is not None else ""
    return Block(
        "merge-blocked",
        f"GitHub reports merge state BLOCKED (branch protection){late}: a person must look",
    )


def _head_age_seconds(pr: PullRequestSnapshot) -> float | None:
    """Seconds from the head commit to when the facts were read; None when either is unknown."""
    if pr.head_committed_at is None or pr.read_at is None:
        return None
    return (pr.read_at - pr.head_committed_at).total_seconds()


def _merge_method_block(pr: PullRequestSnapshot, spec: RuleSpec) -> Block | None:
    allowed = pr.merge_methods
    if allowed is None or spec.mergeMethod in allowed:
        return None
    others = ", ".join(sorted(m.value for m in allowed)) or "none"
    reason = (
        f"the repository does not allow {spec.mergeMethod.value} merges (it allows {others}); "
        "change the rule's mergeMethod"
    )
    return Block("merge-method-not-allowed", reason)


def _most_telling(blocks: list[Block]) -> Block:
    """A permanent block outranks a transient one: escalate rather than wait forever."""
    permanent = [b for b in blocks if not b.transient]
    return (permanent or blocks)[0]
