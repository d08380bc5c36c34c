"""The PRReconciliationRule model: the one source of truth for what a rule may say.

The CRD in ``crds/`` is generated from these classes (see :mod:`jobs.rules.crd`), ``ai-operator
validate`` checks files against them, and every step reads its rule through them. Field names are
the earlier design's (camelCase, as users wrote them) so its rules keep working unchanged.

This module only describes and checks data: it performs no I/O and renders no template.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from ai_operator.jobs.rules.matching import compile_title_pattern, parse_login, search_value_problem
from ai_operator.jobs.rules.names import namespace_problem

API_GROUP = "aioperator.io"
API_VERSION = "v1alpha1"
KIND = "PRReconciliationRule"
PLURAL = "prreconciliationrules"
SINGULAR = "prreconciliationrule"
SHORT_NAMES = ("prrule",)

DEFAULT_ESCALATION_LABEL = "needs-human-approval"
REPOSITORY_PATTERN = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"

# Bounds on every string and list of a rule, so that checking one costs a bounded time. Each is
# far above what real rules use (the longest example instruction is about 1 KB).
MAX_INSTRUCTION = 16384
"""Characters of ``instruction`` (16 KiB; templates are checked in well under a second)."""
MAX_TEMPLATE = 253
"""Characters of ``argocdAppNamePattern`` (an application name is at most 253)."""
MAX_LABEL = 100
"""Characters of a label name (GitHub allows 50)."""
MAX_LABELS = 20
"""Labels in one list of a selector or of escalation settings."""
MAX_BRANCH = 255
MAX_LOGIN = 100
MAX_TITLE_PATTERN = 500
MAX_REPOSITORY = 140
"""Characters of ``owner/name`` (GitHub: 39 for an owner, 100 for a name)."""
MAX_REPOSITORIES = 100
MAX_URL = 2048
MAX_MODEL_NAME = 200
MAX_SCHEDULE = 100
MAX_TIMEZONE = 64
ONE_SCHEDULE = "set either schedule or reconciliationInterval, not both"


class Action(StrEnum):
    """What a rule's pass may do to one pull request."""

    MERGE = "merge"
    CLOSE = "close"
    ESCALATE = "escalate"
    WAIT = "wait"
    UPDATE = "update"
    """Bring a branch that is behind its base up to date (``updatePullRequestBranch``)."""


class FallbackAction(StrEnum):
    """The safe actions an invalid or missing AI answer may become."""

    WAIT = "wait"
    ESCALATE = "escalate"


class MergeMethod(StrEnum):
    """GitHub's merge methods, spelled as its ``PullRequestMergeMethod`` enum."""

    MERGE = "MERGE"
    SQUASH = "SQUASH"
    REBASE = "REBASE"


class AIProvider(StrEnum):
    """Wire formats the decision client speaks."""

    ANTHROPIC = "anthropic"
    OPENAI = "openai"


class _Spec(BaseModel):
    """Base of every spec object: unknown fields are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def _searchable(value: str) -> str:
    problem = search_value_problem(value)
    if problem is not None:
        raise ValueError(f"{value!r} {problem}")
    return value


SearchValue = Annotated[str, Field(max_length=MAX_BRANCH), AfterValidator(_searchable)]
LabelName = Annotated[str, Field(max_length=MAX_LABEL), AfterValidator(_searchable)]
"""A label or branch name that GitHub's search can express."""


class LabelSelector(_Spec):
    """Label conditions on a pull request."""

    include: list[LabelName] = Field(
        default_factory=list,
        max_length=MAX_LABELS,
        description=(
            f"The pull request must carry ALL of these labels (at most {MAX_LABELS}, each at "
            f"most {MAX_LABEL} characters)."
        ),
    )
    exclude: list[LabelName] = Field(
        default_factory=list,
        max_length=MAX_LABELS,
        description=(
            f"A pull request carrying ANY of these labels is skipped (at most {MAX_LABELS})."
        ),
    )

    @model_validator(mode="after")
    def _disjoint(self) -> LabelSelector:
        both = [label for label in self.include if label in self.exclude]
        if both:
            raise ValueError(f"{both[0]!r} is both included and excluded: no PR could match")
        return self


SELECTS_EVERYTHING = (
    "selects every open pull request of the rule's repositories: narrow it (labels.include, "
    "baseBranch, author or titlePattern) or set selector.matchAll: true"
)


class Selector(_Spec):
    """Which open pull requests a rule covers. Every condition must hold.

    A selector that narrows nothing (``selector: {}``, or only labels to exclude) covers every
    open pull request: it needs the explicit ``matchAll: true``.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": (
                        "(has(self.matchAll) && self.matchAll) || (has(self.labels) && "
                        "has(self.labels.include) && size(self.labels.include) > 0) || "
                        "has(self.baseBranch) || has(self.author) || has(self.titlePattern)"
                    ),
                    "message": SELECTS_EVERYTHING,
                }
            ]
        }
    )

    labels: LabelSelector = Field(default_factory=LabelSelector)
    baseBranch: SearchValue | None = Field(
        default=None,
        description=f"Base branch, e.g. 'main' (at most {MAX_BRANCH} characters).",
        examples=["main"],
    )
    author: str | None = Field(
        default=None,
        max_length=MAX_LOGIN,
        description=(
            "Author login: a person as 'octocat', a bot as 'dependabot[bot]' or 'app/dependabot' "
            "(the same bot)."
        ),
        examples=["dependabot[bot]"],
    )
    titlePattern: str | None = Field(
        default=None,
        max_length=MAX_TITLE_PATTERN,
        description=(
            "Regular expression (RE2 syntax: no lookaround, no backreferences) matched at the "
            f"start of the title, e.g. '^Bump ' (at most {MAX_TITLE_PATTERN} characters)."
        ),
        examples=["^Bump "],
    )

    matchAll: bool = Field(
        default=False,
        description=(
            "Cover every open pull request of the rule's repositories. Required when no other "
            "condition narrows the selector."
        ),
    )

    @model_validator(mode="after")
    def _narrows(self) -> Selector:
        narrowed = self.labels.include or self.baseBranch or self.author or self.titlePattern
        if not (narrowed or self.matchAll):
            raise ValueError(SELECTS_EVERYTHING)
        return self

    @field_validator("author")
    @classmethod
    def _login(cls, value: str | None) -> str | None:
        if value is not None:
            parse_login(value)
        return value

    @field_validator("titlePattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            compile_title_pattern(value)
        return value


class AISettings(_Spec):
    """Per-rule model settings; each unset field falls back to the environment."""

    provider: AIProvider | None = Field(
        default=None, description="anthropic or openai (any OpenAI-compatible server)."
    )
    endpoint: str | None = Field(
        default=None,
        max_length=MAX_URL,
        description=(
            "Base URL, or a full Messages/Chat Completions URL; only endpoints the namespace's "
            "PRReconciliationLimits allow (by default: the installation's own)."
        ),
    )
    model: str | None = Field(
        default=None, max_length=MAX_MODEL_NAME, description="Model name, e.g. claude-sonnet-5."
    )
    temperature: float | None = Field(
        default=None,
        ge=0,
        le=2,
        description="Sampling temperature (OpenAI-compatible providers; Anthropic ignores it).",
    )
    maxTokens: int | None = Field(default=None, ge=64, le=32768, description="Answer token cap.")
    timeoutSeconds: float | None = Field(
        default=None, gt=0, le=600, description="Timeout of one AI request."
    )


class EscalationSettings(_Spec):
    """How escalation marks a pull request for a human."""

    labels: list[Annotated[str, Field(max_length=MAX_LABEL)]] = Field(
        default_factory=lambda: [DEFAULT_ESCALATION_LABEL],
        max_length=MAX_LABELS,
        description=f"Labels added on escalation (at most {MAX_LABELS}).",
    )
    optionalLabels: list[Annotated[str, Field(max_length=MAX_LABEL)]] = Field(
        default_factory=list,
        max_length=MAX_LABELS,
        description=(
            "Labels the model may choose to add when it escalates; any other label it names is "
            "ignored."
        ),
    )
    createMissingLabels: bool = Field(
        default=True, description="Create escalation labels that do not exist in the repository."
    )


class MergeStrategy(StrEnum):
    """How a merge decision is carried out on GitHub."""

    AUTO = "Auto"
    DIRECT = "Direct"
    MERGE_QUEUE = "MergeQueue"
    AUTO_MERGE = "AutoMerge"


class MergeSettings(_Spec):
    """When a merge may happen, beyond the safety rules that always hold."""

    allowWithoutChecks: bool = Field(
        default=False,
        description=(
            "Merge a head on which no check actually ran (no check at all, or every check "
            "skipped or neutral). Off: such a head has not passed."
        ),
    )
    requiredChecksGraceSeconds: int = Field(
        default=3600,
        ge=0,
        le=7 * 86400,
        description=(
            "How long after the head commit a merge that GitHub blocks while every reported "
            "check passed (a required check not reported yet) waits before it is escalated."
        ),
    )
    strategy: MergeStrategy = Field(
        default=MergeStrategy.AUTO,
        description=(
            "How a merge is carried out: Auto (the merge queue when the base branch requires "
            "one, else merge now), Direct, MergeQueue or AutoMerge. The head is always pinned."
        ),
    )


ALL_ACTIONS: tuple[Action, ...] = tuple(Action)
DEFAULT_ACTIONS: tuple[Action, ...] = (Action.MERGE, Action.CLOSE, Action.ESCALATE, Action.WAIT)
"""What a rule allows unless it says otherwise: ``update`` only when a rule lists it."""


class RuleMode(StrEnum):
    """Enforce: decisions change GitHub. Shadow: they are only recorded and scored."""

    ENFORCE = "Enforce"
    SHADOW = "Shadow"


class RuleLimits(_Spec):
    """Caps an operator can pull: the pull requests past a cap wait for a later pass (deferred)."""

    maxMergesPerPass: int | None = Field(
        default=None, ge=0, le=1000, description="Merges one pass may make; the rest are deferred."
    )
    maxClosesPerPass: int | None = Field(
        default=None, ge=0, le=1000, description="Closes one pass may make; the rest are deferred."
    )


class GitHubEvent(StrEnum):
    """GitHub webhook event types a rule may react to (GitHub's own names)."""

    PULL_REQUEST = "pull_request"
    PULL_REQUEST_REVIEW = "pull_request_review"
    CHECK_SUITE = "check_suite"
    CHECK_RUN = "check_run"
    STATUS = "status"
    ISSUE_COMMENT = "issue_comment"


DEFAULT_GITHUB_EVENTS: tuple[GitHubEvent, ...] = (
    GitHubEvent.PULL_REQUEST,
    GitHubEvent.PULL_REQUEST_REVIEW,
    GitHubEvent.CHECK_SUITE,
)


class RuleEvents(_Spec):
    """GitHub events that also start the rule's pipeline, for the pull requests they name."""

    github: list[GitHubEvent] = Field(
        default_factory=lambda: list(DEFAULT_GITHUB_EVENTS),
        min_length=1,
        max_length=len(GitHubEvent),
        description=(
            "GitHub event types that start a pass for the pull requests they name (default: "
            "pull_request, pull_request_review, check_suite)."
        ),
        json_schema_extra={"uniqueItems": True},
    )
    debounceSeconds: int = Field(
        default=15,
        ge=0,
        le=3600,
        description="Events within this many seconds are coalesced into one run.",
    )


class RuleSpec(_Spec):
    """The spec of a PRReconciliationRule."""

    # The API server cannot run the validators below; it checks this one of them itself.
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!(has(self.schedule) && has(self.reconciliationInterval))",
                    "message": ONE_SCHEDULE,
                }
            ]
        }
    )

    selector: Selector
    instruction: str = Field(
        min_length=1,
        max_length=MAX_INSTRUCTION,
        description=(
            "Natural-language instructions for the model, a Jinja template. Variables: pr.number, "
            "pr.title, pr.author, pr.labels, pr.ciStatus, pr.mergeable, pr.reviews, repository, "
            "environment, argocd.health and the other pr.* facts documented in the README. At "
            f"most {MAX_INSTRUCTION} characters."
        ),
    )
    repositories: list[
        Annotated[str, Field(max_length=MAX_REPOSITORY, pattern=REPOSITORY_PATTERN)]
    ] = Field(
        default_factory=list,
        max_length=MAX_REPOSITORIES,
        description=(
            "Repositories covered, as owner/name (at most "
            f"{MAX_REPOSITORIES}). Default: GITHUB_ORGANIZATION with each of "
            "GITHUB_REPOSITORIES. Only repositories the namespace's PRReconciliationLimits "
            "allow."
        ),
        examples=[["acme/web"]],
    )
    argocdEnabled: bool = Field(default=False, description="Ask Argo CD for application health.")
    argocdAppNamePattern: str | None = Field(
        default=None,
        max_length=MAX_TEMPLATE,
        description="Template of the Argo CD application name, e.g. '{{repository}}-staging'.",
        examples=["{{repository}}-staging"],
    )
    reconciliationInterval: int | None = Field(
        default=None,
        ge=10,
        le=86400,
        description=(
            "Seconds between passes (default 30). Scheduled passes run on whole minutes: shorter "
            "intervals run every minute."
        ),
    )
    schedule: str | None = Field(
        default=None,
        max_length=MAX_SCHEDULE,
        description="Five-field cron schedule; an alternative to reconciliationInterval.",
        examples=["*/5 * * * *"],
    )
    timezone: str | None = Field(
        default=None,
        max_length=MAX_TIMEZONE,
        description="IANA timezone of the schedule.",
        examples=["Europe/Paris"],
    )
    suspend: bool = Field(default=False, description="Stop scheduling passes.")
    mergeMethod: MergeMethod = Field(
        default=MergeMethod.SQUASH,
        description="How pull requests are merged: MERGE, SQUASH or REBASE.",
    )
    merge: MergeSettings = Field(default_factory=MergeSettings)
    dryRun: bool = Field(default=False, description="Decide and report, never change GitHub.")
    allowedActions: list[Action] = Field(
        default_factory=lambda: list(DEFAULT_ACTIONS),
        min_length=1,
        max_length=len(ALL_ACTIONS),
        description=(
            "Actions this rule may take: merge, close, escalate, wait, update (bring a branch "
            "that is behind its base up to date; only when listed). 'wait' is always possible."
        ),
        # Each action at most once; the CRD states it as a set-typed list.
        json_schema_extra={"uniqueItems": True},
    )
    fallbackAction: FallbackAction = Field(
        default=FallbackAction.ESCALATE,
        description=(
            "What an invalid or missing AI answer becomes (wait, or escalate when allowed)."
        ),
    )
    escalation: EscalationSettings = Field(default_factory=EscalationSettings)
    maxPullRequests: int = Field(
        default=100, ge=1, le=1000, description="Cap on pull requests decided per pass."
    )
    ai: AISettings = Field(default_factory=AISettings)
    mode: RuleMode = Field(
        default=RuleMode.ENFORCE,
        description=(
            "Enforce: act on GitHub. Shadow: decide and record, change nothing, and score the "
            "decisions against what people then did."
        ),
    )
    limits: RuleLimits = Field(default_factory=RuleLimits)
    events: RuleEvents | None = Field(
        default=None,
        description="GitHub events that also start a pass, besides the schedule.",
    )

    @field_validator("instruction")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the instruction is blank: the model would get no instructions")
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            from ai_operator.jobs.rules.schedule import check_cron  # noqa: PLC0415 - keeps import order acyclic

            check_cron(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            from ai_operator.jobs.rules.schedule import check_timezone  # noqa: PLC0415

            check_timezone(value)
        return value

    @field_validator("allowedActions")
    @classmethod
    def _unique_actions(cls, value: list[Action]) -> list[Action]:
        if len(set(value)) != len(value):
            raise ValueError("actions are listed more than once")
        return value

    @model_validator(mode="after")
    def _one_schedule(self) -> RuleSpec:
        if self.schedule is not None and self.reconciliationInterval is not None:
            raise ValueError(ONE_SCHEDULE)
        return self

    @property
    def permitted_actions(self) -> frozenset[Action]:
        """The actions a pass may take: the allowed ones, and always wait."""
        return frozenset(self.allowedActions) | {Action.WAIT}

    @property
    def safe_fallback(self) -> Action:
        """The action an invalid answer becomes: the fallback when permitted, else wait."""
        wanted = Action(self.fallbackAction.value)
        return wanted if wanted in self.permitted_actions else Action.WAIT


class ObjectMeta(BaseModel):
    """The part of Kubernetes' ObjectMeta a rule uses; other fields are kept, not checked."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    namespace: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        problem = namespace_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


_DATE_TIME: dict[str, Any] = {"format": "date-time"}


class _Status(BaseModel):
    """Base of the status objects: what a newer controller adds is kept, not refused."""

    model_config = ConfigDict(extra="allow", frozen=True)


class Condition(_Status):
    """One condition, in Kubernetes' ``metav1.Condition`` shape."""

    type: str = Field(description="Ready, Invalid or ApplyFailed.")
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(default="", description="One CamelCase word saying why.")
    message: str = Field(default="", description="What is wrong, for people.")
    lastTransitionTime: str | None = Field(
        default=None,
        description="When the status last changed.",
        json_schema_extra=_DATE_TIME,
    )
    observedGeneration: int | None = Field(
        default=None, ge=0, description="The rule's generation this condition was set for."
    )


class GeneratedObject(_Status):
    """The object a rule was compiled into."""

    kind: str = Field(description="CronWorkflow or CronJob.")
    name: str = Field(description="Its name, in the rule's namespace.")


class LastRun(_Status):
    """The newest run of a rule: an Argo Workflow, or a Job for the cronjob target."""

    name: str
    phase: str = Field(description="Pending, Running, Succeeded, Failed or Error.")
    startedAt: str | None = Field(default=None, json_schema_extra=_DATE_TIME)
    finishedAt: str | None = Field(default=None, json_schema_extra=_DATE_TIME)
    pullRequests: int | None = Field(
        default=None, ge=0, description="Pull requests decided (unknown for a CronJob's run)."
    )
    actions: dict[str, int] | None = Field(
        default=None, description="Actions taken, per action (unknown for a CronJob's run)."
    )
    dryRun: bool | None = Field(
        default=None, description="A dry run: its actions were decided, not taken."
    )
    message: str | None = Field(default=None, description="Why a failed run failed.")


class RunRecord(_Status):
    """One finished run in a rule's status history: counts only, never pull request text."""

    finishedAt: str = Field(json_schema_extra=_DATE_TIME)
    succeeded: bool
    workflow: str | None = Field(default=None, description="The run's Workflow.")
    dryRun: bool = False
    pullRequests: int = Field(default=0, ge=0)
    actions: dict[str, int] = Field(default_factory=dict, description="Actions taken.")
    failed: int = Field(default=0, ge=0, description="Pull requests that failed.")
    errors: int = Field(default=0, ge=0)
    guardrailBlocks: int = Field(default=0, ge=0)
    aiCalls: int = Field(default=0, ge=0)


class ShadowActionScore(_Status):
    """The shadow score of one decided action."""

    decisions: int = Field(default=0, ge=0, description="Decisions recorded.")
    settled: int = Field(default=0, ge=0, description="Of them, settled by what people did.")
    agreed: int = Field(default=0, ge=0, description="Of the settled, those that agreed.")
    happened: dict[str, int] = Field(
        default_factory=dict,
        description="Settled decisions by what happened: merged, closed, stepped_in, changed.",
    )


class ShadowStatus(_Status):
    """How far a shadow rule's decisions agree with what people then did (spec.mode: Shadow)."""

    decisions: int = Field(default=0, ge=0, description="Shadow decisions recorded.")
    settled: int = Field(default=0, ge=0, description="Of them, settled by what people did.")
    agreed: int = Field(default=0, ge=0, description="Of the settled, those that agreed.")
    agreement: float | None = Field(
        default=None, ge=0, le=1, description="agreed / settled; none while nothing is settled."
    )
    actions: dict[str, ShadowActionScore] = Field(
        default_factory=dict, description="The same, per decided action."
    )
    workflow: str | None = Field(default=None, description="The run that reported it.")


class RuleStatus(_Status):
    """What the controller writes about a rule (the status subresource).

    The earlier design's ``lastReconciliationTime``, ``processedPRCount`` and ``lastError`` keep
    their meaning: the last run's end and pull request count, and the problem of the rule.
    """

    observedGeneration: int | None = Field(
        default=None, ge=0, description="The rule's generation the controller last handled."
    )
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready, Invalid and ApplyFailed."
    )
    generated: GeneratedObject | None = Field(
        default=None, description="The CronWorkflow or CronJob the rule is compiled into."
    )
    schedule: str | None = Field(
        default=None,
        description="The cron schedule passes run on (an interval rounded to whole minutes).",
    )
    scheduleNote: str | None = Field(
        default=None, description="How the schedule differs from what the rule asks, if it does."
    )
    lastRun: LastRun | None = Field(default=None, description="The newest run of the rule.")
    history: list[RunRecord] = Field(
        default_factory=list,
        description="The last finished runs (at most ten, oldest first; Argo target only).",
    )
    lastReconciliationTime: str | None = Field(
        default=None, description="When the last run finished.", json_schema_extra=_DATE_TIME
    )
    processedPRCount: int | None = Field(
        default=None, ge=0, description="Pull requests decided by the last run."
    )
    lastError: str | None = Field(
        default=None, description="Why the rule is not applied, if it is not."
    )
    shadow: ShadowStatus | None = Field(
        default=None,
        description=(
            "The shadow score as the newest run of the rule in shadow mode reported it (kept "
            "after the rule is switched to Enforce)."
        ),
    )
    triggers: str | None = Field(
        default=None,
        description=(
            "What starts a pass: 'schedule', or 'schedule+events' with the rule's Sensor; "
            "'schedule (events off)' when the installation does not receive events, "
            "'schedule (no events)' on the CronJob target."
        ),
    )
    sensor: str | None = Field(
        default=None, description="The Argo Events Sensor that starts passes on GitHub events."
    )


class PRReconciliationRule(BaseModel):
    """A whole rule document, as applied with kubectl."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    apiVersion: Literal["aioperator.io/v1alpha1"]
    kind: Literal["PRReconciliationRule"]
    metadata: ObjectMeta
    spec: RuleSpec
    status: RuleStatus | None = None

    @property
    def qualified_name(self) -> str:
        """``namespace/name``: how logs, metrics and comment markers name the rule."""
        return f"{self.metadata.namespace}/{self.metadata.name}"

    def spec_hash(self) -> str:
        """Return a short, stable digest of the spec; it changes whenever the spec does."""
        canonical = json.dumps(self.spec.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def to_document(self) -> dict[str, Any]:
        """Return the rule as a Kubernetes document (no status)."""
        return self.model_dump(mode="json", exclude={"status"}, exclude_none=True)
