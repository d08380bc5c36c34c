"""The AI's answer: its JSON schema, and its validation into a :class:`Verdict`.

An answer that does not fit (not an object, an unknown or forbidden action, no reason) is returned
as an :class:`InvalidVerdict` value, never repaired into a guess. Pure: no client, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ai_operator.jobs.rules.model import Action

MAX_REASON = 2000
MAX_COMMENT = 4000
MAX_LABELS = 10


class Verdict(BaseModel):
    """A valid answer: one permitted action and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Action
    reason: str = Field(min_length=1, max_length=MAX_REASON)
    comment: str | None = Field(default=None, max_length=MAX_COMMENT)
    labels: tuple[str, ...] = Field(default=(), max_length=MAX_LABELS)


class InvalidVerdict(BaseModel):
    """An answer that could not be used, and why; it leads to the rule's safe fallback."""

    model_config = ConfigDict(frozen=True)

    problem: str


def verdict_schema(permitted: Iterable[Action]) -> dict[str, Any]:
    """The JSON schema the model's answer is forced into (strict-mode compatible)."""
    actions = sorted(a.value for a in permitted)
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["action", "reason", "comment", "labels"],
        "properties": {
            "action": {"type": "string", "enum": actions, "description": "What to do with the PR."},
            "reason": {"type": "string", "description": "One or two sentences: why."},
            "comment": {
                "type": ["string", "null"],
                "description": "Optional comment to post on the PR (close, escalate, merge).",
            },
            "labels": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Extra labels to add when escalating; may be empty.",
            },
        },
    }


def parse_verdict(answer: object, permitted: Iterable[Action]) -> Verdict | InvalidVerdict:
    """Validate a decoded answer; anything outside the schema or permitted actions is invalid."""
    if not isinstance(answer, dict):
        return InvalidVerdict(problem=f"answer is {type(answer).__name__}, not a JSON object")
    data = {k: v for k, v in answer.items() if k in {"action", "reason", "comment", "labels"}}
    if isinstance(data.get("action"), str):
        data["action"] = data["action"].strip().lower()
    if data.get("labels") is None:
        data.pop("labels", None)
    try:
        verdict = Verdict.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        return InvalidVerdict(problem=f"{where}: {first['msg']}")
    allowed = set(permitted)
    if verdict.action not in allowed:
        names = ", ".join(sorted(a.value for a in allowed))
        return InvalidVerdict(
            problem=f"action {verdict.action.value!r} is not allowed by the rule (allowed: {names})"
        )
    return verdict
