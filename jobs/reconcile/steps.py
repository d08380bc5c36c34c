"""The pipeline's steps, one per pod: fetch, then per PR decide and act, tally, report.

Each step reads its rule from the file its rule's ConfigMap mounts, checked against the digest
its pod carries (or from ``AI_OPERATOR_RULE``; see :mod:`jobs.rules.encoding`), and shares its
code with ``ai-operator run`` (:mod:`jobs.reconcile.run`).

Exit codes: 0 done; 75 (EX_TEMPFAIL) a transient failure worth Argo's retry; 1 anything else.

What the run remembers: the rule's outcome index (:mod:`jobs.clients.outcome_index`), one record
per PR that fetch reads (:func:`fetch_run`: an unchanged PR whose decision still stands is left
out) and each act writes once GitHub answered (:func:`branch_record`), only for a decision made
and acted on the same facts, never a fallback or a failure.

What the run did reaches the exit handler's metrics this way: fetch counts the PRs that matched,
those whose decision it reuses and those deferred (:func:`fetch_run`); each decide node's
output carries the model calls and tokens it spent and the run that asked (:class:`Decided`);
each PR's act writes its branch's small outcome (:func:`branch_outcome`); the tally adds them up
(:func:`tally`), a branch an earlier run decided (a retried or resubmitted node) counting as
reused; a failing step
leaves its error type in its termination message (:func:`termination_message`), which Argo puts
in the node's message and the exit handler reads back from its Workflow's failed nodes
(:mod:`jobs.reconcile.failures`); a branch that handed no outcome is counted by the tally.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ai_operator.jobs.clients.ai.usage import ModelUsage
from ai_operator.jobs.clients.decision_cache import DecisionCacheError
from ai_operator.jobs.clients.github.errors import GitHubError
from ai_operator.jobs.clients.kube import APIUnreadable
from ai_operator.jobs.log import get_logger
from ai_operator.jobs.policy.admission import Scope
from ai_operator.jobs.policy.counts import PassCounts
from ai_operator.jobs.policy.decision import Decision, leave_alone
from ai_operator.jobs.policy.outcome import not_recorded, outcome_records
from ai_operator.jobs.policy.plan import plan
from ai_operator.jobs.policy.reuse import Remembered, decision_key
from ai_operator.jobs.policy.selection import selection_problems
from ai_operator.jobs.policy.snapshot import PullRequestSnapshot
from ai_operator.jobs.reconcile.act import act_seeing
from ai_operator.jobs.reconcile.ask import decide_pull_request
from ai_operator.jobs.reconcile.event_scope import EventScope
from ai_operator.jobs.reconcile.gather import gather, gather_named, sort_out
from ai_operator.jobs.reconcile.ports import (
    Decider,
    DecisionMemory,
    GitHubPort,
    GitHubReader,
    NamedReader,
)
from ai_operator.jobs.reconcile.results import PullRequestFailure, PullRequestResult
from ai_operator.jobs.reconcile.wire import (
    NOOP_OUTPUT,
    BranchOutcome,
    Decided,
    FetchCounts,
    PullRequestRef,
    dump_for_argo,
)
from ai_operator.jobs.rules.model import PRReconciliationRule

__all__ = ["NOOP_OUTPUT", "Decided", "PullRequestRef", "dump_for_argo"]

EX_TEMPFAIL = 75
TERMINATION_LOG = Path("/dev/termination-log")  # Kubernetes' default terminationMessagePath
TERMINATION_MESSAGE_CHARS = 1024  # Kubernetes keeps at most 4096 bytes
ERROR_TYPE_MARK = "error-type="
_ERROR_TYPE = re.compile(re.escape(ERROR_TYPE_MARK) + r"(?P<type>[a-z]+)\b")


def noop_ref(rule: PRReconciliationRule) -> PullRequestRef:
    """The item that decides nothing, last of every fetch (:meth:`PullRequestRef.noop_of`).

    Its decide and act pods return at once.
    """
    return PullRequestRef.noop_of(rule.spec_hash())


def act_branch(
    rule: PRReconciliationRule,
    decided: list[Decided],
    github: GitHubPort,
    *,
    dry_run: bool,
    run: str | None,
    model: str,
    scope: Scope | None = None,
) -> tuple[list[PullRequestResult], str | None]:
    """Apply the branch's decision on fresh facts: its rows, and the key to keep its record under.

    A decision made by another run than ``run`` (a node copied by a resubmission) is marked
    reused and costs nothing in this run. ``scope``: what the rule may touch
    (:mod:`jobs.policy.admission`).

    The key is that of the facts decide read, and only when act planned on the same facts (or
    spared its read) and the decision is no fallback: a branch whose facts changed between its
    steps, or that fell back, is remembered under no facts, so the next run decides it again
    (:func:`jobs.policy.reuse.declined`). None for the no-op branch.
    """
    rows: list[PullRequestResult] = []
    keys: list[str | None] = []
    for item in decided:
        if item.settled:
            row, seen_key = PullRequestResult.of(item.decision, dry_run=dry_run), item.facts
        else:
            row, seen = act_seeing(rule, item.decision, github, dry_run=dry_run, scope=scope)
            seen_key = decision_key(rule.spec_hash(), model, seen) if seen else None
        rows.append(row)
        same = seen_key is not None and seen_key == item.facts
        keys.append(item.facts if same and not_recorded(item.decision) is None else None)
    metered = [
        row.metered(
            ModelUsage() if _replayed(item, run) else item.usage,
            item.latency_seconds,
            reused=_replayed(item, run),
        )
        for item, row in zip(decided, rows, strict=True)
    ]
    return metered, keys[0] if len(keys) == 1 else None


def branch_record(
    decided: list[Decided],
    rows: list[PullRequestResult],
    key: str | None,
    *,
    actor: str | None,
    now: float,
) -> dict[str, Remembered]:
    """The outcome record a branch keeps in the rule's index: ``{owner/name#N: record}``.

    Only for one PR's decision made and acted on the same facts (``key``, from
    :func:`act_branch`), with no failure: a fallback, a decision act saw other facts for, or a
    failed act keeps nothing, so the next run decides that PR again. ``actor`` is the token's
    login; the record carries the operations GitHub confirmed and their ids
    (:func:`jobs.policy.outcome.outcome_records`).
    """
    if key is None or len(decided) != 1 or len(rows) != 1 or rows[0].error:
        return {}
    decision, row = decided[0].decision, rows[0]
    return outcome_records(
        [decision],
        {decision.display: key},
        {decision.display: row.operations},
        actor=actor,
        now=now,
        github_ids={decision.display: row.github_ids},
    )


def keep_branch_record(
    rule: PRReconciliationRule,
    decided: list[Decided],
    rows: list[PullRequestResult],
    key: str | None,
    github: GitHubReader,
    memory: DecisionMemory | None,
    *,
    now: float,
) -> None:
    """Keep the branch's outcome record (:func:`branch_record`) in ``memory``: savings only.

    The token's login is asked only when there is a record to keep (GitHub's answer to every
    read carries it, so this costs no request); a memory that cannot be written is logged and
    the next run decides the PR again.
    """
    if memory is None or key is None:
        return
    try:
        actor: str | None = github.viewer_login()
    except GitHubError:
        actor = None
    records = branch_record(decided, rows, key, actor=actor, now=now)
    if not records:
        return
    try:
        memory.keep(rule.qualified_name, records)
    except DecisionCacheError as exc:
        get_logger("step", rule=rule.qualified_name).warning(
            "outcome not recorded: the next run decides the PR again", error=str(exc)
        )


def _replayed(item: Decided, run: str | None) -> bool:
    return run is not None and item.run is not None and item.run != run


def parse_decided(text: str) -> list[Decided]:
    """Act's ``--decisions``: its branch's decide output (:meth:`Decided.read`)."""
    return Decided.read(text)


def parse_ref(text: str) -> PullRequestRef:
    """The decide step's ``--pr`` argument (:meth:`PullRequestRef.read`)."""
    return PullRequestRef.read(text)


def parse_counts(text: str) -> PassCounts:
    """The run's counts, as the exit handler reads them (none from an unresolved tag)."""
    return PassCounts.read(text)


def failed_nodes(text: str) -> int:
    """How many nodes ``{{workflow.failures}}`` lists (JSON quoted twice; ``"null"`` for none)."""
    return len(_failures(text))


def termination_message(kind: str, message: str) -> str:
    """What a failing step writes to its termination log: its error type, then the message.

    Argo puts a failed container's termination message into the node's message, which the exit
    handler reads back from its Workflow (:mod:`jobs.reconcile.failures`).
    """
    return f"{ERROR_TYPE_MARK}{kind}: {' '.join(message.split())}"[:TERMINATION_MESSAGE_CHARS]


def failure_errors(text: str) -> dict[str, int]:
    """Errors by type of the failed nodes in ``{{workflow.failures}}``.

    Only the nodes whose message carries a step's :func:`termination_message` count (one per
    failed attempt): a node failed for another reason (killed, out of memory) makes the run
    unsuccessful (:func:`failed_nodes`) without a type to count it under.
    """
    found = (_ERROR_TYPE.search(str(node.get("message", ""))) for node in _failures(text))
    return dict(Counter(match.group("type") for match in found if match))


def failed_node_list(text: str) -> list[dict[str, Any]]:
    """The nodes ``{{workflow.failures}}`` lists (workflows compiled before ``--workflow``)."""
    return _failures(text)


def _failures(text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
        if isinstance(data, str):
            data = json.loads(data)
    except json.JSONDecodeError:
        return []
    return [node for node in data if isinstance(node, dict)] if isinstance(data, list) else []


def parse_seconds(text: str) -> float:
    """``{{workflow.duration}}`` as a number (0 when Argo could not give one)."""
    try:
        return max(0.0, float(text))
    except ValueError:
        return 0.0


# --- a run of the pipeline: fetch with the memo, one outcome per branch, the tally --------------


@dataclass(frozen=True)
class FetchedRun:
    """What fetch hands the run: the branches to run (then the no-op item) and the counts."""

    refs: list[PullRequestRef]
    counts: FetchCounts
    memory_error: str | None = None
    reused: tuple[Decision, ...] = ()
    """The recorded decisions that still stand: their PRs are left out of the run."""


def fetch_run(
    rule: PRReconciliationRule,
    repositories: list[str],
    github: GitHubReader,
    memory: DecisionMemory | None,
    *,
    model: str,
    limit: int,
    max_age: float,
    now: float,
    scope: EventScope | None = None,
) -> FetchedRun:
    """Every matching PR, minus those whose remembered decision still stands, at most ``limit``.

    With ``scope`` (an event-started run) only the pull requests the event named are read, in
    one request, and the selector is checked on them as on a search's results.

    Those the outcome index holds under their current key (younger than ``max_age``, no
    fallback: :func:`jobs.policy.reuse.declined`) are left out: nothing changed for them since
    their decision was made and acted on. The others go least recently decided first
    (:func:`jobs.policy.reuse.triage`); beyond ``limit`` they wait for a later run. An index that
    cannot be read leaves every PR to decide, in an order that rotates from run to run.
    """
    if scope is not None and isinstance(github, NamedReader):
        prs = gather_named(rule, scope, github)
    else:
        prs = gather(rule, repositories, github)
    problem = None
    try:
        remembered = memory.recall(rule.qualified_name) if memory else {}
    except APIUnreadable as exc:
        remembered, problem = {}, str(exc)
    split = sort_out(
        rule,
        prs,
        remembered,
        model=model,
        now=now,
        max_age=max_age,
        cap=limit,
        memory_ok=memory is not None and problem is None,
    )
    refs = [
        PullRequestRef(display=c.pr.display, key=decision_key(rule.spec_hash(), model, c.pr))
        for c in split.ask
    ]
    counts = FetchCounts(
        matched=split.matched,
        reused=len(split.reuse),
        to_decide=len(split.ask),
        deferred=len(split.deferred),
    )
    reused = tuple(
        c.remembered.decision
        for c in split.reuse
        if c.remembered is not None and c.remembered.decision is not None
    )
    return FetchedRun([*refs, noop_ref(rule)], counts, problem, reused)


def settled(rule: PRReconciliationRule, decision: Decision, pr: PullRequestSnapshot) -> bool:
    """Whether the facts just read leave nothing to do (a wait, or an escalation in place)."""
    return not plan(rule, decision, pr).operations


def decide_seeing(
    rule: PRReconciliationRule,
    ref: PullRequestRef,
    github: GitHubPort,
    ai: Decider,
    *,
    model: str,
) -> tuple[Decision, bool, str]:
    """Decide one PR on fresh facts: the decision, whether act has anything left, the facts' key.

    The key is the decision key of the facts decided on.

    Raises PullRequestFailure when the PR cannot be read or no answer can be had.
    """
    pr = _read(ref, github)
    facts = decision_key(rule.spec_hash(), model, pr)
    problems = selection_problems(pr, rule.spec.selector)
    if problems:
        reason = f"no longer covered by the rule: {'; '.join(problems)}"
        return leave_alone(rule, pr, pr.fingerprint(), reason), True, facts
    decision = decide_pull_request(rule, pr, ai)
    return decision, settled(rule, decision, pr), facts


def _read(ref: PullRequestRef, github: GitHubPort) -> PullRequestSnapshot:
    repository, number = ref.target()
    try:
        pr = github.pull_request(repository, number)
    except GitHubError as exc:
        raise PullRequestFailure(
            f"reading {repository}#{number} failed: {exc}", kind="github", retryable=exc.retryable
        ) from exc
    return pr


def branch_outcome(
    rows: list[PullRequestResult],
    counts: PassCounts,
    run: str | None,
    facts: str | None = None,
) -> BranchOutcome:
    """A branch's outcome (:class:`BranchOutcome`): its counts, its PR's name, the run, the facts.

    ``facts`` is the key of the facts both decide and act saw (:func:`act_branch`), the key the
    branch's outcome record was kept under (none: nothing was kept).
    """
    pr = f"{rows[0].repository}#{rows[0].number}" if rows else None
    return BranchOutcome(**dict(counts), pr=pr, run=run or None, facts=facts or None)


_NOT_THIS_RUN = {"ai_calls": 0, "ai_tokens": {}, "actions": {}}


def tally(outcomes: str, counts: str, run: str | None) -> PassCounts:
    """The run's counts: the branches' outcomes added up, and its PRs' fate.

    Besides the counts: how many PRs matched, were decided, reused or deferred.
    ``outcomes`` is Argo's aggregate of the branches' outcomes (:meth:`BranchOutcome.read_all`),
    ``counts`` fetch's (:class:`FetchCounts`). A PR fetch left out because its remembered
    decision still stands is reused, with no action counted (it changed nothing in this run, as
    ``run`` counts a reused decision); so is a branch an earlier run decided (a node a
    resubmission copied), whose model calls and actions are none in this run.
    """
    fetched = FetchCounts.read(counts)
    total = PassCounts()
    decided = replayed = 0
    for outcome in BranchOutcome.read_all(outcomes):
        counted: PassCounts = outcome
        if run and outcome.run not in (None, run):
            replayed += 1
            counted = outcome.model_copy(update=_NOT_THIS_RUN)
        else:
            decided += 1
        total += counted
    left_out = fetched.reused
    return total.model_copy(
        update={
            "prs_processed": total.prs_processed + left_out,
            "matched": fetched.matched,
            "decided": decided,
            "reused": left_out + replayed,
            "deferred": fetched.deferred,
            "decisions_reused": left_out + replayed,
            # Branches fetch listed that handed no outcome: they failed (bounded by the cap).
            "branches_failed": max(0, fetched.to_decide - decided - replayed),
        }
    )
