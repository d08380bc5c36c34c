"""Whether a rule covers a pull request: every selector condition, re-checked on fresh facts.

GitHub's search index lags behind labels and pushes, so search results are only candidates; this
module is the authority. Pure.
"""

from __future__ import annotations

from ai_operator.jobs.policy.snapshot import PullRequestSnapshot, PullRequestState
from ai_operator.jobs.rules.matching import canonical_login, title_matches
from ai_operator.jobs.rules.model import Selector


def selection_problems(pr: PullRequestSnapshot, selector: Selector) -> tuple[str, ...]:
    """Why ``selector`` does not cover ``pr``; empty when it does."""
    problems: list[str] = []
    if pr.state is not PullRequestState.OPEN:
        problems.append(f"state is {pr.state.value}")
    return (*problems, *condition_problems(pr, selector))


def condition_problems(pr: PullRequestSnapshot, selector: Selector) -> tuple[str, ...]:
    """Why ``pr`` fails the selector's own conditions (labels, base, author, title)."""
    problems: list[str] = []
    labels = {label.casefold() for label in pr.labels}
    missing = [name for name in selector.labels.include if name.casefold() not in labels]
    if missing:
        problems.append(f"missing labels {', '.join(missing)}")
    excluded = [name for name in selector.labels.exclude if name.casefold() in labels]
    if excluded:
        problems.append(f"carries excluded labels {', '.join(excluded)}")
    if selector.baseBranch is not None and pr.base_branch != selector.baseBranch:
        problems.append(f"base branch is {pr.base_branch}, not {selector.baseBranch}")
    # ``app/dependabot`` and ``dependabot[bot]`` are the same bot.
    if selector.author is not None and canonical_login(pr.author) != canonical_login(
        selector.author
    ):
        problems.append(f"author is {pr.author}, not {selector.author}")
    if selector.titlePattern is not None and not title_matches(selector.titlePattern, pr.title):
        problems.append(f"title does not match {selector.titlePattern!r}")
    return tuple(problems)


def covers(pr: PullRequestSnapshot, selector: Selector) -> bool:
    """Whether every selector condition holds for ``pr``."""
    return not selection_problems(pr, selector)
