"""The demo's passes: the product's own pass (or the pipeline's steps) against the sandbox.

:func:`run_demo` starts the sandbox GitHub (and the stand-in model when no ``AI_TOKEN`` is set),
points each rule at the sandbox's repositories, and runs three passes of every rule: a dry run,
the real pass, and the same pass again. The real pass remembers its decisions, as ``run`` does
(or as the pipeline's memo does), in a temporary directory of the demo's own, never the user's
cache; the last pass reuses every decision whose pull request did not change and asks the model
only about what changed. It returns a :class:`DemoResult` (what each pass decided and changed,
the pull requests afterwards, each pass's metrics) and stops every server it started, whatever
happens.

Pull requests are read and changed only through :class:`~jobs.clients.github.GitHubClient`, and
the model is asked only through :func:`~jobs.clients.ai.make_decision_client`: the demo adds no
path of its own to GitHub or to a model. Nothing leaves the machine unless ``AI_TOKEN`` is set,
and then only the model's requests.

Errors: :class:`DemoError`, one line for people (a rule file, the model's configuration, no
example rules to run).
"""

from __future__ import annotations

import json
import secrets
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ai_operator.jobs.clients.ai import DecisionClient, make_decision_client
from ai_operator.jobs.clients.ai.usage import ModelUsage
from ai_operator.jobs.clients.argocd import ArgoCDClient
from ai_operator.jobs.clients.decision_cache import DecisionFile
from ai_operator.jobs.clients.github import GitHubClient
from ai_operator.jobs.clients.github.errors import GitHubError
from ai_operator.jobs.clients.metrics import PassSummary, PushOutcome, push_pass_metrics
from ai_operator.jobs.config import AIConfig, ConfigError, Settings, resolve_ai
from ai_operator.jobs.log import add_secrets, configure_logging
from ai_operator.jobs.policy.pacing import DEFAULT_WRITES_PER_PASS, WriteBudget
from ai_operator.jobs.reconcile import steps
from ai_operator.jobs.reconcile.gate import WriteGate
from ai_operator.jobs.reconcile.ports import ArgoCDReader, DecisionMemory
from ai_operator.jobs.reconcile.report import summarize
from ai_operator.jobs.reconcile.results import PassReport, PullRequestFailure, PullRequestResult
from ai_operator.jobs.reconcile.run import Reuse, run_pass
from ai_operator.jobs.rules.encoding import StepInputError
from ai_operator.jobs.rules.files import RuleFileError
from ai_operator.jobs.rules.model import AISettings, PRReconciliationRule
from ai_operator.jobs.rules.validation import load_valid_rules
from ai_operator.jobs.sandbox import standin
from ai_operator.jobs.sandbox.argocd import FakeArgoCD
from ai_operator.jobs.sandbox.github import FakeGitHub
from ai_operator.jobs.sandbox.github_world import GitHubWorld
from ai_operator.jobs.sandbox.llm import FakeLLM, pull_request_facts
from ai_operator.jobs.sandbox.samples import (
    HEAD_MOVES,
    REPOSITORIES,
    SAMPLES,
    build_world,
    land_commit,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PASSES = (("dry run", True), ("for real", False), ("again", False))
REAL_PASS = "for real"  # noqa: S105 - a pass, not a password
REMEMBERING = frozenset({"for real", "again"})
"""The passes that use the demo's memory of decisions: the dry run asks the model afresh, so
the real pass still meets the author's push; the real pass writes, the last pass reuses."""
DEMO_DECISION_MAX_AGE_SECONDS = 3600.0

Progress = Callable[[str], None]


class DemoError(Exception):
    """The demo cannot start; the message is one line for people."""


@dataclass(frozen=True)
class DemoOptions:
    """What the user asked for."""

    rule_files: tuple[Path, ...] = ()
    pipeline: bool = False
    pushgateway: str | None = None


@dataclass(frozen=True)
class DemoRule:
    """A rule of the demo, the file it came from, and the sandbox repositories it runs on."""

    rule: PRReconciliationRule
    source: str
    repositories: tuple[str, ...]
    note: str | None = None


@dataclass(frozen=True)
class PassRun:
    """One pass of every rule: the reports, the mutations GitHub received, the metrics."""

    name: str
    dry_run: bool
    reports: tuple[PassReport, ...]
    summaries: tuple[PassSummary, ...]
    mutations: tuple[str, ...]
    pushes: tuple[PushOutcome, ...] = ()

    @property
    def mutation_counts(self) -> dict[str, int]:
        """GitHub mutations of this pass by name (``mergePullRequest``: 2, ...)."""
        return dict(sorted(Counter(self.mutations).items()))

    @property
    def model_calls(self) -> int:
        """Requests sent to the model in this pass, every rule together."""
        return sum(summary.ai_calls for summary in self.summaries)

    @property
    def reused(self) -> int:
        """Decisions this pass reused from an earlier one (no model asked)."""
        return sum(report.reused for report in self.reports)


@dataclass(frozen=True)
class PullRequestAfter:
    """A sample pull request after the real pass, and what the operator changed on it."""

    repository: str
    number: int
    title: str
    shows: str
    state: str
    labels_added: tuple[str, ...]
    comments: tuple[str, ...]
    head_moved: bool
    actions: tuple[str, ...]  # "rule: action" of every rule that decided it in the real pass


@dataclass(frozen=True)
class DemoResult:
    """Everything the demo did, for :mod:`jobs.demo.view` to show."""

    model: str
    stand_in: bool
    pipeline: bool
    rules: tuple[DemoRule, ...]
    passes: tuple[PassRun, ...]
    after: tuple[PullRequestAfter, ...]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Whether every pass went through and the last one changed nothing."""
        return not self.problems


def run_demo(
    options: DemoOptions, settings: Settings, progress: Progress | None = None
) -> DemoResult:
    """Run the three passes on a fresh sandbox; :class:`DemoError` when it cannot start."""
    rules = demo_rules(options.rule_files)
    world = build_world()
    before = {
        (pr.repository, pr.number): (pr.head_oid, tuple(pr.labels)) for pr in world.pull_requests
    }
    with _sandbox(world, settings) as sandbox:
        deciders = {
            item.rule.qualified_name: _Observed(sandbox.decider(item.rule), sandbox.author)
            for item in rules
        }
        passes: list[PassRun] = []
        after: tuple[PullRequestAfter, ...] = ()
        for name, dry_run in PASSES:
            if progress:
                progress(name)
            sandbox.author.armed = name == REAL_PASS
            passes.append(_pass(name, dry_run, rules, sandbox, deciders, options))
            if name == REAL_PASS:
                after = _after(world, before, passes[-1])
        problems = _problems(passes, sandbox.github_server)
    return DemoResult(
        model=sandbox.model_description,
        stand_in=sandbox.stand_in,
        pipeline=options.pipeline,
        rules=tuple(rules),
        passes=tuple(passes),
        after=after,
        problems=problems,
    )


# --- the rules -------------------------------------------------------------------------------


def demo_rules(files: Sequence[Path]) -> list[DemoRule]:
    """The rules to run (``files``, else the examples), each pointed at sandbox repositories."""
    paths = list(files) or _example_files()
    try:
        loaded = load_valid_rules(paths)
    except RuleFileError as exc:
        raise DemoError(str(exc)) from exc
    return [_on_sandbox(item.rule, _shown(item.source.path)) for item in loaded]


def _shown(path: str) -> str:
    """``path`` relative to the working directory, or to the project for the examples."""
    resolved = Path(path).resolve()
    for base in (Path.cwd(), EXAMPLES.parent):
        if resolved.is_relative_to(base):
            return str(resolved.relative_to(base))
    return path


def _example_files() -> list[Path]:
    found = sorted(EXAMPLES.glob("*.yaml"))
    if not found:
        raise DemoError(
            "the example rules are not here (they live in the project's examples/ directory): "
            "pass your own with --rule FILE"
        )
    return found


def _on_sandbox(rule: PRReconciliationRule, source: str) -> DemoRule:
    named = tuple(rule.spec.repositories)
    if named and all(name in REPOSITORIES for name in named):
        return DemoRule(rule, source, named)
    if named:
        note = f"it names {', '.join(named)}: the demo runs it on the sandbox's repositories"
    else:
        note = "it names no repositories: the sandbox's stand in for GITHUB_REPOSITORIES"
    return DemoRule(rule, source, REPOSITORIES, note)


# --- the sandbox ------------------------------------------------------------------------------


@dataclass
class _Sandbox:
    """The running sandbox: GitHub, its client, and how each rule's model is reached."""

    github_server: FakeGitHub
    github: GitHubClient
    author: _AuthorPushes
    settings: Settings
    stand_in_url: str | None
    stand_in_token: str
    memory: DecisionFile
    """``run``'s memory of decisions."""
    outcome_index: DecisionFile
    """The pipeline's outcome index (a ConfigMap per shard in a cluster; a file here)."""
    argocd: ArgoCDClient | None = None
    """Argo CD's API on loopback: every sample repository's staging application, Healthy."""

    @property
    def stand_in(self) -> bool:
        """Whether the stand-in answers (no ``AI_TOKEN``)."""
        return self.stand_in_url is not None

    @property
    def model_description(self) -> str:
        """Which model answers, in words."""
        if self.stand_in:
            return f"{standin.NOTICE} (set AI_TOKEN to ask a real model)"
        config = self.model_config(None)
        where = config.base_url or "the provider's default endpoint"
        return f"{config.provider.value} {config.model} at {where} (AI_TOKEN is set)"

    def model_config(self, rule: PRReconciliationRule | None) -> AIConfig:
        """The model settings of ``rule``: the stand-in's, else the environment's and the rule's."""
        if self.stand_in_url is not None:
            return standin.model_config(self.stand_in_url, self.stand_in_token)
        try:
            return resolve_ai(rule.spec.ai if rule else AISettings(), self.settings)
        except ConfigError as exc:
            name = f"{rule.qualified_name}: " if rule else ""
            raise DemoError(f"{name}{exc}") from exc

    def decider(self, rule: PRReconciliationRule) -> DecisionClient:
        """A decision client for ``rule``, through the real SDK."""
        return make_decision_client(self.model_config(rule))


@contextmanager
def _sandbox(world: GitHubWorld, settings: Settings) -> Iterator[_Sandbox]:
    github_token = secrets.token_urlsafe(24)
    model_token = secrets.token_urlsafe(24)
    configure_logging(
        settings.log_level,
        settings.log_format,
        secrets=(*settings.secrets(), github_token, model_token),
    )
    with ExitStack() as stack:
        server = stack.enter_context(FakeGitHub(world, token=github_token))
        stand_in_url = None
        if settings.ai_token is None:
            stand_in = stack.enter_context(FakeLLM(brain=standin.standin_brain, token=model_token))
            stand_in_url = stand_in.anthropic_url
        github = GitHubClient(
            server.url,
            SecretStr(github_token),
            max_retries=2,
            backoff_seconds=0.05,
            mutation_interval_seconds=0.0,
            timeout_seconds=10.0,
        )
        directory = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="ai-operator-demo-"))
        )
        memory = DecisionFile(directory / "run", max_age_seconds=DEMO_DECISION_MAX_AGE_SECONDS)
        index = DecisionFile(directory / "pipeline", max_age_seconds=DEMO_DECISION_MAX_AGE_SECONDS)
        argocd_token = secrets.token_urlsafe(24)
        add_secrets(argocd_token)
        applications = {
            f"{repository.rpartition('/')[2]}-staging": ("Healthy", "Synced")
            for repository in sorted({pr.repository for pr in world.pull_requests})
        }
        argocd = stack.enter_context(FakeArgoCD(applications, token=argocd_token))
        yield _Sandbox(
            server,
            github,
            _AuthorPushes(world),
            settings,
            stand_in_url,
            model_token,
            memory,
            index,
            ArgoCDClient(argocd.url, SecretStr(argocd_token), timeout_seconds=5.0),
        )


# --- a commit lands while the model decides ---------------------------------------------------


class _AuthorPushes:
    """The author of :data:`HEAD_MOVES`, who pushes a commit while the model decides about it.

    Armed for the real pass only, and only once: the dry run shows what would happen, the real
    pass meets the moved head, and the pass after it decides on the new commit.
    """

    def __init__(self, world: GitHubWorld) -> None:
        self.armed = False
        self._world = world
        self._lock = threading.Lock()

    def after_answer(self, user: str) -> None:
        """Push to :data:`HEAD_MOVES` if the model just answered about it."""
        facts = pull_request_facts(user) or {}
        pr = facts.get("pr") or {}
        if (facts.get("repositoryFullName"), pr.get("number")) != HEAD_MOVES:
            return
        with self._lock:
            if not self.armed:
                return
            self.armed = False
        land_commit(self._world, *HEAD_MOVES)


class _Observed:
    """A decision client as the pass sees it, with :class:`_AuthorPushes` watching its answers."""

    def __init__(self, model: DecisionClient, author: _AuthorPushes) -> None:
        self._model = model
        self._author = author

    @property
    def calls(self) -> int:
        """Requests the model was sent so far."""
        return self._model.calls

    @property
    def model(self) -> str:
        """The model's name."""
        return self._model.model

    def thread_usage(self) -> ModelUsage:
        """Calls and tokens of the calling thread so far."""
        return self._model.thread_usage()

    def ask(self, system: str, user: str, schema: dict[str, Any]) -> object:
        """The model's answer; the author may push while it is on its way."""
        answer = self._model.ask(system, user, schema)
        self._author.after_answer(user)
        return answer


# --- one pass ---------------------------------------------------------------------------------


def _pass(
    name: str,
    dry_run: bool,
    rules: Sequence[DemoRule],
    sandbox: _Sandbox,
    deciders: dict[str, _Observed],
    options: DemoOptions,
) -> PassRun:
    mutations_before = len(sandbox.github_server.mutations)
    reports, summaries, pushes = [], [], []
    for item in rules:
        decider = deciders[item.rule.qualified_name]
        requests = sandbox.github.stats.requests
        if options.pipeline:
            report = pipeline_pass(
                item.rule,
                item.repositories,
                sandbox.github,
                decider,
                dry_run=dry_run,
                memory=sandbox.outcome_index if name in REMEMBERING else None,
                run=f"{_DEMO_RUN}-{PASSES.index((name, dry_run)) + 1}",
                argocd=sandbox.argocd,
            )
        else:
            reuse = _reuse(sandbox, item.rule) if name in REMEMBERING else None
            report = _run_pass(
                item.rule,
                item.repositories,
                sandbox.github,
                decider,
                dry_run=dry_run,
                reuse=reuse,
                argocd=sandbox.argocd,
            )
        summary = summarize(
            report,
            dry_run=dry_run or item.rule.spec.dryRun,
            github_requests=sandbox.github.stats.requests - requests,
            github_rate_limit_remaining=sandbox.github.stats.rate_limit_remaining,
            finished_at=time.time(),
        )
        reports.append(report)
        summaries.append(summary)
        if options.pushgateway:
            pushes.append(push_pass_metrics(options.pushgateway, summary))
    mutations = tuple(sandbox.github_server.mutations[mutations_before:])
    return PassRun(name, dry_run, tuple(reports), tuple(summaries), mutations, tuple(pushes))


def _run_pass(
    rule: PRReconciliationRule,
    repositories: Sequence[str],
    github: GitHubClient,
    decider: _Observed,
    *,
    dry_run: bool,
    reuse: Reuse | None = None,
    argocd: ArgoCDReader | None = None,
) -> PassReport:
    """``ai-operator run``'s pass, with its memory of decisions when ``reuse`` is given."""
    return run_pass(
        rule,
        repositories,
        github,
        decider,
        dry_run=dry_run or rule.spec.dryRun,
        reuse=reuse,
        gate=WriteGate(demo_budget(rule)),
        argocd=argocd,
    )


def demo_budget(rule: PRReconciliationRule) -> WriteBudget:
    """A pass's write budget, with the rule's merge and close caps.

    The default per pass: the demo's passes follow no schedule, so the hourly budget is not
    spread over them.
    """
    return WriteBudget.of(rule.spec.limits, DEFAULT_WRITES_PER_PASS)


def _reuse(sandbox: _Sandbox, rule: PRReconciliationRule) -> Reuse:
    """How ``run`` reuses decisions, kept in the demo's own temporary directory."""
    config = sandbox.model_config(rule)
    model = f"{config.provider.value}/{config.model}"
    return Reuse(sandbox.memory, model, DEMO_DECISION_MAX_AGE_SECONDS)


_DEMO_RUN = "demo"  # the run's name, as Argo's {{workflow.name}}: decisions made now, not replayed


def pipeline_pass(
    rule: PRReconciliationRule,
    repositories: Sequence[str],
    github: GitHubClient,
    decider: _Observed,
    *,
    dry_run: bool,
    memory: DecisionMemory | None = None,
    run: str = _DEMO_RUN,
    argocd: ArgoCDReader | None = None,
) -> PassReport:
    """One pass the way the compiled pipeline runs it, its steps in sequence in this process.

    fetch reads the outcome index (``memory``) and writes the references, leaving out the PRs
    whose recorded decision still stands (their rows say reused; nothing is done to them, as in
    the pipeline); each reference is one branch: decide from the reference alone, then act on
    fresh facts, then the branch's outcome record kept in the index. Every hand-over goes through
    the same text the pods exchange. ``run`` is the run's name, as Argo's ``{{workflow.name}}``.
    """
    started = time.monotonic()
    report = PassReport(rule=rule.qualified_name)
    act_dry_run = dry_run or rule.spec.dryRun
    try:
        fetched = steps.fetch_run(
            rule,
            list(repositories),
            github,
            memory,
            model=decider.model,
            limit=rule.spec.maxPullRequests,
            max_age=DEMO_DECISION_MAX_AGE_SECONDS,
            now=time.time(),
            budget=demo_budget(rule),
            argocd=argocd,
        )
    except GitHubError as exc:
        report.error = f"fetch failed: {exc}"
        report.duration_seconds = time.monotonic() - started
        return report
    rows = [
        PullRequestResult.of(decision, dry_run=act_dry_run).metered(ModelUsage(), 0.0, reused=True)
        for decision in fetched.reused
    ]
    try:
        for item in json.loads(steps.dump_for_argo(fetched.refs)):
            ref = steps.parse_ref(json.dumps(item))
            if not ref.noop:
                rows += _branch(rule, ref, github, decider, memory, run, dry_run=act_dry_run)
    except StepInputError as exc:
        report.error = f"a step refused its input: {exc}"
    report.results = sorted(rows, key=lambda row: (row.repository, row.number))
    report.matched, report.deferred = fetched.counts.matched, fetched.counts.deferred
    report.duration_seconds = time.monotonic() - started
    return report


def _branch(
    rule: PRReconciliationRule,
    ref: steps.PullRequestRef,
    github: GitHubClient,
    decider: _Observed,
    memory: DecisionMemory | None,
    run: str,
    *,
    dry_run: bool,
) -> list[PullRequestResult]:
    """One PR's branch, as its decide and act pods run it: the rows, the record kept."""
    started, before = time.monotonic(), decider.thread_usage()
    try:
        decision, settled, facts = steps.decide_seeing(
            rule, ref, github, decider, model=decider.model
        )
    except PullRequestFailure as exc:
        row = PullRequestResult(rule.qualified_name, *ref.target())
        return [row.failed(str(exc), exc.kind)]
    usage, latency = decider.thread_usage() - before, time.monotonic() - started
    output = steps.dump_for_argo(
        steps.Decided(
            decision=decision,
            usage=usage,
            latency_seconds=latency,
            run=run,
            settled=settled,
            facts=facts,
            share=ref.share,
            argocd=ref.argocd,
        )
    )
    decided = steps.parse_decided(output)
    share = decided[0].share if decided else None
    gate = WriteGate(share.budget() if share else demo_budget(rule))
    rows, key = steps.act_branch(
        rule, decided, github, dry_run=dry_run, run=run, model=decider.model, gate=gate
    )
    steps.keep_branch_record(rule, decided, rows, key, github, memory, now=time.time())
    return rows


# --- afterwards -------------------------------------------------------------------------------


def _after(
    world: GitHubWorld, before: dict[tuple[str, int], tuple[str, tuple[str, ...]]], run: PassRun
) -> tuple[PullRequestAfter, ...]:
    decided: dict[tuple[str, int], list[str]] = {}
    for report in run.reports:
        for row in report.results:
            name = report.rule.partition("/")[2] or report.rule
            decided.setdefault((row.repository, row.number), []).append(
                f"{name}: {row.reported_action}"
            )
    rows = []
    with world.lock:
        for sample in SAMPLES:
            pr = world.pull_request(sample.repository, sample.number)
            head, labels = before[(sample.repository, sample.number)]
            rows.append(
                PullRequestAfter(
                    repository=sample.repository,
                    number=sample.number,
                    title=sample.title,
                    shows=sample.shows,
                    state=pr.state,
                    labels_added=tuple(label for label in pr.labels if label not in labels),
                    comments=tuple(c.body for c in pr.comments if c.author == world.viewer_login),
                    head_moved=pr.head_oid != head,
                    actions=tuple(decided.get((sample.repository, sample.number), ())),
                )
            )
    return tuple(rows)


def _problems(passes: Sequence[PassRun], server: FakeGitHub) -> tuple[str, ...]:
    problems = []
    for run in passes:
        for report in run.reports:
            if report.error:
                problems.append(f"{run.name}: {report.rule}: {report.error}")
            problems.extend(
                f"{run.name}: {row.repository}#{row.number}: {row.error}" for row in report.failed
            )
    last = passes[-1]
    if last.mutations:
        changed = ", ".join(f"{n} {name}" for name, n in last.mutation_counts.items())
        problems.append(f"the second real pass changed GitHub again ({changed})")
    if server.invalid_documents:
        problems.append(f"GitHub's schema rejected {len(server.invalid_documents)} documents")
    if server.unexpected_errors:
        problems.append(f"the sandbox GitHub failed: {server.unexpected_errors[0]}")
    return tuple(problems)
