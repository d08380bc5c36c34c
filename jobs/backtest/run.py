"""``ai-operator backtest``: a rule decided again on the pull requests people settled, and scored.

The pull requests of the rule's repositories merged or closed in the window are read in search
pages of 100 (:meth:`~jobs.clients.github.GitHubClient.search_settled_pull_requests`); those the
selector covers, as they stood at their last head commit (:func:`jobs.policy.backtest.as_open`),
go through the same prompt, model and guardrails as a pass (:func:`jobs.reconcile.ask.
decide_pull_request`), one decision each, and are compared with what people did
(:func:`jobs.policy.backtest.score`). Nothing is written to GitHub.

Which model answers: the configured one, or offline a recording (``--replay``) or the stand-in
(``--stand-in``, and on the sandbox when no ``AI_TOKEN`` is set), served on loopback and asked
through the real SDK. ``--record`` keeps the answers for a later ``--replay``.

Errors: :class:`BacktestError`, one line for people (a file, an option, the configuration, a
failed search).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from ai_operator.jobs.clients.ai import make_decision_client
from ai_operator.jobs.clients.ai.usage import ModelUsage
from ai_operator.jobs.clients.github import GitHubClient
from ai_operator.jobs.clients.github.errors import GitHubError
from ai_operator.jobs.config import ConfigError, Settings, resolve_ai, rule_repositories
from ai_operator.jobs.demo.sandbox import SANDBOX_GITHUB, on_sandbox, sandbox_github, stand_in
from ai_operator.jobs.policy.backtest import (
    Compared,
    Score,
    Settled,
    agrees,
    as_open,
    score,
    within,
)
from ai_operator.jobs.policy.prompt import build_prompt
from ai_operator.jobs.policy.selection import selection_problems
from ai_operator.jobs.reconcile.ask import decide_pull_request
from ai_operator.jobs.reconcile.ports import Decider
from ai_operator.jobs.reconcile.results import PullRequestFailure
from ai_operator.jobs.rules.files import RuleFileError
from ai_operator.jobs.rules.model import PRReconciliationRule
from ai_operator.jobs.rules.template import TemplateError
from ai_operator.jobs.rules.validation import NotOneRule, load_one_valid_rule
from ai_operator.jobs.ruletest.recording import (
    Recorder,
    Recording,
    RecordingError,
    load_recording,
    prompt_key,
)
from ai_operator.jobs.sandbox import standin
from ai_operator.jobs.sandbox.samples import build_history_world

DEFAULT_LIMIT = 1000  # GitHub's search returns at most 1,000 results
_DURATION = re.compile(r"^(\d+)([hdw])$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


class BacktestError(Exception):
    """The backtest cannot run; the message says which file, option or setting is wrong."""


@dataclass(frozen=True)
class BacktestOptions:
    """What the user asked for."""

    rule_file: Path
    since: str = "30d"
    until: str | None = None
    limit: int = DEFAULT_LIMIT
    record: Path | None = None
    replay: Path | None = None
    stand_in: bool = False
    sandbox: bool = False
    parallelism: int = 4


@dataclass(frozen=True)
class Window:
    """The settling times looked at, both ends included."""

    since: datetime
    until: datetime


@dataclass(frozen=True)
class Cost:
    """What the backtest spent: model calls and tokens, GitHub requests."""

    ai: ModelUsage = field(default_factory=ModelUsage)
    github_requests: int = 0


@dataclass(frozen=True)
class Unanswered:
    """A settled pull request the rule covers but could not decide (the model failed, say)."""

    display: str
    url: str
    error: str


@dataclass(frozen=True)
class Backtest:
    """The outcome of a backtest."""

    rule: str
    window: Window
    github: str
    model: str
    compared: tuple[Compared, ...]
    score: Score
    cost: Cost
    unanswered: tuple[Unanswered, ...] = ()
    recorded: str | None = None
    seen: int = 0
    """Settled pull requests the search found (covered by the rule or not)."""


def parse_window(since: str, until: str | None, now: datetime) -> Window:
    """``--since`` (``30d``, ``12h``, ``2w`` or a date) and ``--until`` (a date; default now).

    A date alone is that day: ``--since`` from its start, ``--until`` to its end (UTC).
    """
    end = now if until is None else _instant(until, "--until", end_of_day=True)
    found = _DURATION.match(since.strip())
    if found:
        start = end - int(found.group(1)) * _UNITS[found.group(2)]
    else:
        start = _instant(since, "--since", end_of_day=False)
    if start >= end:
        raise BacktestError(f"--since {since} is not before --until {until or 'now'}")
    return Window(start, end)


def _instant(text: str, option: str, *, end_of_day: bool) -> datetime:
    value = text.strip()
    try:
        if "T" not in value.upper():
            day = datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
            return day + timedelta(days=1, microseconds=-1) if end_of_day else day
        moment = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise BacktestError(
            f"{option} {text!r} is neither a duration (30d, 12h, 2w) nor a date (2026-11-01)"
            if option == "--since"
            else f"{option} {text!r} is not a date (2026-11-30) or time (2026-11-30T12:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run_backtest(
    options: BacktestOptions,
    settings: Settings,
    github: GitHubClient | None = None,
    now: datetime | None = None,
) -> Backtest:
    """Backtest the rule of ``options``: on the sandbox (``--sandbox``), else ``github``."""
    if options.record and options.replay:
        raise BacktestError("--record and --replay exclude each other: record once, then replay")
    if options.limit < 1:
        raise BacktestError("--limit must be at least 1")
    moment = now or datetime.now(UTC)
    window = parse_window(options.since, options.until, moment)
    rule = _rule(options.rule_file)
    recording = _recording(options.replay) if options.replay else None
    with ExitStack() as stack:
        if options.sandbox:
            github = stack.enter_context(sandbox_github(build_history_world(moment), settings))
            repositories, where = on_sandbox(rule), SANDBOX_GITHUB
        elif github is None:
            raise BacktestError("no GitHub to read: set GITHUB_TOKEN, or try it with --sandbox")
        else:
            repositories, where = _repositories(rule, settings), "GitHub"
        decider, model, description = stack.enter_context(
            _model(options, settings, rule, recording)
        )
        recorder = Recorder(decider) if options.record else None
        requests_before = github.stats.requests
        settled = _settled(github, rule, repositories, window, options.limit)
        covered = [s for s in settled if not selection_problems(as_open(s), rule.spec.selector)]
        asked = recorder or decider

        def one(item: Settled) -> tuple[Compared | Unanswered, ModelUsage]:
            before = asked.thread_usage()
            outcome = _compare(rule, item, asked, model, recording)
            return outcome, asked.thread_usage() - before

        with ThreadPoolExecutor(max_workers=max(1, options.parallelism)) as pool:
            outcomes = list(pool.map(one, covered))
        cost = Cost(
            sum((usage for _, usage in outcomes), ModelUsage()),
            github.stats.requests - requests_before,
        )
    compared = tuple(o for o, _ in outcomes if isinstance(o, Compared))
    recorded = None
    if recorder is not None and options.record is not None:
        _write(options.record, rule, covered, recorder, model, description)
        recorded = str(options.record)
    return Backtest(
        rule=rule.qualified_name,
        window=window,
        github=where,
        model=description,
        compared=compared,
        score=score(compared),
        cost=cost,
        unanswered=tuple(o for o, _ in outcomes if isinstance(o, Unanswered)),
        recorded=recorded,
        seen=len(settled),
    )


def _settled(
    github: GitHubClient,
    rule: PRReconciliationRule,
    repositories: Sequence[str],
    window: Window,
    limit: int,
) -> list[Settled]:
    try:
        found = github.search_settled_pull_requests(
            repositories, rule.spec.selector, window.since, window.until, limit
        )
    except GitHubError as exc:
        raise BacktestError(f"searching settled pull requests failed: {exc}") from exc
    # The search index is a first filter: the window is checked again on what GitHub answered.
    return [item for item in found if within(item, window.since, window.until)]


def _compare(
    rule: PRReconciliationRule,
    item: Settled,
    decider: Decider,
    model: str,
    recording: Recording | None,
) -> Compared | Unanswered:
    pr = as_open(item)
    if recording is not None and not _recorded(rule, item, recording, model):
        missing = f"no recorded answer for this prompt under model {model}: record again"
        return Unanswered(pr.display, pr.url, missing)
    try:
        decision = decide_pull_request(rule, pr, decider)
    except PullRequestFailure as exc:
        return Unanswered(pr.display, pr.url, str(exc))
    reason = decision.reason
    if decision.guardrail_reason:
        reason = f"{reason} (safety rule: {decision.guardrail_reason})"
    return Compared(
        display=pr.display,
        url=pr.url,
        decided=decision.action,
        happened=item.happened,
        agreed=agrees(decision.action, item),
        reason=reason,
    )


# --- the rule, its repositories, the model -----------------------------------------------------


def _rule(path: Path) -> PRReconciliationRule:
    try:
        return load_one_valid_rule(path, "backtest")
    except (RuleFileError, NotOneRule) as exc:
        raise BacktestError(str(exc)) from exc


def _repositories(rule: PRReconciliationRule, settings: Settings) -> tuple[str, ...]:
    try:
        return rule_repositories(rule.spec, settings)
    except ConfigError as exc:
        raise BacktestError(f"{rule.qualified_name}: {exc}") from exc


def _recording(path: Path) -> Recording:
    try:
        return load_recording(path)
    except RecordingError as exc:
        raise BacktestError(str(exc)) from exc


def _recorded(rule: PRReconciliationRule, item: Settled, recording: Recording, model: str) -> bool:
    try:
        prompt = build_prompt(rule.spec, as_open(item))
    except TemplateError:
        return True  # asking reports the template's error
    return recording.find(model, prompt_key(prompt.system, prompt.user)) is not None


@contextmanager
def _model(
    options: BacktestOptions,
    settings: Settings,
    rule: PRReconciliationRule,
    recording: Recording | None,
) -> Iterator[tuple[Decider, str, str]]:
    """The decider, the model's name (for recordings) and who answers, in words."""
    if recording is not None:
        model = _replayed_model(settings, rule, recording)
        with stand_in(settings, recording.replay_answer, model) as config:
            yield (
                make_decision_client(config),
                model,
                f"{model}'s answers replayed from {options.replay} (producedBy: "
                f"{recording.produced_by})",
            )
        return
    if options.stand_in or (options.sandbox and settings.ai_token is None):
        with stand_in(settings) as config:
            yield make_decision_client(config), standin.MODEL_NAME, standin.PRODUCED_BY
        return
    try:
        config = resolve_ai(rule.spec.ai, settings)
    except ConfigError as exc:
        raise BacktestError(
            f"{exc}; or answer offline with --replay FILE (a recording) or --stand-in "
            "(not a real model)"
        ) from exc
    where = config.base_url or "the provider's default endpoint"
    yield (
        make_decision_client(config),
        config.model,
        f"{config.provider.value} {config.model} at {where}",
    )


def _replayed_model(settings: Settings, rule: PRReconciliationRule, recording: Recording) -> str:
    configured = rule.spec.ai.model or settings.ai_model
    if configured:
        return configured
    models = recording.models
    if len(models) > 1:
        raise BacktestError(
            f"the recording holds answers of {', '.join(models)}: pick one with AI_MODEL"
        )
    return models[0] if models else standin.MODEL_NAME


def _write(
    path: Path,
    rule: PRReconciliationRule,
    covered: Sequence[Settled],
    recorder: Recorder,
    model: str,
    produced_by: str,
) -> None:
    recording = Recording(produced_by=produced_by, rule=rule.qualified_name)
    for item in covered:
        try:
            prompt = build_prompt(rule.spec, as_open(item))
        except TemplateError:
            continue
        key = prompt_key(prompt.system, prompt.user)
        if key in recorder.answers:
            recording.answers[(model, key)] = {"case": item.pr.display, **recorder.answers[key]}
    try:
        path.write_text(recording.to_yaml(), encoding="utf-8")
    except OSError as exc:
        raise BacktestError(f"{path}: cannot write the recording: {exc.strerror}") from exc
