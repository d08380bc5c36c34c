r"""The wire between the pipeline's steps: what fetch, decide, act and the tally hand each other.

One model per hand-over, and beside it the name of the Argo output parameter that carries it
and the file the step writes it to (the compiler, :mod:`pipelines.argo`, builds the workflow
from these names)::

    fetch  --prs-->      [PullRequestRef, ..., the no-op ref]   --{{item}}-->  decide (one per PR)
    fetch  --counts-->   FetchCounts                            ---------->    tally
    decide --decision--> Decided (or NOOP_OUTPUT)               ---------->    act
    act    --outcome-->  BranchOutcome (aggregated by Argo)     ---------->    tally
    act    --results-->  [PullRequestResult rows] (shown in the Argo UI; read by no step)
    tally  --summary-->  PassCounts (the workflow's global output)  ------>    report, controller

Every hand-over is JSON written by :func:`dump_for_argo`: compact, keys sorted, and never ``{{``
(Argo would read PR text such as ``Use {{pr.number}}`` as one of its tags). Readers raise
:class:`~jobs.rules.encoding.StepInputError` (a clear one-line error) for input that is no such
model, except the tally and report, which read what they can: an unresolved Argo tag, when a
step never ran, counts as nothing.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
)
from pydantic.alias_generators import to_camel

from ai_operator.jobs.clients.ai.usage import ModelUsage
from ai_operator.jobs.policy.argocd import ArgoCDStatus
from ai_operator.jobs.policy.counts import PassCounts
from ai_operator.jobs.policy.decision import Decision
from ai_operator.jobs.policy.pacing import WriteBudget
from ai_operator.jobs.policy.shadow import ScoreField
from ai_operator.jobs.rules.encoding import StepInputError

OUTPUTS_DIR = "/tmp/outputs"  # noqa: S108 - inside the pod's own emptyDir
PRS = "prs"
"""fetch's output: the PR references, one branch each (``withParam``)."""
PRS_PATH = f"{OUTPUTS_DIR}/prs.json"
COUNTS = "counts"
"""fetch's output: :class:`FetchCounts`, for the tally."""
COUNTS_PATH = f"{OUTPUTS_DIR}/counts.json"
DECISION = "decision"
"""decide's output: :class:`Decided`, for its branch's act."""
DECISION_PATH = f"{OUTPUTS_DIR}/decision.json"
RESULTS = "results"
"""act's output: the branch's result rows, for people reading the Argo UI."""
RESULTS_PATH = f"{OUTPUTS_DIR}/results.json"
OUTCOME = "outcome"
"""act's (and the branch's) output: :class:`BranchOutcome`, aggregated for the tally."""
OUTCOME_PATH = f"{OUTPUTS_DIR}/outcome.json"
SUMMARY = "summary"
"""The tally's output, global to the workflow: the run's :class:`PassCounts`."""
SUMMARY_PATH = f"{OUTPUTS_DIR}/summary.json"
PR_INPUT = "pr"
"""decide's (and the branch's) input parameter: one :class:`PullRequestRef`."""
OUTCOMES_INPUT = "outcomes"
"""The tally's input: Argo's aggregate of the branches' :data:`OUTCOME`."""

NOOP_OUTPUT = "-"
"""What the no-op item's decide node outputs: no decision."""
_NO_DECISION = frozenset({"", NOOP_OUTPUT, "{}", "[]"})


def dump_for_argo(value: BaseModel | list[BaseModel] | object) -> str:
    r"""Compact JSON in which no ``{{`` appears, so Argo never reads PR text as one of its tags.

    ``{{`` cannot occur in JSON's own syntax, only inside strings, where ``\u007b`` decodes back
    to ``{``: a title such as ``Use {{pr.number}}`` survives the trip through Argo unchanged.
    Models are written with their wire aliases; lists of models item by item.
    """
    text = json.dumps(_plain(value), separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return text.replace("{{", "\\u007b\\u007b")


def _plain(value: object) -> object:
    if isinstance(value, _Wire | BranchOutcome):
        return value.wire()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


class _Wire(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore"
    )

    def wire(self) -> dict[str, Any]:
        """The model as the JSON object a step writes."""
        return self.model_dump(mode="json", by_alias=True)


class WriteShare(_Wire):
    """One PR's share of its run's write budget, given by fetch (:func:`jobs.policy.pacing.allot`).

    None is no cap. Fetch gives it before the fan-out; decide hands it on to act unchanged, so a
    retried or resubmitted act pod gets the same share again.
    """

    writes: int | None = None
    merges: int | None = None
    closes: int | None = None

    @classmethod
    def of(cls, budget: WriteBudget) -> WriteShare:
        """The share that is ``budget``."""
        return cls(writes=budget.writes, merges=budget.merges, closes=budget.closes)

    def budget(self) -> WriteBudget:
        """The share as a budget for the act pod's gate."""
        return WriteBudget(self.writes, self.merges, self.closes)


class PullRequestRef(_Wire):
    """fetch's reference to one PR: its name and the key of the facts fetch read; never its text.

    ``key`` (:func:`jobs.policy.reuse.decision_key`) shows in the Argo UI beside the PR's name;
    ``share`` is what the PR may write in this run (:class:`WriteShare`).
    The no-op ref (:meth:`noop_of`) decides nothing: it gives the decide fan-out one node that
    always succeeds (Argo leaves a fan-out's aggregated output unset when every node failed).
    """

    display: str
    key: str
    noop: bool = False
    share: WriteShare | None = None
    argocd: ArgoCDStatus | None = None
    """Argo CD's status of the PR's application, as fetch read it (a rule with
    ``argocdEnabled``): decide and act judge the PR with it, and it is part of ``key``. Argo CD's
    own words only (health, sync), never PR text."""
    waited: bool = False
    """The PR's recorded decision still stands but its writes waited for write budget: decide
    reads that record from the outcome index itself and reuses it (no model call) when the key
    of the facts it reads is the record's; else it asks the model. Never the decision's text."""

    @classmethod
    def noop_of(cls, spec_hash: str) -> PullRequestRef:
        """The item that decides nothing, last of every fetch."""
        return cls(display="(no-op)", key=f"noop-{spec_hash}", noop=True)

    def wire(self) -> dict[str, Any]:
        """``{"display", "key"}``, and ``"noop": true`` for the no-op item only."""
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=True)

    def target(self) -> tuple[str, int]:
        """``(owner/name, number)`` from ``display`` (``owner/name#7``; raises StepInputError)."""
        repository, _, number = self.display.rpartition("#")
        if "/" not in repository or not number.isdigit():
            raise StepInputError(
                f"pull request reference names no owner/name#number: {self.display!r}"
            )
        return repository, int(number)

    @classmethod
    def read(cls, text: str) -> PullRequestRef:
        """Decide's ``--pr`` argument (raises StepInputError)."""
        try:
            ref = cls.model_validate_json(text)
        except ValidationError as exc:
            raise StepInputError(f"--pr is no pull request reference: {_first(exc)}") from exc
        if not ref.noop:
            ref.target()
        return ref


class FetchCounts(_Wire):
    """fetch's counts: PRs that matched, reused a standing decision, to decide, deferred.

    ``paused``: writes were paused when fetch ran, so it listed no PR to decide (all deferred).
    ``argocd_errors``: Argo CD applications fetch could not read, by kind.
    """

    matched: int = 0
    reused: int = 0
    to_decide: int = 0
    deferred: int = 0
    paused: bool = False
    shadow_settled: dict[str, int] | None = None
    """A shadow rule's decisions fetch settled, by ``decided:happened``."""
    shadow_agreed: dict[str, int] | None = None
    """Of those, the ones that agreed, by decided action."""
    shadow_score: ScoreField = None
    """A shadow rule's score after fetch settled."""

    argocd_errors: dict[str, int] = {}

    def wire(self) -> dict[str, Any]:
        """The counts a step writes; ``paused``, ``argocdErrors``, the shadow ones only when set."""
        written = self.model_dump(mode="json", by_alias=True, exclude={"paused"}, exclude_none=True)
        if not self.argocd_errors:
            written.pop("argocdErrors", None)
        return written | ({"paused": True} if self.paused else {})

    @classmethod
    def read(cls, text: str) -> FetchCounts:
        """The tally's ``--counts`` (none when fetch never handed them)."""
        counts = PassCounts.read(text)
        try:
            raw = json.loads(text)
        except json.JSONDecodeError:
            raw = None
        return cls(
            matched=counts.matched,
            reused=counts.reused,
            to_decide=counts.to_decide,
            deferred=counts.deferred,
            paused=isinstance(raw, dict) and raw.get("paused") is True,
            shadow_settled=counts.shadow_settled or None,
            shadow_agreed=counts.shadow_agreed or None,
            shadow_score=counts.shadow_score,
            argocd_errors=counts.argocd_errors,
        )


class Decided(_Wire):
    """A decision as the decide step hands it on: what it cost, and which run asked the model.

    ``run`` is the workflow that made it: a node copied from an earlier run (``argo resubmit
    --memoized``) hands on that run's output, and the act step then knows the decision was reused
    and cost nothing now.
    """

    decision: Decision
    usage: ModelUsage = Field(default_factory=ModelUsage, alias="model")
    latency_seconds: float = 0.0
    run: str | None = None
    settled: bool = False
    """The facts decide read left nothing to do: act spares its fresh read (doing nothing is
    always safe; anything else is planned on facts act reads itself)."""
    facts: str | None = None
    """The decision key of the facts decide read (:func:`jobs.policy.reuse.decision_key`)."""
    share: WriteShare | None = None
    """What act may write (fetch's :class:`WriteShare`, handed on); None: the run's budget."""
    argocd: ArgoCDStatus | None = None
    """Argo CD's status decide judged the PR with (from its :class:`PullRequestRef`)."""
    decided_at: float | None = None
    """When a remembered decision decide reused was made (no model was asked in this run);
    None for a decision made now. Act records the decision again at this time."""

    def wire(self) -> dict[str, Any]:
        """The decision as decide writes it (``argocd``, ``decidedAt`` only when set).

        ``argocd`` is set for a rule that reads Argo CD, ``decidedAt`` for a reused decision.
        """
        written = super().wire()
        if self.argocd is None:
            del written["argocd"]
        if self.decided_at is None:
            del written["decidedAt"]
        return written

    @field_validator("usage", mode="before")
    @classmethod
    def _usage(cls, value: object) -> object:
        return ModelUsage.from_json(value) if isinstance(value, dict) else value

    @field_serializer("usage")
    def _usage_json(self, usage: ModelUsage) -> dict[str, int]:
        return usage.to_json()

    @field_serializer("latency_seconds")
    def _rounded(self, seconds: float) -> float:
        return round(seconds, 3)

    @classmethod
    def read(cls, text: str) -> list[Decided]:
        """Act's ``--decisions``: one decide node's output; none for the no-op item's.

        Raises StepInputError for anything else.
        """
        if text.strip() in _NO_DECISION:
            return []
        try:
            return [cls.model_validate_json(text)]
        except ValidationError as exc:
            raise StepInputError(f"--decisions holds an invalid decision: {_first(exc)}") from exc


class BranchOutcome(PassCounts):
    """A branch's outcome: its counts without the zeros, its PR's name and the run; no PR text.

    It is what the tally adds up, so it stays small: about 200 bytes. ``pr`` names the PR;
    ``facts`` is the key of the facts both decide and act saw, the key the branch's outcome
    record was kept under (none: nothing was kept).
    """

    pr: str | None = None
    run: str | None = None
    facts: str | None = None

    def wire(self) -> dict[str, Any]:
        """The outcome without its zeros (:meth:`PassCounts.nonzero`)."""
        return self.nonzero()

    @classmethod
    def read_all(cls, text: str) -> list[BranchOutcome]:
        """Argo's aggregate of the branches' outcomes: a JSON list of objects (or their text).

        Items that name no PR (the no-op branch's) are left out; so is anything unreadable: the
        tally never got the outcomes when its argument is an unresolved tag.
        """
        try:
            items = json.loads(text)
        except json.JSONDecodeError:
            return []
        found = []
        for item in items if isinstance(items, list) else []:
            try:
                outcome = cls.read(item)
            except ValidationError:
                continue
            if outcome.pr:
                found.append(outcome)
        return found


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "input"
    return f"{where}: {error['msg']}"
