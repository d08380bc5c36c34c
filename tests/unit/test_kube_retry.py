"""The retry table by verb: which answers and failures are tried again, and the waits."""

from __future__ import annotations

import pytest

from ai_operator.jobs.clients.kube_retry import (
    Backoff,
    Verb,
    policy_for,
    retried_answer,
    retried_failure,
)

# verb, named (a create of an object named by the caller), status, Retry-After, tried again
ANSWERS = [
    (Verb.GET, False, 503, None, True),
    (Verb.LIST, False, 429, None, True),
    (Verb.WATCH, False, 500, None, True),
    (Verb.GET, False, 403, None, False),
    (Verb.GET, False, 404, None, False),
    (Verb.APPLY, False, 409, None, True),
    (Verb.UPDATE, False, 409, None, False),  # the object changed since it was read: the answer
    (Verb.UPDATE, False, 503, None, True),
    (Verb.DELETE, False, 504, None, True),
    (Verb.CREATE, False, 429, None, True),  # never processed
    (Verb.CREATE, False, 503, "2", True),  # the server says it did not process it
    (Verb.CREATE, False, 503, None, False),
    (Verb.CREATE, False, 500, None, False),
    (Verb.CREATE, False, 504, None, False),
    (Verb.CREATE, False, 409, None, False),  # exists: the answer
    (Verb.CREATE, True, 504, None, True),  # a repeat answers 409 if it was applied
    (Verb.CREATE, True, 409, None, False),
]


@pytest.mark.parametrize(("verb", "named", "status", "retry_after", "retried"), ANSWERS)
def test_which_answers_are_tried_again(
    verb: Verb, named: bool, status: int, retry_after: str | None, retried: bool
) -> None:
    """By verb: reads and idempotent writes on a passing trouble; a create only when safe."""
    policy = policy_for(verb, named=named)
    assert retried_answer(policy, status, retry_after) is retried


@pytest.mark.parametrize(
    ("verb", "named", "sent", "retried"),
    [
        (Verb.GET, False, True, True),
        (Verb.PATCH, False, True, True),
        (Verb.CREATE, False, True, False),  # a timeout after sending: it may have been applied
        (Verb.CREATE, False, False, True),  # the connection never opened: nothing was sent
        (Verb.CREATE, True, True, True),
    ],
)
def test_which_failures_without_an_answer_are_tried_again(
    verb: Verb, named: bool, sent: bool, retried: bool
) -> None:
    """A request that may have arrived is repeated only when repeating it is harmless."""
    assert retried_failure(policy_for(verb, named=named), sent=sent) is retried


def test_409_on_create_reads_as_exists() -> None:
    """Both kinds of create read 409 AlreadyExists as the object existing."""
    assert policy_for(Verb.CREATE).exists_ok and policy_for(Verb.CREATE, named=True).exists_ok


def test_the_waits_double_up_to_the_cap() -> None:
    """0.5 s doubling, at most 15 s (no jitter)."""
    assert Backoff().schedule(7) == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0]


@pytest.mark.parametrize("jitter", [0.0, 0.25, 0.5, 0.999])
def test_jitter_takes_at_most_half_off(jitter: float) -> None:
    """Every wait lies between half its base and its base."""
    backoff = Backoff(first=1.0, cap=8.0)
    for attempt in range(6):
        base = backoff.base(attempt)
        assert base / 2 <= backoff.delay(attempt, jitter) <= base


@pytest.mark.parametrize(
    ("header", "wait"), [("3", 3.0), ("120", 15.0), ("soon", 0.5), (None, 0.5)]
)
def test_retry_after_is_honoured_up_to_the_cap(header: str | None, wait: float) -> None:
    """Whole seconds, capped; anything else is ignored."""
    assert Backoff().delay(0, 0.0, header) == wait
