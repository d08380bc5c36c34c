"""Test cases of a rule's instruction: a pull request's facts and the actions expected for it.

A cases file, for ``ai-operator test RULE.yaml --cases CASES.yaml``::

    rule: staging-automerge            # its metadata.name (needed when RULE.yaml holds several)
    cases:
      - name: green and mergeable is merged
        pr: {title: Cache product pages, ciStatus: SUCCESS, mergeable: true}
        expect: merge                  # or a list of acceptable actions: [escalate, wait]
        reasonPattern: "(?i)check"     # optional: a regular expression the reason must contain

Facts carry the template variables' names (``pr.ciStatus`` is ``ciStatus``: see :data:`FACTS`);
``argocd: {health: Degraded, sync: Synced}`` is what Argo CD reports of the PR's application
(default ``Unknown``).
Facts left out describe an ordinary pull request the rule covers: open, not a draft, mergeable,
its checks passed, no review, the rule's include labels, base branch and author. ``expect`` is
compared with the final action, after the guardrails.

Errors: :class:`~jobs.rules.files.RuleFileError`, every problem naming the file and the field's
path (``cases.2.pr.ciStatus``), as for rule files. This module reads and checks files; it builds
no prompt and asks no model.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ai_operator.jobs.rules.files import (
    RuleFileError,
    RuleProblem,
    RuleSource,
    validation_problems,
    yaml_problem,
)
from ai_operator.jobs.rules.model import REPOSITORY_PATTERN, Action

FACTS = (
    "number",
    "title",
    "body",
    "author",
    "labels",
    "ciStatus",
    "checks",
    "mergeable",
    "mergeableState",
    "mergeStateStatus",
    "reviewDecision",
    "reviews",
    "isDraft",
    "baseBranch",
    "headBranch",
    "headOid",
    "additions",
    "deletions",
    "changedFiles",
    "createdAt",
    "updatedAt",
)
"""The facts a case may set: the names of the ``pr.*`` template variables."""

DEFAULT_TIME = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
_UNKNOWN_FACT = re.compile(r"^cases\.\d+\.pr\.[^.]+$")

CheckStatus = Literal["COMPLETED", "IN_PROGRESS", "QUEUED", "PENDING", "WAITING", "REQUESTED"]
CheckConclusion = Literal[
    "SUCCESS",
    "FAILURE",
    "NEUTRAL",
    "SKIPPED",
    "CANCELLED",
    "TIMED_OUT",
    "ACTION_REQUIRED",
    "STARTUP_FAILURE",
    "STALE",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckFacts(_Strict):
    """One check of the head commit."""

    name: StrictStr
    status: CheckStatus = "COMPLETED"
    conclusion: CheckConclusion | None = "SUCCESS"


class ReviewFacts(_Strict):
    """A reviewer's latest review."""

    author: StrictStr
    state: Literal["APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED", "PENDING"]


class PullRequestFacts(_Strict):
    """The facts of a case's pull request; ``None`` means "as the rule's ordinary PR"."""

    number: StrictInt = Field(default=1, ge=1)
    title: StrictStr = "Update the service configuration"
    body: StrictStr = ""
    author: StrictStr | None = None
    labels: list[StrictStr] | None = None
    ciStatus: Literal["SUCCESS", "FAILURE", "PENDING", "ERROR", "UNKNOWN"] = "SUCCESS"
    checks: list[CheckFacts] | None = None
    mergeable: StrictBool | None = None
    mergeableState: Literal["MERGEABLE", "CONFLICTING", "UNKNOWN"] | None = None
    mergeStateStatus: StrictStr | None = None
    reviewDecision: Literal["APPROVED", "CHANGES_REQUESTED", "REVIEW_REQUIRED", "NONE"] = "NONE"
    reviews: list[ReviewFacts] = Field(default_factory=list)
    isDraft: StrictBool = False
    baseBranch: StrictStr | None = None
    headBranch: StrictStr = "feature"
    headOid: Annotated[str, Field(pattern=r"^[0-9a-f]{40}$")] = "c0ffee" + "0" * 34
    additions: StrictInt = Field(default=10, ge=0)
    deletions: StrictInt = Field(default=2, ge=0)
    changedFiles: StrictInt = Field(default=1, ge=0)
    createdAt: datetime = DEFAULT_TIME
    updatedAt: datetime = DEFAULT_TIME

    @model_validator(mode="after")
    def _mergeability_agrees(self) -> PullRequestFacts:
        state = self.mergeableState
        if state is not None and self.mergeable not in (None, state == "MERGEABLE"):
            raise ValueError(
                f"mergeable {str(self.mergeable).lower()} contradicts mergeableState {state}"
            )
        return self

    @property
    def mergeable_state(self) -> str:
        """GitHub's ``MergeableState``: given, else from ``mergeable`` (default mergeable)."""
        if self.mergeableState is not None:
            return self.mergeableState
        return "CONFLICTING" if self.mergeable is False else "MERGEABLE"


class ArgoCDFacts(_Strict):
    """What Argo CD reports of the PR's application (``argocd.health``, ``argocd.sync``)."""

    health: Literal["Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"] = (
        "Unknown"
    )
    sync: Literal["Synced", "OutOfSync", "Unknown"] = "Unknown"


class RuleCase(_Strict):
    """One case: a pull request and the actions acceptable for it."""

    name: StrictStr = Field(min_length=1)
    repository: Annotated[str, Field(pattern=REPOSITORY_PATTERN)] | None = None
    pr: PullRequestFacts = Field(default_factory=PullRequestFacts)
    argocd: ArgoCDFacts = Field(default_factory=ArgoCDFacts)
    expect: list[Action] = Field(min_length=1)
    reasonPattern: StrictStr | None = None

    @field_validator("expect", mode="before")
    @classmethod
    def _one_or_a_list(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("reasonPattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value

    @property
    def expected(self) -> tuple[Action, ...]:
        """The acceptable final actions."""
        return tuple(dict.fromkeys(self.expect))


class CaseFile(_Strict):
    """A cases file: which rule it tests, and its cases."""

    rule: StrictStr | None = None
    cases: list[RuleCase] = Field(min_length=1)

    @model_validator(mode="after")
    def _names_are_unique(self) -> CaseFile:
        seen: set[str] = set()
        for case in self.cases:
            if case.name in seen:
                raise ValueError(f"two cases are named {case.name!r}")
            seen.add(case.name)
        return self


def load_cases(path: str | Path) -> CaseFile:
    """The cases in ``path``; raises :class:`RuleFileError` listing every problem."""
    source = RuleSource(str(path))
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else f"not UTF-8 text ({exc.reason})"
        raise RuleFileError([RuleProblem(source, "", f"cannot read the file: {reason}")]) from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleFileError([yaml_problem(exc, source)]) from exc
    if not isinstance(document, dict):
        found = type(document).__name__
        problem = RuleProblem(source, "", f"expected a mapping with cases, found a {found}")
        raise RuleFileError([problem])
    try:
        return CaseFile.model_validate(document)
    except ValidationError as exc:
        raise RuleFileError(
            [_with_fact_names(problem) for problem in validation_problems(exc, source)]
        ) from exc


def _with_fact_names(problem: RuleProblem) -> RuleProblem:
    if problem.message == "unknown field" and _UNKNOWN_FACT.match(problem.field):
        message = f"unknown fact (facts: {', '.join(FACTS)})"
        return RuleProblem(problem.source, problem.field, message)
    return problem
