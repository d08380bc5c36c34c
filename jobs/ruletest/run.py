"""Run a rule's cases: each case's pull request through the real prompt, model and guardrails.

A case passes when the final action (after the guardrails) is one of those it expects and, with a
``reasonPattern``, the reason contains a match. It fails with a sentence saying why: the rule does
not cover the pull request, it expects only actions the rule never allows, the recording has no
answer for its prompt, the model could not be asked, or another action came out.

Which model answers: the configured one (``AI_TOKEN``, ``AI_MODEL``, ... and the rule's ``ai``),
or, offline, a recording (``--replay``) or the stand-in (``--stand-in``), both served on loopback
and asked through the real SDK.

Errors: :class:`RuleTestError`, one message for people (a file, the configuration, the options).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from ai_operator.jobs.clients.ai import make_decision_client
from ai_operator.jobs.config import AIConfig, ConfigError, Settings, resolve_ai
from ai_operator.jobs.log import configure_logging
from ai_operator.jobs.policy.argocd import ArgoCDStatus
from ai_operator.jobs.policy.prompt import build_prompt
from ai_operator.jobs.policy.selection import selection_problems
from ai_operator.jobs.policy.snapshot import (
    Check,
    CiStatus,
    Mergeable,
    PullRequestSnapshot,
    PullRequestState,
    Review,
)
from ai_operator.jobs.reconcile.ask import decide_pull_request
from ai_operator.jobs.reconcile.ports import Decider
from ai_operator.jobs.reconcile.results import PullRequestFailure
from ai_operator.jobs.rules.cases import CaseFile, PullRequestFacts, RuleCase, load_cases
from ai_operator.jobs.rules.files import RuleFileError
from ai_operator.jobs.rules.model import Action, PRReconciliationRule
from ai_operator.jobs.rules.template import TemplateError
from ai_operator.jobs.rules.validation import load_valid_rules
from ai_operator.jobs.ruletest.recording import (
    Recorder,
    Recording,
    RecordingError,
    load_recording,
    prompt_key,
)
from ai_operator.jobs.sandbox import standin
from ai_operator.jobs.sandbox.llm import FakeLLM

DEFAULT_REPOSITORY = "acme/web"
DEFAULT_AUTHOR = "octocat"
RECORD_AGAIN = "the rule or the case changed: record again"


class RuleTestError(Exception):
    """The tests cannot run; the message says which file, option or variable is wrong."""


@dataclass(frozen=True)
class RuleTestOptions:
    """What the user asked for."""

    rule_file: Path
    cases_file: Path
    record: Path | None = None
    replay: Path | None = None
    stand_in: bool = False
    parallelism: int = 4


@dataclass(frozen=True)
class CaseResult:
    """What happened to one case; ``problem`` says why it failed (None when it passed)."""

    name: str
    expected: tuple[Action, ...]
    proposed: Action | None = None
    final: Action | None = None
    guardrail: str | None = None
    guardrail_reason: str | None = None
    reason: str = ""
    fallback: bool = False
    problem: str | None = None

    @property
    def passed(self) -> bool:
        """Whether the case passed."""
        return self.problem is None


@dataclass(frozen=True)
class RuleTestRun:
    """The outcome of a cases file."""

    rule: str
    cases_file: str
    model: str
    results: tuple[CaseResult, ...]
    recorded: str | None = None  # where the answers were written (--record)

    @property
    def failed(self) -> list[CaseResult]:
        """The cases that failed."""
        return [result for result in self.results if not result.passed]


def run_rule_tests(options: RuleTestOptions, settings: Settings) -> RuleTestRun:
    """Run every case of ``options.cases_file`` against its rule."""
    if options.record and options.replay:
        raise RuleTestError("--record and --replay exclude each other: record once, then replay")
    cases = _cases(options.cases_file)
    rule = _rule_under_test(options.rule_file, cases)
    recording = _recording(options.replay) if options.replay else None
    with _model(options, settings, rule, recording) as (decider, model, description):
        recorder = Recorder(decider) if options.record else None
        asked = recorder or decider

        def one(case: RuleCase) -> CaseResult:
            return run_case(rule, case, asked, model, recording)

        with ThreadPoolExecutor(max_workers=max(1, options.parallelism)) as pool:
            results = tuple(pool.map(one, cases.cases))
    recorded = None
    if recorder is not None and options.record is not None:
        _write(options.record, rule, cases, recorder, model, description)
        recorded = str(options.record)
    return RuleTestRun(rule.qualified_name, str(options.cases_file), description, results, recorded)


def run_case(
    rule: PRReconciliationRule,
    case: RuleCase,
    decider: Decider,
    model: str,
    recording: Recording | None = None,
) -> CaseResult:
    """One case: facts, coverage, the model's answer through the guardrails, the comparison."""
    unasked = CaseResult(case.name, case.expected)
    pr = snapshot_of(rule, case)
    uncovered = selection_problems(pr, rule.spec.selector)
    if uncovered:
        return _failed(
            unasked, f"the rule does not cover this pull request ({'; '.join(uncovered)})"
        )
    never = _never_allowed(rule, case)
    if never:
        return _failed(unasked, never)
    if recording is not None and not _recorded(rule, pr, recording, model):
        return _failed(
            unasked, f"no recorded answer for this prompt under model {model}: {RECORD_AGAIN}"
        )
    try:
        decision = decide_pull_request(rule, pr, decider)
    except PullRequestFailure as exc:
        return _failed(unasked, f"no answer: {exc}")
    result = CaseResult(
        name=case.name,
        expected=case.expected,
        proposed=decision.proposed,
        final=decision.action,
        guardrail=decision.guardrail,
        guardrail_reason=decision.guardrail_reason,
        reason=decision.reason,
        fallback=decision.fallback,
    )
    return _failed(result, _mismatch(case, result))


def snapshot_of(rule: PRReconciliationRule, case: RuleCase) -> PullRequestSnapshot:
    """The pull request a case describes; unset facts are those of the rule's ordinary PR."""
    facts, selector = case.pr, rule.spec.selector
    repository = case.repository or next(iter(rule.spec.repositories), DEFAULT_REPOSITORY)
    mergeable = Mergeable(facts.mergeable_state)
    return PullRequestSnapshot(
        id="PR_" + hashlib.sha256(case.name.encode()).hexdigest()[:16],
        repository=repository,
        number=facts.number,
        url=f"https://github.com/{repository}/pull/{facts.number}",
        title=facts.title,
        body=facts.body,
        author=facts.author or selector.author or DEFAULT_AUTHOR,
        labels=tuple(facts.labels if facts.labels is not None else selector.labels.include),
        base_branch=facts.baseBranch or selector.baseBranch or "main",
        head_branch=facts.headBranch,
        head_oid=facts.headOid,
        state=PullRequestState.OPEN,
        is_draft=facts.isDraft,
        ci_status=CiStatus(facts.ciStatus),
        checks=_checks(facts),
        mergeable=mergeable,
        merge_state_status=facts.mergeStateStatus or _merge_state(facts, mergeable),
        review_decision=None if facts.reviewDecision == "NONE" else facts.reviewDecision,
        reviews=tuple(Review(author=r.author, state=r.state) for r in facts.reviews),
        additions=facts.additions,
        deletions=facts.deletions,
        changed_files=facts.changedFiles,
        created_at=facts.createdAt,
        updated_at=facts.updatedAt,
        argocd=ArgoCDStatus(health=case.argocd.health, sync=case.argocd.sync),
    )


# --- one case ---------------------------------------------------------------------------------


def _checks(facts: PullRequestFacts) -> tuple[Check, ...]:
    if facts.checks is not None:
        return tuple(
            Check(name=c.name, status=c.status, conclusion=c.conclusion) for c in facts.checks
        )
    by_status = {
        "SUCCESS": (Check(name="ci", status="COMPLETED", conclusion="SUCCESS"),),
        "FAILURE": (Check(name="ci", status="COMPLETED", conclusion="FAILURE"),),
        "ERROR": (Check(name="ci", status="COMPLETED", conclusion="STARTUP_FAILURE"),),
        "PENDING": (Check(name="ci", status="IN_PROGRESS"),),
    }
    return by_status.get(facts.ciStatus, ())


def _merge_state(facts: PullRequestFacts, mergeable: Mergeable) -> str:
    if facts.isDraft:
        return "DRAFT"
    return {Mergeable.MERGEABLE: "CLEAN", Mergeable.CONFLICTING: "DIRTY"}.get(mergeable, "UNKNOWN")


def _never_allowed(rule: PRReconciliationRule, case: RuleCase) -> str | None:
    permitted = rule.spec.permitted_actions
    if any(action in permitted for action in case.expected):
        return None
    wanted = ", ".join(action.value for action in case.expected)
    allowed = ", ".join(sorted(action.value for action in permitted))
    return (
        f"expects {wanted}, which the rule never allows (allowed: {allowed}): "
        "the case contradicts the rule"
    )


def _recorded(
    rule: PRReconciliationRule, pr: PullRequestSnapshot, recording: Recording, model: str
) -> bool:
    try:
        prompt = build_prompt(rule.spec, pr)
    except TemplateError:
        return True  # asking reports the template's error
    return recording.find(model, prompt_key(prompt.system, prompt.user)) is not None


def _mismatch(case: RuleCase, result: CaseResult) -> str | None:
    final = result.final
    if final not in case.expected:
        wanted = " or ".join(action.value for action in case.expected)
        got = final.value if final else "nothing"
        return f"expected {wanted}, got {got}" + _why(result)
    if case.reasonPattern and not re.search(case.reasonPattern, result.reason):
        return f"the reason does not match {case.reasonPattern!r}: {result.reason!r}"
    return None


def _why(result: CaseResult) -> str:
    if result.fallback:
        return f" (the rule's fallback: {result.reason})"
    model = f" (the model proposed {result.proposed.value if result.proposed else 'nothing'}"
    if result.guardrail:
        return f"{model}; guardrail {result.guardrail}: {result.guardrail_reason})"
    return f"{model}: {result.reason!r})"


def _failed(result: CaseResult, problem: str | None) -> CaseResult:
    return replace(result, problem=problem)


# --- files ------------------------------------------------------------------------------------


def _cases(path: Path) -> CaseFile:
    try:
        return load_cases(path)
    except RuleFileError as exc:
        raise RuleTestError(str(exc)) from exc


def _rule_under_test(path: Path, cases: CaseFile) -> PRReconciliationRule:
    try:
        rules = [loaded.rule for loaded in load_valid_rules([path])]
    except RuleFileError as exc:
        raise RuleTestError(str(exc)) from exc
    if cases.rule is not None:
        named = [rule for rule in rules if rule.metadata.name == cases.rule]
        if not named:
            held = ", ".join(rule.metadata.name for rule in rules)
            raise RuleTestError(f"{path} holds no rule named {cases.rule!r} (it holds: {held})")
        return named[0]
    if len(rules) != 1:
        raise RuleTestError(
            f"{path} holds {len(rules)} rules: name the one under test with `rule:` in the "
            "cases file"
        )
    return rules[0]


def _recording(path: Path) -> Recording:
    try:
        return load_recording(path)
    except RecordingError as exc:
        raise RuleTestError(str(exc)) from exc


def _write(
    path: Path,
    rule: PRReconciliationRule,
    cases: CaseFile,
    recorder: Recorder,
    model: str,
    produced_by: str,
) -> None:
    recording = Recording(produced_by=produced_by, rule=rule.qualified_name)
    for case in cases.cases:
        try:
            prompt = build_prompt(rule.spec, snapshot_of(rule, case))
        except TemplateError:
            continue
        key = prompt_key(prompt.system, prompt.user)
        if key in recorder.answers:
            recording.answers[(model, key)] = {"case": case.name, **recorder.answers[key]}
    try:
        path.write_text(recording.to_yaml(), encoding="utf-8")
    except OSError as exc:
        raise RuleTestError(f"{path}: cannot write the recording: {exc.strerror}") from exc


# --- the model --------------------------------------------------------------------------------


@contextmanager
def _model(
    options: RuleTestOptions,
    settings: Settings,
    rule: PRReconciliationRule,
    recording: Recording | None,
) -> Iterator[tuple[Decider, str, str]]:
    """The decider, the model's name (for recordings) and who answers, in words."""
    if recording is None and not options.stand_in:
        config = _configured(settings, rule)
        configure_logging(settings.log_level, settings.log_format, secrets=settings.secrets())
        where = config.base_url or "the provider's default endpoint"
        yield (
            make_decision_client(config),
            config.model,
            f"{config.provider.value} {config.model} at {where}",
        )
        return
    token = secrets.token_urlsafe(24)
    configure_logging(settings.log_level, settings.log_format, secrets=(*settings.secrets(), token))
    if recording is not None:
        model = _replayed_model(settings, rule, recording)
        brain = recording.replay_answer
        description = (
            f"{model}'s answers replayed from {options.replay} (producedBy: "
            f"{recording.produced_by})"
        )
    else:
        model, brain, description = standin.MODEL_NAME, standin.standin_brain, standin.PRODUCED_BY
    with FakeLLM(brain=brain, token=token) as server:
        yield (
            make_decision_client(standin.model_config(server.anthropic_url, token, model)),
            model,
            description,
        )


def _configured(settings: Settings, rule: PRReconciliationRule) -> AIConfig:
    try:
        return resolve_ai(rule.spec.ai, settings)
    except ConfigError as exc:
        raise RuleTestError(
            f"{exc}; or answer offline with --replay FILE (a recording) or --stand-in "
            "(not a real model)"
        ) from exc


def _replayed_model(settings: Settings, rule: PRReconciliationRule, recording: Recording) -> str:
    """The configured model, else the recording's only one."""
    configured = rule.spec.ai.model or settings.ai_model
    if configured:
        return configured
    models = recording.models
    if len(models) > 1:
        raise RuleTestError(
            f"the recording holds answers of {', '.join(models)}: pick one with AI_MODEL"
        )
    return models[0] if models else standin.MODEL_NAME
