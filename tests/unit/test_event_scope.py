"""An event-started run's arguments, checked: untrusted numbers and names never widen a run."""

from __future__ import annotations

import pytest

from ai_operator.jobs.reconcile.event_scope import (
    MAX_WAIT_SECONDS,
    EventScope,
    event_scope,
    wait_seconds,
)
from ai_operator.jobs.rules.encoding import StepInputError

RULE_REPOSITORIES = ["acme/web", "acme/api"]


@pytest.mark.parametrize(
    ("pull_requests", "repository", "expected"),
    [
        pytest.param("", "", None, id="scheduled-run-covers-every-pr"),
        pytest.param("7", "acme/web", EventScope("acme/web", (7,)), id="one-number"),
        pytest.param("[8,7,7]", "acme/web", EventScope("acme/web", (7, 8)), id="a-list-sorted-once"),
        pytest.param("[7]", "ACME/Web", EventScope("acme/web", (7,)), id="repository-as-the-rule-spells-it"),
        pytest.param("", "acme/api", None, id="status-event-names-no-pr"),
    ],
)  # fmt: skip
def test_the_scope_is_the_named_pull_requests_of_one_of_the_rules_repositories(
    pull_requests: str, repository: str, expected: EventScope | None
) -> None:
    """A scheduled run (empty arguments) covers every PR; an event names some of one repository."""
    assert event_scope(pull_requests, repository, RULE_REPOSITORIES) == expected


@pytest.mark.parametrize(
    ("pull_requests", "repository", "message"),
    [
        pytest.param("7", "evil/elsewhere", "is not one of the rule's repositories", id="foreign-repository"),
        pytest.param("7", "", "is not one of the rule's repositories", id="numbers-without-repository"),
        pytest.param("seven", "acme/web", "is not a pull request number", id="not-a-number"),
        pytest.param("[7, \"8\"]", "acme/web", "is not a pull request number", id="a-string-in-the-list"),
        pytest.param("[]", "acme/web", "is not a pull request number", id="empty-list"),
        pytest.param("-1", "acme/web", "is not a pull request number", id="negative"),
        pytest.param("true", "acme/web", "is not a pull request number", id="boolean"),
        pytest.param(str(list(range(1, 102))), "acme/web", "at most 100", id="too-many"),
        pytest.param("{{workflow.name}}", "acme/web", "is not a pull request number", id="a-tag"),
    ],
)  # fmt: skip
def test_anything_else_is_refused_on_one_line(
    pull_requests: str, repository: str, message: str
) -> None:
    """Refused before anything is read, with the argument named."""
    with pytest.raises(StepInputError, match=message) as refused:
        event_scope(pull_requests, repository, RULE_REPOSITORIES)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("not_before", "now", "wait"),
    [("0", 1000.0, 0.0), ("1015", 1000.0, 15.0), ("900", 1000.0, 0.0), ("", 5.0, 0.0),
     ("99999999", 0.0, MAX_WAIT_SECONDS)],
)  # fmt: skip
def test_fetch_waits_for_the_end_of_the_debounce_window_and_no_longer(
    not_before: str, now: float, wait: float
) -> None:
    """Until the window ends, at most an hour; a scheduled run never waits."""
    assert wait_seconds(not_before, now) == wait


def test_a_not_before_that_is_no_number_is_refused() -> None:
    """A one-line error naming the argument."""
    with pytest.raises(StepInputError, match="--not-before"):
        wait_seconds("soon", 0.0)
