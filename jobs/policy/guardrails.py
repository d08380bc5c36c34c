"""Hard safety rules applied after the AI, whatever it answered. Pure.

Never broken:
- no merge unless the PR is open, not a draft, mergeable, its checks passed, no change was
  requested, and its head is the commit that was decided on;
- only the actions the rule allows can happen (``wait`` is always possible);
- nothing is done to a pull request that is no longer open.

A blocked action becomes ``escalate`` (or ``wait`` while checks are still running or GitHub is
still computing mergeability), and ``wait`` when the rule does not allow escalation. The name of
the guardrail that changed the action is kept with the decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.policy.snapshot import CiStatus, Mergeable, PullRequestSnapshot, PullRequestState
from jobs.rules.model import Action, RuleSpec

PASSING_CONCLUSIONS = frozenset({"SUCCESS", "NEUTRAL", "SKIPPED"})
BLOCKING_MERGE_STATES = frozenset({"BLOCKED", "DIRTY", "DRAFT"})


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


def merge_blocks(pr: PullRequestSnapshot, decided_head: str) -> list[Block]:
    """Every reason ``pr`` must not be merged now; empty when merging is safe."""
    checks = [
        _state_block(pr),
        _head_block(pr, decided_head),
        Block("draft", "the pull request is a draft") if pr.is_draft else None,
        _checks_block(pr),
        _mergeable_block(pr),
        Block("changes-requested", "a reviewer requested changes")
        if pr.changes_requested
        else None,
    ]
    return [block for block in checks if block is not None]


def guard(pr: PullRequestSnapshot, spec: RuleSpec, wanted: Action, decided_head: str) -> Guarded:
    """The action that may happen to ``pr`` when ``wanted`` was decided for ``decided_head``."""
    if wanted is Action.WAIT:
        return Guarded(Action.WAIT)
    if wanted not in spec.permitted_actions:
        block = Block("action-not-allowed", f"the rule does not allow {wanted.value}")
        return Guarded(_blocked_action(spec, block), block)
    stale = _stale_blocks(pr, decided_head)
    if stale:
        # Nothing is done to a closed PR or to a head nobody decided on; the next pass decides anew.
        return Guarded(Action.WAIT, stale[0])
    blocks = merge_blocks(pr, decided_head) if wanted is Action.MERGE else []
    if not blocks:
        return Guarded(wanted)
    block = _most_telling(blocks)
    return Guarded(_blocked_action(spec, block), block)


def _stale_blocks(pr: PullRequestSnapshot, decided_head: str) -> list[Block]:
    return [b for b in (_state_block(pr), _head_block(pr, decided_head)) if b is not None]


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


def _checks_block(pr: PullRequestSnapshot) -> Block | None:
    if pr.ci_status is CiStatus.PENDING:
        return Block("checks-pending", "checks are still running", transient=True)
    if pr.ci_status is not CiStatus.SUCCESS:
        return Block("checks-not-passed", f"checks are {pr.ci_status.value}")
    failing = [c.name for c in pr.checks if c.conclusion not in PASSING_CONCLUSIONS]
    if failing:
        return Block("checks-not-passed", f"checks not passed: {', '.join(sorted(failing))}")
    return None


def _mergeable_block(pr: PullRequestSnapshot) -> Block | None:
    if pr.mergeable is Mergeable.UNKNOWN:
        return Block("mergeability-unknown", "GitHub is still computing mergeability", True)
    if pr.mergeable is not Mergeable.MERGEABLE:
        return Block("not-mergeable", "the pull request has merge conflicts")
    if pr.merge_state_status in BLOCKING_MERGE_STATES:
        return Block("merge-blocked", f"GitHub reports merge state {pr.merge_state_status}")
    return None


def _most_telling(blocks: list[Block]) -> Block:
    """A permanent block outranks a transient one: escalate rather than wait forever."""
    permanent = [b for b in blocks if not b.transient]
    return (permanent or blocks)[0]


def _blocked_action(spec: RuleSpec, block: Block) -> Action:
    if block.transient or Action.ESCALATE not in spec.permitted_actions:
        return Action.WAIT
    return Action.ESCALATE
