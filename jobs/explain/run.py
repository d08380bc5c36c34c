"""``ai-operator explain``: read what the explanation needs, then explain. Read-only.

One read of the pull request (the same fresh read ``act`` makes), the memory of ``run``'s
decisions, and, only when the rule caps merges or closes, the pass's search (to know which
pull requests come first). Nothing is written to GitHub, and the model is not asked.

Errors: :class:`ExplainError`, one line for people (the pull request named badly or not found,
GitHub unreachable).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ai_operator.jobs.clients.github import GitHubClient
from ai_operator.jobs.clients.github.errors import GitHubError
from ai_operator.jobs.clients.kube import APIUnreadable, KubernetesAPI
from ai_operator.jobs.clients.outcome_index import OutcomeIndex
from ai_operator.jobs.config import ConfigError, Settings, model_identity, rule_repositories
from ai_operator.jobs.demo.sandbox import SANDBOX_GITHUB, on_sandbox, sandbox_github
from ai_operator.jobs.explain.explanation import Explanation, explain, would_do
from ai_operator.jobs.policy.caps import cap_of
from ai_operator.jobs.policy.reuse import Remembered, order_in_pass
from ai_operator.jobs.policy.snapshot import PullRequestKey, PullRequestSnapshot
from ai_operator.jobs.reconcile.gather import gather
from ai_operator.jobs.reconcile.ports import DecisionMemory, GitHubReader
from ai_operator.jobs.rules.files import RuleFileError
from ai_operator.jobs.rules.model import Action, PRReconciliationRule
from ai_operator.jobs.rules.names import outcome_index_prefix
from ai_operator.jobs.rules.schedule import describe_period, minutes_between, next_pass, resolve
from ai_operator.jobs.rules.validation import NotOneRule, load_one_valid_rule
from ai_operator.jobs.sandbox.samples import build_history_world

_SHORT = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+)#(?P<number>\d+)$")
_URL = re.compile(r"^https?://[^/]+/(?P<repo>[\w.-]+/[\w.-]+)/pull/(?P<number>\d+)/?$")


class ExplainError(Exception):
    """The explanation cannot be given; the message says what is wrong."""


@dataclass(frozen=True)
class ExplainOptions:
    """What the user asked for."""

    rule_file: Path
    pull_request: str
    sandbox: bool = False


def parse_pull_request(text: str) -> PullRequestKey:
    """``owner/name#N`` or a pull request's URL (``https://github.com/owner/name/pull/N``)."""
    found = _SHORT.match(text.strip()) or _URL.match(text.strip())
    if found is None:
        raise ExplainError(
            f"{text!r} names no pull request: write OWNER/REPO#N or the pull request's URL"
        )
    return PullRequestKey(repository=found.group("repo"), number=int(found.group("number")))


def explain_pull_request(
    rule: PRReconciliationRule,
    target: PullRequestKey,
    github: GitHubReader,
    memory: DecisionMemory | None,
    *,
    repositories: Sequence[str],
    model: str,
    max_age: float,
    now: datetime,
) -> Explanation:
    """Read ``target``'s facts (and the memory) and explain ``rule`` on it."""
    try:
        pr = github.pull_request(target.repository, target.number)
    except GitHubError as exc:
        raise ExplainError(f"reading {target.display} failed: {exc}") from exc
    try:
        remembered = memory.recall(rule.qualified_name) if memory else {}
    except APIUnreadable as exc:
        raise ExplainError(f"reading the rule's outcome index failed: {exc}") from exc
    clock = now.timestamp()
    ready = _ready(rule, pr, github, remembered, repositories, model, clock, max_age)
    spec = rule.spec
    schedule = resolve(spec.schedule, spec.reconciliationInterval)
    upcoming = None if spec.suspend else next_pass(schedule, spec.timezone, now)
    when = (
        "suspended (spec.suspend): no scheduled pass"
        if spec.suspend
        else f"cron {schedule.cron}, {describe_period(minutes_between(schedule))}"
    )
    return explain(
        rule,
        pr,
        repositories=repositories,
        remembered=remembered.get(pr.display),
        model=model,
        now=clock,
        max_age=max_age,
        ready=ready,
        order=lambda other: order_in_pass(other, remembered.get(other.display)),
        next_pass=upcoming,
        schedule=when,
    )


def _ready(
    rule: PRReconciliationRule,
    pr: PullRequestSnapshot,
    github: GitHubReader,
    remembered: Mapping[str, Remembered],
    repositories: Sequence[str],
    model: str,
    now: float,
    max_age: float,
) -> dict[Action, list[PullRequestSnapshot]]:
    """The pass's pull requests by the action it would take on each; read only for a cap."""
    if all(cap_of(rule.spec.limits, action) is None for action in (Action.MERGE, Action.CLOSE)):
        return {}
    try:
        others = gather(rule, repositories, github)
    except GitHubError as exc:
        raise ExplainError(f"searching the rule's pull requests failed: {exc}") from exc
    ready: dict[Action, list[PullRequestSnapshot]] = defaultdict(list)
    for other in others:
        if other.display == pr.display:
            continue
        the_plan, _ = would_do(
            rule, other, remembered.get(other.display), model=model, now=now, max_age=max_age
        )
        ready[the_plan.action].append(other)
    return dict(ready)


def run_explain(
    options: ExplainOptions,
    settings: Settings,
    github: GitHubClient | None,
    memory: DecisionMemory | None,
    now: datetime | None = None,
    cluster: KubernetesAPI | None = None,
) -> tuple[Explanation, str]:
    """Explain the rule of ``options`` on its pull request; the explanation and where GitHub is.

    ``cluster``: a Kubernetes API (``AI_OPERATOR_KUBERNETES_API``, e.g. ``kubectl proxy``'s):
    the recorded decision is then read from the rule's outcome index there, as its pipeline
    keeps it, instead of from ``memory`` (``run``'s).
    """
    target = parse_pull_request(options.pull_request)
    rule = _rule(options.rule_file)
    if cluster is not None and not options.sandbox:
        memory = OutcomeIndex(
            cluster,
            rule.metadata.namespace,
            outcome_index_prefix(rule.metadata.name),
            max_age_seconds=settings.decision_max_age_seconds,
        )
    moment = now or datetime.now(UTC)
    with ExitStack() as stack:
        if options.sandbox:
            github = stack.enter_context(_sandbox(settings, moment))
            repositories, where, memory = on_sandbox(rule), SANDBOX_GITHUB, None
        elif github is None:
            raise ExplainError("no GitHub to read: set GITHUB_TOKEN, or try it with --sandbox")
        else:
            repositories, where = _repositories(rule, settings), "GitHub"
        explanation = explain_pull_request(
            rule,
            target,
            github,
            memory,
            repositories=repositories,
            model=model_identity(rule.spec.ai, settings),
            max_age=settings.decision_max_age_seconds,
            now=moment,
        )
    return explanation, where


@contextmanager
def _sandbox(settings: Settings, now: datetime) -> Iterator[GitHubClient]:
    with sandbox_github(build_history_world(now), settings) as github:
        yield github


def _rule(path: Path) -> PRReconciliationRule:
    try:
        return load_one_valid_rule(path, "explain")
    except (RuleFileError, NotOneRule) as exc:
        raise ExplainError(str(exc)) from exc


def _repositories(rule: PRReconciliationRule, settings: Settings) -> tuple[str, ...]:
    try:
        return rule_repositories(rule.spec, settings)
    except ConfigError as exc:
        raise ExplainError(f"{rule.qualified_name}: {exc}") from exc
