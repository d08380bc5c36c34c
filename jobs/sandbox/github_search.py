"""GitHub's issue search syntax, as far as pull requests need it, for the fake GitHub.

``parse_search(query)`` turns a search string into a ``PullRequestSearch`` (a predicate and an
order) or raises ``SearchRejected`` with GitHub's message. Semantics follow GitHub: repeated
``label:`` qualifiers are AND, ``label:a,b`` is OR, ``-qualifier:`` excludes, repeated ``repo:``
(``author:``, ``base:``, ...) are OR, unknown qualifiers are ignored. Explicit ``AND``, ``OR``
and ``NOT`` words only count towards GitHub's limit of five. Dates (``created:``, ``updated:``,
``closed:``, ``merged:``) take GitHub's forms: ``2026-11-01`` (that day), ``>``, ``>=``, ``<``,
``<=`` a date, and ranges ``2026-11-01..2026-11-30`` (both days included) or with ``*`` for an open
end; a date with a time (``2026-11-01T12:00:00Z``) is compared to the second. A pull request that
was never closed (or merged) is found by no ``closed:`` (``merged:``) qualifier. This module must
not know GraphQL or HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from ai_operator.jobs.sandbox.github_world import FakePullRequest

MAX_QUERY_LENGTH = 256
MAX_OPERATORS = 5

Predicate = Callable[[FakePullRequest], bool]

_TOKEN = re.compile(r'-?[A-Za-z][\w.-]*:(?:"[^"]*"|[^\s"])*|-?"[^"]*"|\S+')
_QUALIFIER = re.compile(r"(-?)([A-Za-z][\w.-]*):(.*)", re.DOTALL)
_OPERATORS = frozenset({"AND", "OR", "NOT"})
# Qualifiers that name one fact of a pull request: repeating them widens the search (OR).
_ONE_OF = frozenset({"repo", "org", "user", "owner", "author", "base", "head"})


class SearchRejected(Exception):
    """GitHub refuses the search string itself (too long, too many operators)."""


@dataclass
class PullRequestSearch:
    """A parsed search: every predicate must hold; ``order`` sorts the matches."""

    predicates: list[Predicate] = field(default_factory=list)
    order: Callable[[FakePullRequest], datetime] = lambda pr: pr.created_at
    descending: bool = False

    def matches(self, pr: FakePullRequest) -> bool:
        """Whether ``pr`` is found by this search."""
        return all(predicate(pr) for predicate in self.predicates)

    def run(self, pull_requests: list[FakePullRequest]) -> list[FakePullRequest]:
        """The matching pull requests, in search order."""
        found = [pr for pr in pull_requests if self.matches(pr)]
        return sorted(found, key=self.order, reverse=self.descending)


def parse_search(query: str) -> PullRequestSearch:
    """Parse ``query`` as GitHub does; raise SearchRejected beyond GitHub's limits."""
    if len(query) > MAX_QUERY_LENGTH:
        raise SearchRejected(f"The search is longer than {MAX_QUERY_LENGTH} characters.")
    tokens = _TOKEN.findall(query)
    if sum(token in _OPERATORS for token in tokens) > MAX_OPERATORS:
        raise SearchRejected("The search contains more than 5 AND / OR / NOT operators.")
    search = PullRequestSearch()
    one_of: dict[str, list[Predicate]] = {}
    for token in tokens:
        if token in _OPERATORS:
            continue
        _apply_token(search, one_of, token)
    search.predicates.extend(_any_of(group) for group in one_of.values())
    return search


def _apply_token(search: PullRequestSearch, one_of: dict[str, list[Predicate]], token: str) -> None:
    match = _QUALIFIER.fullmatch(token)
    if match is None:
        search.predicates.append(_free_text(token))
        return
    negated, key, raw = match.group(1) == "-", match.group(2).lower(), match.group(3)
    values = [_unquote(value) for value in _split_values(raw)]
    if key == "sort":
        _apply_sort(search, values[0] if values else "")
        return
    predicate = _qualifier(key, values)
    if predicate is None:
        return
    if negated:
        search.predicates.append(_negate(predicate))
    elif key in _ONE_OF:
        one_of.setdefault(key, []).append(predicate)
    else:
        search.predicates.append(predicate)


def _split_values(raw: str) -> list[str]:
    return [value for value in re.findall(r'"[^"]*"|[^,]+', raw) if value]


def _unquote(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def _apply_sort(search: PullRequestSearch, value: str) -> None:
    key, _, direction = value.lower().partition("-")
    if key == "created":
        search.order = lambda pr: pr.created_at
    elif key == "updated":
        search.order = lambda pr: pr.updated_at
    else:
        return
    search.descending = direction == "desc"


def _negate(predicate: Predicate) -> Predicate:
    return lambda pr: not predicate(pr)


def _any_of(predicates: list[Predicate]) -> Predicate:
    return lambda pr: any(predicate(pr) for predicate in predicates)


def _free_text(word: str) -> Predicate:
    negated = word.startswith("-") and len(word) > 1
    needle = _unquote(word[1:] if negated else word).lower()
    found: Predicate = lambda pr: needle in pr.title.lower() or needle in pr.body.lower()  # noqa: E731
    return _negate(found) if negated else found


def _qualifier(key: str, values: list[str]) -> Predicate | None:
    lowered = [value.lower() for value in values]
    builder = _QUALIFIERS.get(key)
    return builder(lowered) if builder else None


def _is(values: list[str]) -> Predicate | None:
    states = {
        "pr": lambda pr: True,
        "pull-request": lambda pr: True,
        "issue": lambda pr: False,
        "open": lambda pr: pr.state == "OPEN",
        "closed": lambda pr: pr.state in ("CLOSED", "MERGED"),
        "merged": lambda pr: pr.state == "MERGED",
        "unmerged": lambda pr: pr.state != "MERGED",
        "draft": lambda pr: pr.is_draft,
        "public": lambda pr: True,
        "private": lambda pr: False,
        "locked": lambda pr: False,
        "unlocked": lambda pr: True,
    }
    known = [states[value] for value in values if value in states]
    return _any_of(known) if known else None


def _state(values: list[str]) -> Predicate | None:
    return _is([value for value in values if value in ("open", "closed")])


def _type(values: list[str]) -> Predicate | None:
    return _is([value for value in values if value in ("pr", "issue")])


def _repo(values: list[str]) -> Predicate:
    return lambda pr: pr.repository.lower() in values


def _owner(values: list[str]) -> Predicate:
    return lambda pr: pr.repository.lower().partition("/")[0] in values


def _label(values: list[str]) -> Predicate:
    return lambda pr: any(label.lower() in values for label in pr.labels)


def _author(values: list[str]) -> Predicate:
    wanted = {_actor_key(value) for value in values}
    return lambda pr: _actor_key(pr.author.lower()) in wanted


def _actor_key(login: str) -> tuple[str, str]:
    """("bot", name) for ``app/name`` and ``name[bot]``; ("user", login) otherwise."""
    if login.startswith("app/"):
        return "bot", login.removeprefix("app/")
    if login.endswith("[bot]"):
        return "bot", login.removesuffix("[bot]")
    return "user", login


def _base(values: list[str]) -> Predicate:
    return lambda pr: pr.base_ref.lower() in values


def _head(values: list[str]) -> Predicate:
    return lambda pr: pr.head_ref.lower() in values


def _draft(values: list[str]) -> Predicate | None:
    if values not in (["true"], ["false"]):
        return None
    wanted = values == ["true"]
    return lambda pr: pr.is_draft is wanted


def _archived(values: list[str]) -> Predicate | None:
    # Every repository of the fake world is active.
    return (lambda pr: values == ["false"]) if values in (["true"], ["false"]) else None


def _no(values: list[str]) -> Predicate | None:
    return (lambda pr: not pr.labels) if "label" in values else None


def _status(values: list[str]) -> Predicate | None:
    states = {
        "success": {"SUCCESS"},
        "failure": {"FAILURE", "ERROR"},
        "pending": {"PENDING", "EXPECTED"},
    }
    wanted: set[str] = set()
    for value in values:
        wanted |= states.get(value, set())
    return (lambda pr: pr.rollup_state in wanted) if wanted else None


def _review(values: list[str]) -> Predicate | None:
    decisions = {
        "approved": "APPROVED",
        "changes_requested": "CHANGES_REQUESTED",
        "required": "REVIEW_REQUIRED",
        "none": None,
    }
    if not all(value in decisions for value in values):
        return None
    wanted = {decisions[value] for value in values}
    return lambda pr: pr.review_decision in wanted


# --- dates -----------------------------------------------------------------------------------

_DAY = timedelta(days=1)
_TINY = timedelta(microseconds=1)


def _moment(text: str) -> tuple[datetime, datetime] | None:
    """The first and last instant ``text`` names: a whole day for a date, a second for a time."""
    try:
        if "t" not in text:
            start = datetime.combine(date.fromisoformat(text), time(), UTC)
            return start, start + _DAY - _TINY
        moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment, moment + timedelta(seconds=1) - _TINY


def date_range(value: str) -> tuple[datetime | None, datetime | None] | None:
    """GitHub's date qualifier value as inclusive bounds (None: open); None when unreadable."""
    if ".." in value:
        low_text, _, high_text = value.partition("..")
        low = None if low_text == "*" else _moment(low_text)
        high = None if high_text == "*" else _moment(high_text)
        if (low_text != "*" and low is None) or (high_text != "*" and high is None):
            return None
        return (low[0] if low else None, high[1] if high else None)
    for operator in (">=", "<=", ">", "<"):
        if value.startswith(operator):
            found = _moment(value[len(operator) :])
            if found is None:
                return None
            first, last = found
            return {
                ">=": (first, None),
                "<=": (None, last),
                ">": (last + _TINY, None),
                "<": (None, first - _TINY),
            }[operator]
    found = _moment(value)
    return found


def _dated(
    read: Callable[[FakePullRequest], datetime | None],
) -> Callable[[list[str]], Predicate | None]:
    def build(values: list[str]) -> Predicate | None:
        bounds = date_range(values[0]) if len(values) == 1 else None
        if bounds is None:
            return None
        low, high = bounds

        def within(pr: FakePullRequest) -> bool:
            moment = read(pr)
            return (
                moment is not None
                and (low is None or moment >= low)
                and (high is None or moment <= high)
            )

        return within

    return build


_QUALIFIERS: dict[str, Callable[[list[str]], Predicate | None]] = {
    "created": _dated(lambda pr: pr.created_at),
    "updated": _dated(lambda pr: pr.updated_at),
    "closed": _dated(lambda pr: pr.closed_at),
    "merged": _dated(lambda pr: pr.merged_at),
    "is": _is,
    "state": _state,
    "type": _type,
    "repo": _repo,
    "org": _owner,
    "user": _owner,
    "owner": _owner,
    "label": _label,
    "author": _author,
    "base": _base,
    "head": _head,
    "draft": _draft,
    "archived": _archived,
    "no": _no,
    "status": _status,
    "review": _review,
}
