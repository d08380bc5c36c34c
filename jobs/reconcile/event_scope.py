"""Which pull requests an event-started run covers: the run's arguments, checked.

A Sensor (``pipelines.events``) passes three arguments taken from a GitHub webhook: the pull
requests' numbers (a JSON number or list of numbers), the repository's full name, and the epoch
second the debounce window ends. A scheduled run passes them empty (``""``, ``""``, ``"0"``): it
covers every pull request the rule selects. Payloads are untrusted: a number list must be
numbers, the repository one of the rule's (case-insensitive, as GitHub compares them); anything
else is refused with a one-line :class:`jobs.rules.encoding.StepInputError` and nothing is read.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from ai_operator.jobs.rules.encoding import StepInputError

MAX_NAMED = 100
"""Pull requests one event may name (one request reads them all)."""
MAX_WAIT_SECONDS = 3600.0
"""The longest wait for a debounce window (``debounceSeconds`` is at most an hour)."""


@dataclass(frozen=True)
class EventScope:
    """The pull requests an event named, in one of the rule's repositories."""

    repository: str
    """As the rule spells it."""
    numbers: tuple[int, ...]


def event_scope(
    pull_requests: str, repository: str, repositories: Sequence[str]
) -> EventScope | None:
    """The run's scope: None for every pull request (a scheduled run, or an event naming none)."""
    text = pull_requests.strip()
    if not text and not repository.strip():
        return None
    known = {name.lower(): name for name in repositories}
    rule_name = known.get(repository.strip().lower())
    if rule_name is None:
        raise StepInputError(
            f"--repository {repository[:100]!r} is not one of the rule's repositories"
        )
    if not text:
        return None
    return EventScope(rule_name, _numbers(text))


def _numbers(text: str) -> tuple[int, ...]:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    values = value if isinstance(value, list) else [value]
    if not values or len(values) > MAX_NAMED or not all(_is_number(v) for v in values):
        raise StepInputError(
            f"--pull-requests {text[:100]!r} is not a pull request number or a list of at most "
            f"{MAX_NAMED}"
        )
    return tuple(sorted({int(v) for v in values}))


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return value.is_integer() and value > 0
    return isinstance(value, int) and value > 0


def wait_seconds(not_before: str, now: float) -> float:
    """How long fetch waits before reading GitHub: until the debounce window ends, bounded."""
    try:
        until = float(not_before.strip() or "0")
    except ValueError as exc:
        raise StepInputError(f"--not-before {not_before[:40]!r} is not an epoch second") from exc
    return min(max(until - now, 0.0), MAX_WAIT_SECONDS)
