"""What a pass did: one :class:`PullRequestResult` per pull request, and the :class:`PassReport`.

A result row is made from the pull request's :class:`~jobs.policy.decision.Decision` by
:meth:`PullRequestResult.of` and nowhere else; acting only refines it (the action the fresh facts
allowed, the operations applied, an error). Its JSON form (:meth:`PullRequestResult.to_json`) is
what ``ai-operator run --output json`` prints.

Errors: :class:`PullRequestFailure`, raised while deciding one pull request; the pass turns it
into that pull request's row and goes on with the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ai_operator.jobs.clients.ai.usage import ModelUsage
from ai_operator.jobs.policy.decision import Decision
from ai_operator.jobs.policy.plan import MergeRoute, reported_action
from ai_operator.jobs.reconcile.shadow import Sweep
from ai_operator.jobs.rules.model import Action


class PullRequestFailure(Exception):
    """Deciding or acting on one pull request failed; ``retryable`` if a later try may work."""

    def __init__(self, message: str, *, kind: str, retryable: bool) -> None:
        super().__init__(message)
        self.kind = kind  # "github" | "auth" | "ai" | "template" | "internal"
        self.retryable = retryable


@dataclass(frozen=True)
class PullRequestResult:
    """What a pass did about one pull request: the report's row."""

    rule: str
    repository: str
    number: int
    title: str = ""
    url: str = ""
    head_oid: str = ""
    action: Action = Action.WAIT
    route: MergeRoute | None = None
    """How a merge is carried out: merged now, queued, or armed as auto-merge."""
    proposed: Action | None = None
    reason: str = ""
    applied: bool = False
    operations: tuple[str, ...] = ()
    github_ids: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """GitHub's ids of what the operations made or added, by operation (a comment's, labels')."""
    guardrail: str | None = None
    guardrail_reason: str | None = None
    fallback: bool = False
    dry_run: bool = False
    shadow: bool = False
    """Decided by a rule in shadow mode: recorded and scored, nothing written."""
    error: str | None = None
    error_kind: str | None = None
    error_retryable: bool = False  # a later try may succeed (GitHub or the model unavailable)
    reused: bool = False  # the decision came from an earlier run's memo: no model was asked
    deferred: str | None = None
    """Why its writes wait for a later pass (:class:`~jobs.policy.pacing.Deferral`): the write
    budget, a merge or close cap, GitHub's rate limit, the pause. None: nothing waits."""
    latency_seconds: float = 0.0  # how long deciding took (asking the model, mostly)
    usage: ModelUsage = field(default_factory=ModelUsage)  # what deciding cost in this run

    @classmethod
    def of(cls, decision: Decision, *, dry_run: bool) -> PullRequestResult:
        """The row of ``decision`` before anything was done about it."""
        shared = {name for name in _DECISION_FIELDS if name in type(decision).model_fields}
        return cls(**decision.model_dump(include=shared, by_alias=False), dry_run=dry_run)

    def in_shadow(self) -> PullRequestResult:
        """The row of a shadow pass: nothing was, or could be, written."""
        return replace(self, shadow=True, dry_run=True)

    def with_action(
        self,
        action: Action,
        guardrail: str | None,
        guardrail_reason: str | None,
        *,
        route: MergeRoute | None = None,
    ) -> PullRequestResult:
        """The row with the action the fresh facts allowed, and the guardrail that decided it."""
        return replace(
            self,
            action=action,
            guardrail=guardrail,
            guardrail_reason=guardrail_reason,
            route=route,
        )

    @property
    def reported_action(self) -> str:
        """The action as results, logs and metrics name it (``queue``, ``auto-merge``: no merge)."""
        return reported_action(self.action, self.route)

    def failed(self, message: str, kind: str, *, retryable: bool = False) -> PullRequestResult:
        """The row, failed with ``message`` (``kind``: github, auth, ai, template or internal)."""
        return replace(self, error=message, error_kind=kind, error_retryable=retryable)

    def metered(
        self, usage: ModelUsage, latency_seconds: float, *, reused: bool
    ) -> PullRequestResult:
        """The row with what deciding cost: the model's usage, the time, and whether reused."""
        return replace(self, usage=usage, latency_seconds=latency_seconds, reused=reused)

    def to_json(self) -> dict[str, Any]:
        """The row as a JSON object (``--output json``)."""
        return {
            "rule": self.rule,
            "repository": self.repository,
            "number": self.number,
            "title": self.title,
            "url": self.url,
            "headOid": self.head_oid,
            "action": self.reported_action,
            "proposedAction": self.proposed.value if self.proposed else None,
            "reason": self.reason,
            "applied": self.applied,
            "operations": list(self.operations),
            "githubIds": {name: list(ids) for name, ids in self.github_ids.items()},
            "guardrail": self.guardrail,
            "guardrailReason": self.guardrail_reason,
            "fallback": self.fallback,
            "dryRun": self.dry_run,
            "mode": "shadow" if self.shadow else "enforce",
            "error": self.error,
            "reused": self.reused,
            "deferred": self.deferred,
            "latencySeconds": round(self.latency_seconds, 3),
            "model": self.usage.to_json(),
        }


_DECISION_FIELDS = frozenset(f.name for f in fields(PullRequestResult))


@dataclass
class PassReport:
    """Everything one pass of one rule did."""

    rule: str
    results: list[PullRequestResult] = field(default_factory=list)
    error: str | None = None  # the pass itself failed (e.g. the search)
    duration_seconds: float = 0.0
    matched: int | None = None
    """Pull requests the rule covered (None: not known to this report, e.g. one pipeline step);
    those beyond the cap are ``deferred`` and have no row."""
    deferred: int = 0
    paused: bool = False
    """Writes were paused when the pass began: it decided nothing (every PR deferred)."""
    shadow: Sweep | None = None
    """A shadow pass's settling (what it settled, the rule's score); None when enforcing."""
    shadow_recorded: dict[str, int] = field(default_factory=dict)
    """A shadow pass's new decisions kept in the store, by action."""
    argocd_errors: dict[str, int] = field(default_factory=dict)
    """Argo CD applications not read in this pass, by the error's kind (their health: Unknown)."""

    @property
    def reused(self) -> int:
        """Rows whose decision was reused from an earlier pass (no model asked)."""
        return sum(1 for row in self.results if row.reused)

    @property
    def decided(self) -> int:
        """Rows decided in this pass (the model asked, or its failure recorded)."""
        return len(self.results) - self.reused

    @property
    def writes_deferred(self) -> int:
        """Rows decided whose writes wait for a later pass (the budget, a cap, the pause)."""
        return sum(1 for row in self.results if row.deferred)

    @property
    def failed(self) -> list[PullRequestResult]:
        """Rows with an error."""
        return [r for r in self.results if r.error]

    @property
    def ok(self) -> bool:
        """Whether the pass and every pull request in it succeeded."""
        return self.error is None and not self.failed
