"""What a pass counted: :class:`PassCounts`, one model for every place that reads or adds counts.

The act step writes a branch's counts, the tally adds the branches' up (``+``), the report
step turns them into metrics, the controller into the rule's status history, the demo into its
table. On the wire the counts are JSON with camelCase keys (``prsProcessed``, ``aiTokens``, ...):
the names the dashboards, alerts and status have always read. Counts never hold PR text.

Reading is tolerant, as counts cross a process boundary written by another version: a value
that is no count (a string, a negative number, a boolean) counts as 0, and an unknown key is
ignored.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic.alias_generators import to_camel

from ai_operator.jobs.policy.shadow import ScoreField

_BY_KIND = (
    "actions",
    "errors",
    "guardrail_blocks",
    "ai_tokens",
    "writes_deferred",
    "shadow_decided",
    "shadow_settled",
    "shadow_agreed",
    "argocd_errors",
)
_PLAIN = (
    "prs_processed",
    "failed",
    "fallbacks",
    "ai_calls",
    "decisions_reused",
    "github_requests",
    "matched",
    "decided",
    "reused",
    "deferred",
    "branches_failed",
    "to_decide",
)


class PassCounts(BaseModel):
    """A pass's (or one branch's, or one run's) numbers; add two with ``+``.

    ``actions`` are the final actions of the rows without error (with ``dry_run``, what would
    have been done); ``errors`` count failures by type, ``guardrail_blocks`` by guardrail,
    ``ai_tokens`` by kind (``input``, ``output``, ``cached``). ``matched``, ``decided``,
    ``reused``, ``deferred``, ``branches_failed`` and ``to_decide`` are the run's PRs' fate,
    as fetch and the tally count them (``deferred``: beyond ``maxPullRequests``, decided in a
    later pass). ``writes_deferred`` counts the PRs decided whose writes wait for a later pass,
    by reason (:class:`~jobs.policy.pacing.Deferral`: the write budget, a merge or close cap,
    GitHub's rate limit, the pause).
    as fetch and the tally count them. A shadow pass (:mod:`jobs.policy.shadow`) adds the
    decisions it recorded by action (``shadow_decided``), those it settled by
    ``decided:happened`` (``shadow_settled``) and those that agreed by action
    (``shadow_agreed``), and the rule's score after it (``shadow_score``, not added: the newest).
    """

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore"
    )

    prs_processed: int = 0
    dry_run: bool = False
    actions: dict[str, int] = {}
    failed: int = 0
    errors: dict[str, int] = {}
    guardrail_blocks: dict[str, int] = {}
    fallbacks: int = 0
    ai_calls: int = 0
    ai_tokens: dict[str, int] = {}
    decisions_reused: int = 0
    github_requests: int = 0
    github_rate_limit_remaining: int | None = None
    matched: int = 0
    decided: int = 0
    reused: int = 0
    deferred: int = 0
    branches_failed: int = 0
    to_decide: int = 0
    writes_deferred: dict[str, int] = {}
    shadow_decided: dict[str, int] = {}
    shadow_settled: dict[str, int] = {}
    shadow_agreed: dict[str, int] = {}
    shadow_score: ScoreField = None

    argocd_errors: dict[str, int] = {}
    """Argo CD applications a pass could not read, by the error's kind (``auth``, ...)."""

    @field_validator(*_PLAIN, mode="before")
    @classmethod
    def _a_count(cls, value: object) -> int:
        return count(value)

    @field_validator(*_BY_KIND, mode="before")
    @classmethod
    def _counts_by_kind(cls, value: object) -> dict[str, int]:
        if not isinstance(value, Mapping):
            return {}
        return {str(k): count(v) for k, v in value.items()}

    @field_validator("dry_run", mode="before")
    @classmethod
    def _flag(cls, value: object) -> bool:
        return value is True

    @field_validator("github_rate_limit_remaining", mode="before")
    @classmethod
    def _remaining(cls, value: object) -> int | None:
        return None if value is None or isinstance(value, bool) else count(value)

    def __add__(self, other: PassCounts) -> PassCounts:
        """Both counts added field by field; a dry run if either was; the lower rate limit."""
        added: dict[str, Any] = {n: getattr(self, n) + getattr(other, n) for n in _PLAIN}
        for name in _BY_KIND:
            total = Counter(getattr(self, name))
            total.update(getattr(other, name))
            added[name] = dict(total)
        remaining = [
            n
            for n in (self.github_rate_limit_remaining, other.github_rate_limit_remaining)
            if n is not None
        ]
        return PassCounts(
            **added,
            shadow_score=other.shadow_score or self.shadow_score,
            dry_run=self.dry_run or other.dry_run,
            github_rate_limit_remaining=min(remaining) if remaining else None,
        )

    @classmethod
    def read(cls, data: object) -> Self:
        """Counts from their JSON text or object; none (all zero) from anything else.

        Tolerant on purpose: when a step never ran, Argo passes its unresolved tag as text.
        """
        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except json.JSONDecodeError:
                return cls()
        return cls.model_validate(data) if isinstance(data, Mapping) else cls()

    def to_json(self) -> dict[str, Any]:
        """The counts as a JSON object with the wire's camelCase keys."""
        return self.model_dump(mode="json", by_alias=True)

    def nonzero(self) -> dict[str, Any]:
        """Like :meth:`to_json` without the zeros, empty objects, false and null: small."""
        return {k: v for k, v in self.to_json().items() if v not in (0, {}, None, False)}


def count(value: object) -> int:
    """A count from JSON: a non-negative int (0 for anything else)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return max(0, int(value))
