"""The run's failures as the exit handler reports them: counts and the first few, bounded. Pure.

Whatever the number of failed pull requests and retries, the report step's summary of them is
a few counts and at most :data:`FIRST_FAILURES` examples: its metrics count the errors by the
type each failing step left in its termination message
(:func:`jobs.reconcile.steps.termination_message`), and its log shows the first failures.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ai_operator.jobs.clients.argo_workflow import FailedNode
from ai_operator.jobs.reconcile.steps import ERROR_TYPE_MARK

FIRST_FAILURES = 10
MESSAGE_CHARS = 240
_ERROR_TYPE = re.compile(re.escape(ERROR_TYPE_MARK) + r"(?P<type>[a-z]+)\b")


@dataclass(frozen=True)
class FailureSummary:
    """How many nodes failed, their errors by type, and the first few of them."""

    nodes: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    first: tuple[FailedNode, ...] = ()


def summarize_failures(nodes: Iterable[FailedNode], first: int = FIRST_FAILURES) -> FailureSummary:
    """Count ``nodes`` (each failed attempt is a node) and keep the first ``first`` failed pods.

    A pod counts under an error type only when its message carries a step's type: a pod failed
    for another reason (killed, out of memory) and the nodes above failed pods (Argo's Retry and
    DAG nodes, which may repeat a child's message) make the run unsuccessful without a type.
    """
    listed = list(nodes)
    pods = [node for node in listed if node.kind == "Pod"]
    found = (_ERROR_TYPE.search(node.message) for node in pods)
    errors = Counter(match.group("type") for match in found if match)
    shown = tuple(
        FailedNode(node.name, node.kind, node.template, node.message[:MESSAGE_CHARS])
        for node in pods[:first]
    )
    return FailureSummary(len(listed), dict(errors), shown)
