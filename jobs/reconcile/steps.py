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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator

from ai_operator.jobs.clients.ai.usage import ModelUsage
from ai_operator.jobs.clients.argo_workflow import FailedNode
from ai_operator.jobs.clients.decision_cache import DecisionCacheError
from ai_operator.jobs.clients.github.errors import GitHubError
from ai_operator.jobs.clients.kube import APIUnreadable
from ai_operator.jobs.log import get_logger
from ai_operator.jobs.policy.admission import Scope
from ai_operator.jobs.policy.counts import PassCounts
from ai_operator.jobs.policy.decision import Decision, leave_alone
from ai_operator.jobs.policy.outcome import (
    armed_elsewhere,
    not_recorded,
    outcome_records,
    shadow_records,
)
from ai_operator.jobs.policy.pacing import Deferral, WriteBudget, allot
from ai_operator.jobs.policy.plan import plan
from ai_operator.jobs.policy.reuse import Candidate, Remembered, decision_key, declined
from ai_operator.jobs.policy.selection import selection_problems
from ai_operator.jobs.policy.shadow import shadowing, with_decisions
from ai_operator.jobs.policy.snapshot import PullRequestSnapshot
from ai_operator.jobs.reconcile.act import act_seeing
from ai_operator.jobs.reconcile.argocd import ApplicationHealth
from ai_operator.jobs.reconcile.ask import decide_pull_request
from ai_operator.jobs.reconcile.event_scope import EventScope
from ai_operator.jobs.reconcile.gate import WriteGate
from ai_operator.jobs.reconcile.gather import gather, gather_named, sort_out
from ai_operator.jobs.reconcile.ports import (
    ArgoCDReader,
    Decider,
    DecisionMemory,
    GitHubPort,
    GitHubReader,
    NamedReader,
)
from ai_operator.jobs.reconcile.results import PullRequestFailure, PullRequestResult
from ai_operator.jobs.reconcile.shadow import settle_recorded
from ai_operator.jobs.reconcile.wire import (
    NOOP_OUTPUT,
    BranchOutcome,
    Decided,
    FetchCounts,
    PullRequestRef,
    WriteShare,
    dump_for_argo,
)
from ai_operator.jobs.rules.model import PRReconciliationRule

__all__ = ["NOOP_OUTPUT", "Decided", "PullRequestRef", "dump_for_argo"]

EX_TEMPFAIL = 75
TERMINATION_LOG = Path("/dev/termination-log")  # Kubernetes' default terminationMessagePath
TERMINATION_MESSAGE_CHARS = 1024  # Kubernetes keeps at most 4096 bytes
ERROR_TYPE_MARK = "error-type="


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
    gate: WriteGate | None = None,
) -> tuple[list[PullRequestResult], str | None]:
    """Apply the branch's decision on fresh facts: its rows, and the key to keep its record under.

    A decision made by another run than ``run`` (a node copied by a resubmission), or one decide
    reused from the outcome index (its writes had waited), is marked reused and costs nothing in
    this run. ``scope``: what the rule may touch
    (:mod:`jobs.policy.admission`). ``gate``: the branch's share of the run's writes and the
    pause (:mod:`jobs.reconcile.gate`); a plan it holds back is the row's ``deferred``.

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
            row = row.in_shadow() if shadowing(rule.spec) else row
        else:
            # Not settled: decide's plan had operations, a wait's too (a disarm).
            row, seen = act_seeing(
                rule, item.decision, github, dry_run=dry_run, scope=scope, gate=gate, undo=True
            )
            if seen is not None and item.argocd is not None:
                seen = seen.with_argocd(item.argocd)  # the status decide judged by
            seen_key = decision_key(rule.spec_hash(), model, seen) if seen else None
        rows.append(row)
        same = seen_key is not None and seen_key == item.facts
        keys.append(item.facts if same and not_recorded(item.decision) is None else None)
    metered = [
        row.metered(
            ModelUsage() if _replayed(item, run) else item.usage,
            item.latency_seconds,
            reused=_replayed(item, run) or item.decided_at is not None,
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
    (:func:`jobs.policy.outcome.outcome_records`). A reused decision (its writes had waited) is
    recorded at its own decision time, deferred again or not: the maximum age counts from it.
    """
    if key is None or len(decided) != 1 or len(rows) != 1 or rows[0].error:
        return {}
    decision, row = decided[0].decision, rows[0]
    made = decided[0].decided_at
    return outcome_records(
        [decision],
        {decision.display: key},
        {decision.display: row.operations},
        actor=actor,
        now=now if made is None else made,
        github_ids={decision.display: row.github_ids},
        deferred={decision.display} if row.deferred else (),
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
) -> dict[str, Remembered]:
    """Keep the branch's outcome record (:func:`branch_record`) in ``memory``: savings only.

    The token's login is asked only when there is a record to keep (GitHub's answer to every
    read carries it, so this costs no request); a memory that cannot be written is logged and
    the next run decides the PR again. A shadow rule's record is marked shadow, with its
    decision to settle (:func:`jobs.policy.outcome.shadow_records`). The records kept.
    """
    if memory is None or key is None:
        return {}
    try:
        actor: str | None = github.viewer_login()
    except GitHubError:
        actor = None
    records = branch_record(decided, rows, key, actor=actor, now=now)
    if not records:
        return {}
    if shadowing(rule.spec):
        records = shadow_records(records, now=now)
    try:
        memory.keep(rule.qualified_name, records)
    except DecisionCacheError as exc:
        get_logger("step", rule=rule.qualified_name).warning(
            "outcome not recorded: the next run decides the PR again", error=str(exc)
        )
        return {}
    return records


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


def failed_node_list(text: str) -> list[FailedNode]:
    """The failed pods ``{{workflow.failures}}`` lists (workflows compiled before ``--workflow``).

    Argo lists each failed node as ``{displayName, message, templateName, phase, podName, ...}``;
    the exit handler counts them as it counts the nodes of the Workflow object
    (:func:`jobs.reconcile.failures.summarize_failures`).
    """
    return [
        FailedNode(node.displayName, "Pod", node.templateName, node.message)
        for node in _failures(text)
    ]


class ListedFailure(BaseModel):
    """One node ``{{workflow.failures}}`` lists: the fields the exit handler reads, as text."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    displayName: str = ""
    templateName: str = ""
    message: str = ""

    @field_validator("*", mode="before")
    @classmethod
    def _text(cls, value: object) -> str:
        return str(value)


def _failures(text: str) -> list[ListedFailure]:
    try:
        data = json.loads(text)
        if isinstance(data, str):
            data = json.loads(data)
    except json.JSONDecodeError:
        return []
    if not isinstance(data, list):
        return []
    return [ListedFailure.model_validate(node) for node in data if isinstance(node, dict)]


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
    budget: WriteBudget | None = None,
    paused: bool = False,
    argocd: ArgoCDReader | None = None,
    scope: EventScope | None = None,
) -> FetchedRun:
    """Every matching PR, minus those whose remembered decision still stands, at most ``limit``.

    Each reference carries the PR's share of ``budget`` (:func:`jobs.policy.pacing.allot`, in the
    order listed: what waited last run first), so the act pods, which run in parallel, never
    write more than the run's budget together. ``paused``: no PR is listed (all are deferred).
    With ``scope`` (an event-started run) only the pull requests the event named are read, in
    one request, and the selector is checked on them as on a search's results.

    Those the outcome index holds under their current key (younger than ``max_age``, no
    fallback: :func:`jobs.policy.reuse.declined`) are left out: nothing changed for them since
    their decision was made and acted on. Those among them whose writes waited (for write
    budget) and whose share lets them write now are listed first, marked ``waited``: their
    decide pod reuses the record (:func:`decide_recalling`) and their act pod writes what
    waited, on fresh facts; the listed PRs stay at most ``limit``. The others
    go least recently decided first (:func:`jobs.policy.reuse.triage`); beyond ``limit`` they
    wait for a later run. An index that cannot be read leaves every PR to decide, in an order
    that rotates from run to run.
    """
    health = ApplicationHealth(argocd)
    if scope is not None and isinstance(github, NamedReader):
        found = gather_named(rule, scope, github)
    else:
        found = gather(rule, repositories, github)
    prs = health.annotate(rule, found)
    problem = None
    try:
        remembered = memory.recall(rule.qualified_name) if memory else {}
    except APIUnreadable as exc:
        remembered, problem = {}, str(exc)
    sweep = None
    if shadowing(rule.spec) and memory is not None and problem is None:
        sweep = settle_recorded(rule.qualified_name, remembered, github, memory, now=now)
    split = sort_out(
        rule,
        prs,
        remembered,
        model=model,
        now=now,
        max_age=max_age,
        cap=0 if paused else limit,
        memory_ok=memory is not None and problem is None,
    )
    # A standing decision whose writes waited is listed first (it has writes to do); its
    # decide pod reuses it from the index while the facts are the same (decide_recalling).
    standing = [c for c in split.reuse if not _waited(c)]
    last = {
        c.pr.display: c.remembered.decision.action.value
        for c in [*split.reuse, *split.ask]
        if c.remembered is not None and c.remembered.decision is not None
    }
    waiting = [] if paused else _may_write([c for c in split.reuse if _waited(c)], budget, last)
    waiting = waiting[: max(0, limit)]  # the fan-out stays within the run's bound
    asked = list(split.ask[: max(0, limit - len(waiting))])
    listed = [*waiting, *asked]
    left = len(split.reuse) - len(standing) - len(waiting) + len(split.ask) - len(asked)
    shares = allot([c.pr.display for c in listed], budget, last) if budget else {}
    refs = [
        PullRequestRef(
            display=c.pr.display,
            key=decision_key(rule.spec_hash(), model, c.pr),
            share=WriteShare.of(shares[c.pr.display]) if c.pr.display in shares else None,
            argocd=c.pr.argocd if rule.spec.argocdEnabled else None,
            waited=index < len(waiting),
        )
        for index, c in enumerate(listed)
    ]
    if not paused and scope is None:
        # Queued or armed by the operator, and no longer found by the search: read again, so
        # that act disarms what the operator armed if the PR left the rule (decide_seeing).
        seen = {pr.display for pr in prs}
        refs += [
            PullRequestRef(display=record.decision.display, key=record.key)
            for record in armed_elsewhere(remembered, seen)
            if record.decision is not None
        ]
    counts = FetchCounts(
        matched=split.matched,
        reused=len(standing),
        to_decide=len(listed),
        deferred=len(split.deferred) + left,
        paused=paused,
        shadow_settled=sweep.settled_counts() if sweep else None,
        shadow_agreed=sweep.agreed_counts() if sweep else None,
        shadow_score=sweep.score if sweep else None,
        argocd_errors=dict(health.errors),
    )
    reused = tuple(
        c.remembered.decision
        for c in standing
        if c.remembered is not None and c.remembered.decision is not None
    )
    return FetchedRun([*refs, noop_ref(rule)], counts, problem, reused)


def _waited(candidate: Candidate) -> bool:
    return candidate.remembered is not None and candidate.remembered.deferred


def _may_write(
    waiting: list[Candidate], budget: WriteBudget | None, last: dict[str, str]
) -> list[Candidate]:
    """Of the PRs whose writes waited, those whose share lets their decision write in this run.

    The others would only be deferred again: they stay in the index, first next run.
    """
    if budget is None:
        return waiting
    shares = allot([c.pr.display for c in waiting], budget, last)

    def fits(candidate: Candidate) -> bool:
        share, action = shares[candidate.pr.display], last.get(candidate.pr.display)
        if share.writes == 0:
            return False
        return not (action == "merge" and share.merges == 0) and not (
            action == "close" and share.closes == 0
        )

    return [c for c in waiting if fits(c)]


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
    seen = decide_recalling(rule, ref, github, ai, model=model)
    return seen.decision, seen.settled, seen.facts


@dataclass(frozen=True)
class Seen:
    """What decide hands act: the decision, whether act has anything left, the facts' key."""

    decision: Decision
    settled: bool
    facts: str
    decided_at: float | None = None
    """When the remembered decision reused was made; None: decided now."""


def decide_recalling(
    rule: PRReconciliationRule,
    ref: PullRequestRef,
    github: GitHubPort,
    ai: Decider,
    *,
    model: str,
    recall: Callable[[], Remembered | None] | None = None,
    now: float = 0.0,
    max_age: float = -1.0,
) -> Seen:
    """Decide one PR on fresh facts, reusing its remembered decision when it still stands.

    Only a PR whose writes waited (``ref.waited``) looks for its record, with ``recall`` (one
    read of the outcome index): it reuses that decision, asking no model, when
    :func:`jobs.policy.reuse.declined` finds nothing against it for the facts just read (the
    same key: the model saw these facts; not a fallback, younger than ``max_age``). Act then
    plans it on fresh facts, as any decision. A record that cannot be read is none: the model
    is asked (memory only saves work).

    Raises PullRequestFailure when the PR cannot be read or no answer can be had.
    """
    pr = _read(ref, github)
    if ref.argocd is not None:
        pr = pr.with_argocd(ref.argocd)  # as fetch read it: one request per application per run
    facts = decision_key(rule.spec_hash(), model, pr)
    problems = selection_problems(pr, rule.spec.selector)
    if problems:
        # No model: a wait. Act reads it again only when something is queued or armed (who
        # armed it, the operator or a person, is act's to read): it disarms the operator's.
        reason = f"no longer covered by the rule: {'; '.join(problems)}"
        armed = pr.auto_merge_by is not None or pr.in_merge_queue
        return Seen(leave_alone(rule, pr, pr.fingerprint(), reason), not armed, facts)
    found = _recalled(ref, recall)
    if found is not None and found.decision is not None:
        candidate = Candidate(pr, facts, found)
        if declined(candidate, now=now, max_age=max_age, shadow=shadowing(rule.spec)) is None:
            reused = found.decision
            return Seen(reused, settled(rule, reused, pr), facts, decided_at=found.decided_at)
    decision = decide_pull_request(rule, pr, ai)
    return Seen(decision, settled(rule, decision, pr), facts)


def _recalled(
    ref: PullRequestRef, recall: Callable[[], Remembered | None] | None
) -> Remembered | None:
    """The record of a PR whose writes waited; None when there is none or it cannot be read."""
    if not ref.waited or recall is None:
        return None
    try:
        return recall()
    except (APIUnreadable, DecisionCacheError) as exc:
        get_logger("step").warning(
            "outcome record not read: the model is asked", pr=ref.display, error=str(exc)
        )
        return None


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
    resubmission copied), whose model calls and actions are none in this run. A branch whose
    decide pod reused a decision that waited for write budget is reused too, with what its act
    wrote now.
    """
    fetched = FetchCounts.read(counts)
    total = PassCounts()
    decided = replayed = recalled = 0
    for outcome in BranchOutcome.read_all(outcomes):
        counted: PassCounts = outcome
        if run and outcome.run not in (None, run):
            replayed += 1
            counted = outcome.model_copy(update=_NOT_THIS_RUN)
        elif outcome.decisions_reused:
            recalled += 1  # a decision whose writes waited, reused by its decide pod
        else:
            decided += 1
        total += counted
    left_out = fetched.reused
    waited = dict(total.writes_deferred)
    if fetched.paused and fetched.deferred:
        waited[Deferral.PAUSED.value] = waited.get(Deferral.PAUSED.value, 0) + fetched.deferred
    found = fetched.shadow_score
    shadow = {
        "shadow_settled": fetched.shadow_settled or {},
        "shadow_agreed": fetched.shadow_agreed or {},
        # The score fetch read, with the decisions this run's branches recorded since.
        "shadow_score": with_decisions(found, total.shadow_decided) if found else None,
    }
    return total.model_copy(
        update={
            "writes_deferred": waited,
            **shadow,
            "prs_processed": total.prs_processed + left_out,
            "matched": fetched.matched,
            "decided": decided,
            "reused": left_out + replayed + recalled,
            "deferred": fetched.deferred,
            "argocd_errors": fetched.argocd_errors,
            "decisions_reused": left_out + replayed + recalled,
            # Branches fetch listed that handed no outcome: they failed (bounded by the cap).
            "branches_failed": max(0, fetched.to_decide - decided - replayed - recalled),
        }
    )


def shadow_decided(rule: PRReconciliationRule, kept: dict[str, Remembered]) -> dict[str, int]:
    """A shadow rule's decisions a branch recorded, by action (none for an enforcing rule)."""
    if not shadowing(rule.spec):
        return {}
    return dict(Counter(r.decision.action.value for r in kept.values() if r.decision))
