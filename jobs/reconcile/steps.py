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

import base64
import binascii
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs.clients.ai.usage import ModelUsage
from jobs.clients.github.errors import GitHubError
from jobs.clients.kube import APIUnreadable
from jobs.policy.admission import Scope
from jobs.policy.decision import Decision, leave_alone
from jobs.policy.outcome import not_recorded, outcome_records
from jobs.policy.plan import plan
from jobs.policy.reuse import Remembered, decision_key
from jobs.policy.selection import selection_problems
from jobs.policy.snapshot import PullRequestSnapshot
from jobs.reconcile.act import act, act_seeing
from jobs.reconcile.ask import decide_pull_request
from jobs.reconcile.gather import gather, pull_request_ref, sort_out
from jobs.reconcile.ports import Decider, DecisionMemory, GitHubPort, GitHubReader
from jobs.reconcile.results import PullRequestFailure, PullRequestResult
from jobs.rules.encoding import StepInputError
from jobs.rules.model import PRReconciliationRule

EX_TEMPFAIL = 75
NOOP_OUTPUT = "-"  # what the no-op item's decide node outputs
TERMINATION_LOG = Path("/dev/termination-log")  # Kubernetes' default terminationMessagePath
TERMINATION_MESSAGE_CHARS = 1024  # Kubernetes keeps at most 4096 bytes
ERROR_TYPE_MARK = "error-type="
_ERROR_TYPE = re.compile(re.escape(ERROR_TYPE_MARK) + r"(?P<type>[a-z]+)\b")


def dump_for_argo(value: object) -> str:
    r"""Compact JSON in which no ``{{`` appears, so Argo never reads PR text as one of its tags.

    ``{{`` cannot occur in JSON's own syntax, only inside strings, where ``\u007b`` decodes back
    to ``{``: a title such as ``Use {{pr.number}}`` survives the trip through Argo unchanged.
    """
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return text.replace("{{", "\\u007b\\u007b")


def noop_ref(rule: PRReconciliationRule) -> dict[str, Any]:
    """The item that decides nothing, last of every fetch.

    It gives the decide fan-out one node that always succeeds: Argo leaves the aggregated output
    of a fan-out unset when every iteration failed, and what follows would then wait for it until
    the workflow's deadline. Its decide and act pods return at once.
    """
    return {"display": "(no-op)", "key": f"noop-{rule.spec_hash()}", "noop": True}


def is_noop(ref: Mapping[str, Any]) -> bool:
    """Whether ``ref`` is the no-op item."""
    return ref.get("noop") is True


@dataclass(frozen=True)
class Decided:
    """A decision as the decide step hands it on: what it cost, and which run asked the model.

    ``run`` is the workflow that made it: a node copied from an earlier run (``argo resubmit
    --memoized``) hands on that run's output, and the act step then knows the decision was reused
    and cost nothing now.
    """

    decision: Decision
    usage: ModelUsage = field(default_factory=ModelUsage)
    latency_seconds: float = 0.0
    run: str | None = None
    settled: bool = False
    """The facts decide read left nothing to do: act spares its fresh read (doing nothing is
    always safe; anything else is planned on facts act reads itself)."""
    facts: str | None = None
    """The decision key of the facts decide read (:func:`jobs.policy.reuse.decision_key`)."""


def decision_output(
    decision: Decision,
    *,
    usage: ModelUsage | None = None,
    latency_seconds: float = 0.0,
    run: str | None = None,
) -> str:
    """The decide node's output: a line people read in the Argo UI, then the exact decision.

    The line names the action, the PR, the head commit it was decided on and the reason: the same
    rule, action and head as the PR comment's marker and the act step's decision log line.
    It is deliberately not JSON: Argo re-serializes JSON outputs when it aggregates them (undoing
    any escaping) and would then substitute Argo variables named in PR text; a plain string is
    passed through as is. The decision, with what it cost and the run that made it, travels
    base64-encoded after the last `` | ``.
    """
    envelope = {
        "decision": json.loads(decision.model_dump_json()),
        "model": (usage or ModelUsage()).to_json(),
        "latencySeconds": round(latency_seconds, 3),
        "run": run,
    }
    payload = base64.b64encode(json.dumps(envelope, separators=(",", ":")).encode()).decode()
    reason = " ".join(decision.reason.split())[:160].replace("{{", "{ {")
    guard = f" [{decision.guardrail}]" if decision.guardrail else ""
    head = f" at {decision.head_oid[:7]}" if decision.head_oid else ""
    return f"{decision.action.value}{guard} {decision.display}{head}: {reason} | {payload}"


def parse_decision_output(text: str) -> Decision | None:
    """Inverse of :func:`decision_output`; None for the no-op item's output."""
    decided = parse_decided_output(text)
    return decided.decision if decided else None


def parse_decided_output(text: str) -> Decided | None:
    """The decision and what it cost from a :func:`decision_output` line; None for the no-op."""
    if text.strip() in {"", NOOP_OUTPUT, "{}", "[]"}:
        return None
    _, sep, payload = text.rpartition(" | ")
    if not sep:
        raise StepInputError(f"--decisions holds an item that is no decision: {text[:80]!r}")
    try:
        data = json.loads(base64.b64decode(payload, validate=True))
        if not (isinstance(data, dict) and isinstance(data.get("decision"), dict)):
            return Decided(Decision.model_validate(data))  # a bare decision (earlier outputs)
        return _envelope(data)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise StepInputError(f"--decisions holds an invalid decision: {exc}") from exc


def decided_output(decided: Decided) -> str:
    """The decide node's output in a PR's own branch: the decision, what it cost, which run.

    JSON with no ``{{`` (:func:`dump_for_argo`): one branch's output goes to its own act and is
    never aggregated, so Argo passes it on as written, and JSON compresses well in the Workflow
    object Argo stores (a run's decisions must fit in it).
    """
    return dump_for_argo(
        {
            "decision": json.loads(decided.decision.model_dump_json()),
            "model": decided.usage.to_json(),
            "latencySeconds": round(decided.latency_seconds, 3),
            "run": decided.run,
            "settled": decided.settled,
            "facts": decided.facts,
        }
    )


def _envelope(data: Mapping[str, Any]) -> Decided:
    """A :class:`Decided` from its JSON form (``decision``, ``model``, ``run``, ...)."""
    run, facts = data.get("run"), data.get("facts")
    return Decided(
        Decision.model_validate(data["decision"]),
        usage=ModelUsage.from_json(data.get("model")),
        latency_seconds=float(data.get("latencySeconds") or 0.0),
        run=run if isinstance(run, str) else None,
        settled=data.get("settled") is True,
        facts=facts if isinstance(facts, str) else None,
    )


def act_decided(
    rule: PRReconciliationRule,
    decided: list[Decided],
    github: GitHubPort,
    *,
    dry_run: bool,
    run: str | None,
    scope: Scope | None = None,
) -> list[PullRequestResult]:
    """Apply every decision, serialized, each on fresh facts; each row carries what it cost.

    A decision made by another run than ``run`` (a node copied by a resubmission) is marked
    reused and costs nothing in this run. ``scope``: what the rule may touch
    (:mod:`jobs.policy.admission`).
    """
    rows = [
        PullRequestResult.of(item.decision, dry_run=dry_run)
        if item.settled
        else act(rule, item.decision, github, dry_run=dry_run, scope=scope)
        for item in decided
    ]
    metered = []
    for item, row in zip(decided, rows, strict=True):
        reused = run is not None and item.run is not None and item.run != run
        usage = ModelUsage() if reused else item.usage
        metered.append(row.metered(usage, item.latency_seconds, reused=reused))
    return metered


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
    """Like :func:`act_decided`, and the key of the facts the branch's outcome may be kept under.

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


def _replayed(item: Decided, run: str | None) -> bool:
    return run is not None and item.run is not None and item.run != run


def parse_decisions(text: str) -> list[Decision]:
    """The decide step's aggregated outputs: a JSON list of :func:`decision_output` strings.

    Decision objects are read too (one decide node's output is not aggregated), and the no-op
    item's output is skipped.
    """
    return [item.decision for item in parse_decided(text)]


def parse_decided(text: str) -> list[Decided]:
    """Like :func:`parse_decisions`, with what each decision cost and the run that made it."""
    try:
        items = json.loads(text) if text.strip() else []
    except json.JSONDecodeError:
        items = [text]  # a single decide node's output, not aggregated
    if not isinstance(items, list):
        items = [items]
    decided = []
    for item in items:
        one = _decision_item(item)
        if one is not None:
            decided.append(one)
    return decided


def _decision_item(item: object) -> Decided | None:
    if isinstance(item, str) and item.lstrip().startswith("{") and item.strip() != "{}":
        try:
            item = json.loads(item)
        except json.JSONDecodeError as exc:
            raise StepInputError(f"--decisions holds an invalid decision: {exc}") from exc
    if isinstance(item, str):
        return parse_decided_output(item)
    if not item:
        return None
    try:
        if isinstance(item, Mapping) and isinstance(item.get("decision"), Mapping):
            return _envelope(item)
        return Decided(Decision.model_validate(item))
    except (ValueError, TypeError) as exc:
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
        ref_target(data)
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


def ref_target(ref: Mapping[str, Any]) -> tuple[str, int]:
    """``(owner/name, number)`` of a reference (raises StepInputError).

    From its ``display`` (``owner/name#7``), or the ``repository`` and ``number`` of earlier
    references.
    """
    try:
        if "repository" in ref:
            return str(ref["repository"]), int(ref["number"])
        repository, _, number = str(ref["display"]).rpartition("#")
        if "/" not in repository:
            raise ValueError(repository)
        return repository, int(number)
    except (KeyError, TypeError, ValueError) as exc:
        raise StepInputError(f"pull request reference names no owner/name#number: {ref!r}") from exc


# --- a run of the pipeline: fetch with the memo, one outcome per branch, the tally --------------


@dataclass(frozen=True)
class FetchedRun:
    """What fetch hands the run: the branches to run (then the no-op item) and the counts."""

    refs: list[dict[str, Any]]
    counts: dict[str, Any]
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
) -> FetchedRun:
    """Every matching PR, minus those whose remembered decision still stands, at most ``limit``.

    Those the outcome index holds under their current key (younger than ``max_age``, no
    fallback: :func:`jobs.policy.reuse.declined`) are left out: nothing changed for them since
    their decision was made and acted on. The others go least recently decided first
    (:func:`jobs.policy.reuse.triage`); beyond ``limit`` they wait for a later run. An index that
    cannot be read leaves every PR to decide, in an order that rotates from run to run.
    """
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
    refs = [pull_request_ref(rule, c.pr, model) for c in split.ask]
    counts: dict[str, Any] = {
        "matched": split.matched,
        "reused": len(split.reuse),
        "toDecide": len(split.ask),
        "deferred": len(split.deferred),
    }
    reused = tuple(
        c.remembered.decision
        for c in split.reuse
        if c.remembered is not None and c.remembered.decision is not None
    )
    return FetchedRun([*refs, noop_ref(rule)], counts, problem, reused)


def settled(rule: PRReconciliationRule, decision: Decision, pr: PullRequestSnapshot) -> bool:
    """Whether the facts just read leave nothing to do (a wait, or an escalation in place)."""
    return not plan(rule, decision, pr).operations


def decide_settled(
    rule: PRReconciliationRule, ref: Mapping[str, Any], github: GitHubPort, ai: Decider
) -> tuple[Decision, bool]:
    """Decide one PR on fresh facts, and tell whether they leave act nothing to do.

    Raises PullRequestFailure when the PR cannot be read or no answer can be had.
    """
    decision, settled_now, _ = decide_seeing(rule, ref, github, ai, model="")
    return decision, settled_now


def decide_seeing(
    rule: PRReconciliationRule,
    ref: Mapping[str, Any],
    github: GitHubPort,
    ai: Decider,
    *,
    model: str,
) -> tuple[Decision, bool, str]:
    """Like :func:`decide_settled`, and the decision key of the facts decided on."""
    pr = _read(ref, github)
    facts = decision_key(rule.spec_hash(), model, pr)
    problems = selection_problems(pr, rule.spec.selector)
    if problems:
        reason = f"no longer covered by the rule: {'; '.join(problems)}"
        return leave_alone(rule, pr, pr.fingerprint(), reason), True, facts
    decision = decide_pull_request(rule, pr, ai)
    return decision, settled(rule, decision, pr), facts


def _read(ref: Mapping[str, Any], github: GitHubPort) -> PullRequestSnapshot:
    repository, number = ref_target(ref)
    try:
        pr = github.pull_request(repository, number)
    except GitHubError as exc:
        raise PullRequestFailure(
            f"reading {repository}#{number} failed: {exc}", kind="github", retryable=exc.retryable
        ) from exc
    return pr


def branch_outcome(
    rows: list[PullRequestResult],
    tally: Mapping[str, Any],
    run: str | None,
    facts: str | None = None,
) -> dict[str, Any]:
    """A branch's outcome: its counts without the zeros, its PR's name and the run; no PR text.

    It is what the tally adds up, so it stays small: about 200 bytes. ``pr`` names the PR;
    ``facts`` is the key of the facts both decide and act saw (:func:`act_branch`), the key the
    branch's outcome record was kept under (none: nothing was kept).
    """
    outcome: dict[str, Any] = {k: v for k, v in tally.items() if v not in (0, {}, None, False)}
    if rows:
        outcome["pr"] = f"{rows[0].repository}#{rows[0].number}"
    if run:
        outcome["run"] = run
    if facts:
        outcome["facts"] = facts
    return outcome


def tally(outcomes: str, counts: str, run: str | None) -> dict[str, Any]:
    """The run's counts (as :func:`jobs.reconcile.report.counts` shapes them), and its PRs' fate.

    Besides the counts: how many PRs matched, were decided, reused or deferred.
    ``outcomes`` is Argo's aggregate of the branches' outcomes (a JSON list of objects, or of
    strings when one is not an object). A PR fetch left out because its remembered decision still
    stands is reused, with no action counted (it changed nothing in this run, as ``run`` counts a
    reused decision); so is a branch an earlier run decided (a node a resubmission copied), whose
    model calls and actions are none in this run.
    """
    fetched = parse_counts(counts)
    total: dict[str, Any] = {"prsProcessed": 0, "aiCalls": 0, "fallbacks": 0, "failed": 0}
    decided = replayed = 0
    for outcome in _outcomes(outcomes):
        counted = outcome
        if run and outcome.get("run") not in (None, run):
            replayed += 1
            counted = {
                k: v for k, v in outcome.items() if k not in {"aiCalls", "aiTokens", "actions"}
            }
        else:
            decided += 1
        _add(total, counted)
    left_out = _count(fetched.get("reused"))
    _add(total, {"prsProcessed": left_out})
    total |= {
        "matched": _count(fetched.get("matched")),
        "decided": decided,
        "reused": left_out + replayed,
        "deferred": _count(fetched.get("deferred")),
        "decisionsReused": left_out + replayed,
        # Branches fetch listed that handed no outcome: they failed (bounded by the run's cap).
        "branchesFailed": max(0, _count(fetched.get("toDecide")) - decided - replayed),
    }
    return total


def _outcomes(text: str) -> list[dict[str, Any]]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError:
        return []  # tally never got the branches' outcomes (an unresolved tag)
    found = []
    for item in items if isinstance(items, list) else []:
        try:
            outcome = json.loads(item) if isinstance(item, str) else item
        except json.JSONDecodeError:
            continue
        if isinstance(outcome, dict) and outcome.get("pr"):
            found.append(outcome)
    return found


def _add(total: dict[str, Any], outcome: Mapping[str, Any]) -> None:
    for key, value in outcome.items():
        if key in {"pr", "run", "facts"}:
            continue
        if isinstance(value, bool):
            total[key] = total.get(key, False) or value
        elif isinstance(value, int | float):
            total[key] = total.get(key, 0) + value
        elif isinstance(value, Mapping):
            merged = Counter(total.get(key) or {})
            merged.update({str(k): v for k, v in value.items() if isinstance(v, int | float)})
            total[key] = dict(merged)


def _count(value: object) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0
