"""The one place that changes GitHub: carries out a :class:`~jobs.policy.plan.Plan`.

A dry run is "do not call :func:`apply_plan`", nothing more. Operations run in the plan's order and
stop at the first failure, so a refused merge never gets its comment.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.clients.github.errors import GitHubError
from jobs.policy.plan import AddLabels, Close, Comment, Merge, Operation, Plan
from jobs.reconcile.ports import GitHubWriter


@dataclass(frozen=True)
class Outcome:
    """What applying a plan did."""

    applied: tuple[str, ...]
    error: str | None = None
    error_retryable: bool = False

    @property
    def ok(self) -> bool:
        """Whether every operation succeeded."""
        return self.error is None


def apply_plan(github: GitHubWriter, plan: Plan) -> Outcome:
    """Run the plan's operations in order; stop at the first GitHub error."""
    applied: list[str] = []
    for operation in plan.operations:
        try:
            _run(github, operation)
        except GitHubError as exc:
            return Outcome(tuple(applied), f"{describe(operation)} failed: {exc}", exc.retryable)
        applied.append(describe(operation))
    return Outcome(tuple(applied))


def describe(operation: Operation) -> str:
    """A short name of an operation, for reports."""
    match operation:
        case Merge(method=method):
            return f"merge ({method.value.lower()})"
        case Close():
            return "close"
        case Comment():
            return "comment"
        case AddLabels(names=names):
            return f"label {', '.join(names)}"


def _run(github: GitHubWriter, operation: Operation) -> None:
    match operation:
        case Merge(pr_id, head, method, headline):
            github.merge_pull_request(pr_id, head, method, headline)
        case Close(pr_id):
            github.close_pull_request(pr_id)
        case Comment(subject_id, body, _):
            github.add_comment(subject_id, body)
        case AddLabels(repository, pr_id, names, create):
            ids = github.label_ids(repository, list(names), create_missing=create)
            github.add_labels(pr_id, ids)
