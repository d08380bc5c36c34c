"""What a pass did: one :class:`PullRequestResult` per pull request, and the :class:`PassReport`.

A result row is made from the pull request's :class:`~jobs.policy.decision.Decision` by
:meth:`PullRequestResult.of` and nowhere else; acting only refines it (the action the fresh facts
allowed, the operations applied, an error). Its JSON form (:meth:`PullRequestResult.to_json`) is
what ``ai-operator run --output json`` prints.

Errors: :class:`PullRequestFailure`, raised while deciding one pull request; the pass turns it
into that pull request's row and goes on with the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from jobs.policy.decision import Decision
from jobs.rules.model import Action


class PullRequestFailure(Exception):
    """Deciding or acting on one pull request failed; ``retryable`` if a later try may work."""

    def __init__(self, message: str, *, kind: str, retryable: bool) -> None:
        super().__init__(message)
        self.kind = kind  # "github" | "ai" | "template"
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
    proposed: Action | None = None
    reason: str = ""
    applied: bool = False
    operations: tuple[str, ...] = ()
    guardrail: str | None = None
    guardrail_reason: str | None = None
    fallback: bool = False
    dry_run: bool = False
    error: str | None = None
    error_kind: str | None = None

    @classmethod
    def of(cls, decision: Decision, *, dry_run: bool) -> PullRequestResult:
        """The row of ``decision`` before anything was done about it."""
        shared = {name for name in _DECISION_FIELDS if name in type(decision).model_fields}
        return cls(**decision.model_dump(include=shared, by_alias=False), dry_run=dry_run)

    def with_action(
        self, action: Action, guardrail: str | None, guardrail_reason: str | None
    ) -> PullRequestResult:
        """The row with the action the fresh facts allowed, and the guardrail that decided it."""
        return replace(self, action=action, guardrail=guardrail, guardrail_reason=guardrail_reason)

    def failed(self, message: str, kind: str) -> PullRequestResult:
        """The row, failed with ``message`` (``kind``: github, ai or template)."""
        return replace(self, error=message, error_kind=kind)

    def to_json(self) -> dict[str, Any]:
        """The row as a JSON object (``--output json``)."""
        return {
            "rule": self.rule,
            "repository": self.repository,
            "number": self.number,
            "title": self.title,
            "url": self.url,
            "headOid": self.head_oid,
            "action": self.action.value,
            "proposedAction": self.proposed.value if self.proposed else None,
            "reason": self.reason,
            "applied": self.applied,
            "operations": list(self.operations),
            "guardrail": self.guardrail,
            "guardrailReason": self.guardrail_reason,
            "fallback": self.fallback,
            "dryRun": self.dry_run,
            "error": self.error,
        }


_DECISION_FIELDS = frozenset(f.name for f in fields(PullRequestResult))


@dataclass
class PassReport:
    """Everything one pass of one rule did."""

    rule: str
    results: list[PullRequestResult] = field(default_factory=list)
    error: str | None = None  # the pass itself failed (e.g. the search)
    duration_seconds: float = 0.0

    @property
    def failed(self) -> list[PullRequestResult]:
        """Rows with an error."""
        return [r for r in self.results if r.error]

    @property
    def ok(self) -> bool:
        """Whether the pass and every pull request in it succeeded."""
        return self.error is None and not self.failed
