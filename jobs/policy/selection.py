"""Whether a rule covers a pull request: every selector condition, re-checked on fresh facts.

GitHub's search index lags behind labels and pushes, so search results are only candidates; this
module is the authority. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from ai_operator.jobs.policy.snapshot import PullRequestSnapshot, PullRequestState
from ai_operator.jobs.rules.matching import canonical_login, title_matches
from ai_operator.jobs.rules.model import Selector


@dataclass(frozen=True)
class Clause:
    """One condition of a selector on one pull request: whether it held, and on what."""

    name: str
    """The selector field (``labels.include``, ``baseBranch``, ...), or ``state``."""
    held: bool
    detail: str
    """What it matched on when it held; why not, in the pass's own words, when it did not."""


def selection_problems(pr: PullRequestSnapshot, selector: Selector) -> tuple[str, ...]:
    """Why ``selector`` does not cover ``pr``; empty when it does."""
    return tuple(clause.detail for clause in selector_clauses(pr, selector) if not clause.held)


def condition_problems(pr: PullRequestSnapshot, selector: Selector) -> tuple[str, ...]:
    """Why ``pr`` fails the selector's own conditions (labels, base, author, title)."""
    clauses = condition_clauses(pr, selector)
    return tuple(clause.detail for clause in clauses if not clause.held)


def selector_clauses(pr: PullRequestSnapshot, selector: Selector) -> tuple[Clause, ...]:
    """Every condition ``selector`` sets, in order, each held or not.

    First that the pull request is open, then the selector's own (:func:`condition_clauses`).
    """
    is_open = pr.state is PullRequestState.OPEN
    state = Clause("state", is_open, "open" if is_open else f"state is {pr.state.value}")
    return (state, *condition_clauses(pr, selector))


def condition_clauses(pr: PullRequestSnapshot, selector: Selector) -> tuple[Clause, ...]:
    """The selector's own conditions on ``pr``: only those it sets, each held or not."""
    clauses: list[Clause] = []
    labels = {label.casefold() for label in pr.labels}
    if selector.labels.include:
        missing = [name for name in selector.labels.include if name.casefold() not in labels]
        clauses.append(
            Clause("labels.include", False, f"missing labels {', '.join(missing)}")
            if missing
            else Clause("labels.include", True, f"carries {', '.join(selector.labels.include)}")
        )
    if selector.labels.exclude:
        excluded = [name for name in selector.labels.exclude if name.casefold() in labels]
        clauses.append(
            Clause("labels.exclude", False, f"carries excluded labels {', '.join(excluded)}")
            if excluded
            else Clause(
                "labels.exclude", True, f"carries none of {', '.join(selector.labels.exclude)}"
            )
        )
    if selector.baseBranch is not None:
        held = pr.base_branch == selector.baseBranch
        clauses.append(
            Clause(
                "baseBranch",
                held,
                f"base branch is {pr.base_branch}"
                + ("" if held else f", not {selector.baseBranch}"),
            )
        )
    # ``app/dependabot`` and ``dependabot[bot]`` are the same bot.
    if selector.author is not None:
        held = canonical_login(pr.author) == canonical_login(selector.author)
        detail = f"author is {pr.author}" + ("" if held else f", not {selector.author}")
        clauses.append(Clause("author", held, detail))
    if selector.titlePattern is not None:
        held = title_matches(selector.titlePattern, pr.title)
        verb = "matches" if held else "does not match"
        clauses.append(Clause("titlePattern", held, f"title {verb} {selector.titlePattern!r}"))
    if not clauses and selector.matchAll:
        clauses.append(Clause("matchAll", True, "covers every open pull request"))
    return tuple(clauses)


def covers(pr: PullRequestSnapshot, selector: Selector) -> bool:
    """Whether every selector condition holds for ``pr``."""
    return not selection_problems(pr, selector)
