"""The ``ai-operator`` commands that run reconciliation: ``run``, ``validate`` and ``step``.

Exit codes (documented in the README):
    0  every rule's pass and every pull request went through
    1  configuration error: a rule file, an environment variable, a missing token, credentials
       GitHub or the model refused
    2  some pull requests (or a rule's whole pass) failed; the others were still handled
   64  usage error: an unknown command or option, a missing argument (EX_USAGE)
   75  (``step`` only) a transient failure: Argo retries the step
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from jobs.clients.ai import DecisionClient, make_decision_client
from jobs.clients.argo_workflow import FailedNode, failed_nodes
from jobs.clients.decision_cache import DecisionFile, cache_directory
from jobs.clients.github import GitHubClient
from jobs.clients.github.errors import GitHubAuthError, GitHubError, GitHubUnreachable
from jobs.clients.kube import APIRequestError, APIUnreadable, KubernetesAPI
from jobs.clients.metrics import PassSummary, push_pass_metrics
from jobs.clients.network import safe_url
from jobs.clients.outcome_index import OutcomeIndex, OutcomeIndexError
from jobs.clients.rule_lease import LeaseHeld, RuleLease
from jobs.clients.rule_lock import RuleLock, RuleLockError, lock_directory
from jobs.config import (
    ConfigError,
    Settings,
    check_limits,
    model_identity,
    resolve_ai,
    rule_repositories,
)
from jobs.log import configure_logging, decision_logger, get_logger, redact
from jobs.policy.admission import Scope
from jobs.policy.counts import PassCounts
from jobs.reconcile import steps
from jobs.reconcile.failures import FailureSummary, summarize_failures
from jobs.reconcile.report import (
    as_json,
    as_table,
    counts,
    decision_fields,
    summarize,
    summary_from_counts,
)
from jobs.reconcile.results import PassReport, PullRequestFailure, PullRequestResult
from jobs.reconcile.run import DEFAULT_PARALLELISM, Reuse, run_pass
from jobs.rules.encoding import (
    LIMITS_ENV,
    RULE_ENV,
    RULE_FILE_ENV,
    StepInputError,
    limits_document,
    rule_from_env,
)
from jobs.rules.files import RuleFileError, expand_paths
from jobs.rules.limits import LimitsSpec
from jobs.rules.model import KIND, PRReconciliationRule
from jobs.rules.schedule import minutes_between, resolve
from jobs.rules.validation import load_valid_rules

EXIT_OK, EXIT_CONFIG, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2, 64
HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings=HELP_OPTIONS,
    help="Let an AI settle pull requests safely, under rules you write.",
)
step_app = typer.Typer(
    no_args_is_help=True,
    context_settings=HELP_OPTIONS,
    help="Pipeline steps (run inside workflow pods).",
)
app.add_typer(step_app, name="step")


def _version() -> str:
    try:
        return metadata.version("ai-operator")
    except metadata.PackageNotFoundError:
        return "unknown"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"ai-operator {_version()}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Let an AI settle pull requests safely, under rules you write."""


class OutputFormat(StrEnum):
    """``--output`` choices."""

    TABLE = "table"
    JSON = "json"


def fail(message: str, code: int = EXIT_CONFIG) -> NoReturn:
    """Print a one-line error to stderr and exit."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _settings() -> Settings:
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        fail(str(exc))
    configure_logging(settings.log_level, settings.log_format, secrets=settings.secrets())
    return settings


def _github(settings: Settings) -> GitHubClient:
    try:
        token = settings.require_github_token()
    except ConfigError as exc:
        fail(str(exc))
    return GitHubClient(
        settings.github_url,
        token,
        max_retries=settings.github_max_retries,
        backoff_seconds=settings.github_retry_backoff,
        mutation_interval_seconds=settings.github_mutation_interval,
    )


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Rule files (YAML, multi-document or List).")],
) -> None:
    """Check rule files: schema, regexes, templates, schedules, actions."""
    from jobs.rules.validation import validate_files  # noqa: PLC0415 - keeps the command's start fast

    findings = validate_files(files)
    for finding in findings:
        where = f"{finding.source}: {finding.field}: " if finding.field else f"{finding.source}: "
        typer.echo(f"{finding.severity}: {where}{finding.message}", err=True)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        typer.echo(f"{len(errors)} error(s) in {len(expand_paths(files))} file(s)", err=True)
        raise typer.Exit(EXIT_CONFIG)
    typer.echo(f"{len(expand_paths(files))} file(s) valid")


@app.command()
def run(
    files: Annotated[list[Path] | None, typer.Argument(help="Rule files to run once.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide, change nothing.")] = False,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="A table for people, or JSON.")
    ] = OutputFormat.TABLE,
    parallelism: Annotated[
        int, typer.Option(min=1, max=64, help="Decisions at once.")
    ] = DEFAULT_PARALLELISM,
    rule_from_env: Annotated[
        bool,
        typer.Option(
            "--rule-from-env",
            help=f"Read the rule from {RULE_ENV}, else from the file named by {RULE_FILE_ENV}.",
        ),
    ] = False,
    no_cache: Annotated[
        bool,
        typer.Option("--no-cache", help="Ask the model about every PR; remember no decision."),
    ] = False,
    limits_file: Annotated[
        Path | None,
        typer.Option(
            "--limits",
            help=f"Limits the rules must stay within (YAML or JSON; default: {LIMITS_ENV}).",
        ),
    ] = None,
) -> None:
    """Run one reconciliation pass of each rule, locally.

    A PR whose facts did not change since its last decision (at most
    DECISION_CACHE_MAX_AGE_SECONDS ago) reuses that decision, remembered in the user's cache
    directory; the guardrails still check it on fresh facts before anything is done.
    """
    rules = _rules(files or [], rule_from_env)
    settings = _settings()
    if limits_file is not None:
        settings = settings.model_copy(update={"limits": _limits(limits_file)})
    github = _github(settings)
    # Every rule's configuration and the token are checked before any rule acts.
    setups = [_setup(rule, settings) for rule in rules]
    progress = _progress(output)
    if progress is not None:
        typer.echo(f"… checking the GitHub token at {safe_url(settings.github_url)}", err=True)
    _check_token(github)
    log = get_logger("run")
    memory = None if no_cache else _memory(settings)
    reports: list[PassReport] = []
    for setup in setups:
        reports.append(_run_rule(setup, settings, github, dry_run, parallelism, progress, memory))
    any_dry = dry_run or any(rule.spec.dryRun for rule in rules)
    rendered = as_json(reports, dry_run=any_dry) if output is OutputFormat.JSON else None
    typer.echo(rendered if rendered is not None else as_table(reports, dry_run=any_dry))
    failed = [r for r in reports if not r.ok]
    log.info("run finished", rules=len(reports), failed_rules=len(failed))
    refused = _refused_credentials(reports)
    if refused is not None:
        fail(refused)
    raise typer.Exit(EXIT_PARTIAL if failed else EXIT_OK)


@dataclass(frozen=True)
class _RuleSetup:
    """A rule with what its pass needs, resolved before any rule acts."""

    rule: PRReconciliationRule
    repositories: Sequence[str]
    ai: DecisionClient
    model: str


def _limits(path: Path) -> LimitsSpec:
    """The ``--limits`` file: a PRReconciliationLimits object, or its bare spec."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        fail(f"--limits {path}: {' '.join(str(exc).split())}")
    try:
        return limits_document(document, f"--limits {path}")
    except StepInputError as exc:
        fail(str(exc))


def _within_limits(rule: PRReconciliationRule, settings: Settings, step: str | None = None) -> None:
    """Refuse, before anything is read or written, a rule that exceeds its limits."""
    try:
        check_limits(rule.spec, settings)
    except ConfigError as exc:
        fail(f"{step + ': ' if step else ''}{rule.qualified_name}: {exc}")


def _setup(rule: PRReconciliationRule, settings: Settings) -> _RuleSetup:
    _within_limits(rule, settings)
    try:
        repositories = rule_repositories(rule.spec, settings)
        ai = make_decision_client(resolve_ai(rule.spec.ai, settings))
        model = model_identity(rule.spec.ai, settings)
    except ConfigError as exc:
        fail(f"{rule.qualified_name}: {exc}")
    return _RuleSetup(rule, repositories, ai, model)


def _check_token(github: GitHubClient) -> None:
    """Refused credentials are a configuration error, found before anything is done."""
    try:
        github.viewer_login()
    except (GitHubAuthError, GitHubUnreachable) as exc:
        fail(str(exc))  # refused token, host not found, certificate refused: no pass can do better
    except GitHubError:
        pass  # GitHub unavailable for now: each pass reports it


def _refused_credentials(reports: Sequence[PassReport]) -> str | None:
    """The error of a pull request whose credentials were refused (the model's, say), if any."""
    refused = [
        row.error for report in reports for row in report.results if row.error_kind == "auth"
    ]
    return refused[0] if refused else None


def _rules(files: Sequence[Path], from_env: bool) -> list[PRReconciliationRule]:
    if from_env:
        try:
            return [rule_from_env(os.environ)]
        except StepInputError as exc:
            fail(str(exc))
    if not files:
        fail("no rule files given (or use --rule-from-env)")
    try:
        rules = [loaded.rule for loaded in load_valid_rules(files)]
    except RuleFileError as exc:
        fail(str(exc))
    if not rules:
        fail(f"no {KIND} in {', '.join(map(str, files))}")
    return rules


def _rule_lock(settings: Settings) -> RuleLock:
    directory = lock_directory(cache_directory(settings.cache_home, settings.home))
    return RuleLock(directory, wait_seconds=settings.run_lock_wait_seconds)


def _memory(settings: Settings) -> DecisionFile:
    directory = cache_directory(settings.cache_home, settings.home)
    return DecisionFile(directory, max_age_seconds=settings.decision_max_age_seconds)


def _run_rule(
    setup: _RuleSetup,
    settings: Settings,
    github: GitHubClient,
    dry_run: bool,
    parallelism: int,
    progress: Callable[[str, PullRequestResult | None], None] | None,
    memory: DecisionFile | None,
) -> PassReport:
    rule, ai = setup.rule, setup.ai
    reuse = Reuse(memory, setup.model, settings.decision_max_age_seconds) if memory else None
    requests_before = github.stats.requests
    pass_dry_run = dry_run or rule.spec.dryRun
    started = time.monotonic()
    lock = _rule_lock(settings)
    try:
        with lock.held(rule.qualified_name):
            report = run_pass(
                rule,
                setup.repositories,
                github,
                ai,
                dry_run=pass_dry_run,
                parallelism=parallelism,
                progress=progress,
                reuse=reuse,
            )
    except RuleLockError as exc:  # another pass of this rule is running: this one did nothing
        report = PassReport(rule=rule.qualified_name, error=str(exc))
        report.duration_seconds = time.monotonic() - started
    except Exception as exc:  # one rule's failed pass never stops the next rule
        report = PassReport(rule=rule.qualified_name, error=f"{type(exc).__name__}: {exc}")
        report.duration_seconds = time.monotonic() - started
    _log_report(report)
    get_logger("run", rule=rule.qualified_name).info(
        "pass finished",
        matched=report.matched,
        decided=report.decided,
        reused=report.reused,
        deferred=report.deferred,
        cap=rule.spec.maxPullRequests,
    )
    if settings.pushgateway_url:
        summary = summarize(
            report,
            dry_run=pass_dry_run,
            github_requests=github.stats.requests - requests_before,
            github_rate_limit_remaining=github.stats.rate_limit_remaining,
            finished_at=time.time(),
            interval_seconds=_interval_seconds(rule),
        )
        _push(settings.pushgateway_url, summary)
    return report


def _interval_seconds(rule: PRReconciliationRule) -> float:
    """Seconds between two scheduled runs of ``rule`` (what "no success for N intervals" means)."""
    return 60.0 * minutes_between(resolve(rule.spec.schedule, rule.spec.reconciliationInterval))


def _push(url: str, summary: PassSummary) -> None:
    outcome = push_pass_metrics(url, summary)
    log = get_logger("metrics")
    if outcome.pushed:
        log.info("metrics pushed", rule=summary.qualified_name)
    else:
        log.warning("metrics push failed", rule=summary.qualified_name, error=outcome.error)


def _log_report(report: PassReport) -> None:
    """One decision line per pull request (whatever the log level), and a failed pass's error."""
    if report.error:
        get_logger("run", rule=report.rule).error("pass failed", error=report.error)
    log = decision_logger()
    for row in report.results:
        log.info("decision", **decision_fields(row))


def _progress(output: OutputFormat) -> Callable[[str, PullRequestResult | None], None] | None:
    if output is not OutputFormat.TABLE or not sys.stderr.isatty():
        return None

    def show(rule: str, row: PullRequestResult | None) -> None:
        if row is None:
            typer.echo(f"… {rule}", err=True)
        else:
            typer.echo(f"  {row.repository}#{row.number}: {row.action.value}", err=True)

    return show


# --- trying it: demo ---------------------------------------------------------------------------


@app.command()
def demo(
    rule_files: Annotated[
        list[Path] | None,
        typer.Option("--rule", help="Your own rule file, run on the sample PRs (repeatable)."),
    ] = None,
    pipeline: Annotated[
        bool, typer.Option("--pipeline", help="Run each pass through the pipeline's steps.")
    ] = False,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="A table for people, or JSON.")
    ] = OutputFormat.TABLE,
    pushgateway: Annotated[
        str | None, typer.Option("--pushgateway", help="Push each pass's metrics there.")
    ] = None,
) -> None:
    """Try it with no credentials: the example rules on a sandbox GitHub, dry run then for real.

    With AI_TOKEN set (and AI_PROVIDER, AI_MODEL, AI_ENDPOINT as usual) a real model answers;
    without it, a stand-in that says so.
    """
    from jobs.demo import run as demo_run  # noqa: PLC0415 - keeps the other commands' start fast
    from jobs.demo import view  # noqa: PLC0415

    options = demo_run.DemoOptions(tuple(rule_files or ()), pipeline, pushgateway)
    shown = output is OutputFormat.TABLE and sys.stderr.isatty()
    progress = (lambda name: typer.echo(f"… {name}", err=True)) if shown else None
    try:
        result = demo_run.run_demo(options, _settings(), progress)
    except demo_run.DemoError as exc:
        fail(str(exc))
    typer.echo(view.as_json(result) if output is OutputFormat.JSON else view.as_text(result))
    raise typer.Exit(EXIT_OK if result.ok else EXIT_PARTIAL)


@app.command("test")
def test_rule(
    rule_file: Annotated[Path, typer.Argument(help="The rule file.")],
    cases: Annotated[Path, typer.Option("--cases", help="The cases file (YAML).")],
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="A table for people, or JSON.")
    ] = OutputFormat.TABLE,
    junit: Annotated[Path | None, typer.Option("--junit", help="Also write JUnit XML.")] = None,
    record: Annotated[
        Path | None, typer.Option("--record", help="Write the model's answers there.")
    ] = None,
    replay: Annotated[
        Path | None, typer.Option("--replay", help="Answer offline from a recording.")
    ] = None,
    stand_in: Annotated[
        bool, typer.Option("--stand-in", help="Answer with the stand-in (not a real model).")
    ] = False,
) -> None:
    """Unit tests for a rule's instruction: each case's PR through the prompt, model, guardrails.

    Exit 1 when a case fails: another action came out, or it cannot pass as written.
    """
    from jobs.ruletest import run as ruletest  # noqa: PLC0415 - keeps the other commands' start fast
    from jobs.ruletest import view  # noqa: PLC0415

    options = ruletest.RuleTestOptions(rule_file, cases, record, replay, stand_in)
    try:
        outcome = ruletest.run_rule_tests(options, _settings())
    except ruletest.RuleTestError as exc:
        fail(str(exc))
    if junit is not None:
        _write(junit, view.as_junit(outcome))
    typer.echo(view.as_json(outcome) if output is OutputFormat.JSON else view.as_table(outcome))
    raise typer.Exit(EXIT_CONFIG if outcome.failed else EXIT_OK)


# --- pipeline steps --------------------------------------------------------------------------


def _step_rule() -> PRReconciliationRule:
    try:
        return rule_from_env(os.environ)
    except StepInputError as exc:
        fail(str(exc))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@step_app.command("fetch")
def step_fetch(
    output: Annotated[Path, typer.Option("--output", help="Where to write the PR references.")],
    counts_output: Annotated[
        Path | None, typer.Option("--counts-output", help="Where to write the counts (JSON).")
    ] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="Where the outcome index is.")
    ] = None,
    outcomes: Annotated[
        str | None,
        typer.Option("--outcomes", "--memo", help="The outcome index's prefix (-0 ... -f)."),
    ] = None,
    max_age: Annotated[
        str,
        typer.Option("--max-age", "--memo-max-age", help="How long a decision stands, e.g. 24h."),
    ] = "24h",
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="PRs to decide at most (default: cap).")
    ] = None,
) -> None:
    """Write references to the PRs to decide (a JSON list) and the run's counts.

    PRs whose recorded decision still stands (unchanged facts, younger than ``--max-age``) are
    left out; the others go least recently decided first, at most ``--limit``.
    """
    rule = _step_rule()
    settings = _settings()
    _within_limits(rule, settings, "fetch")
    github = _github(settings)
    memory = _outcome_index(rule, namespace, outcomes, max_age)
    try:
        fetched = steps.fetch_run(
            rule,
            list(rule_repositories(rule.spec, settings)),
            github,
            memory,
            model=model_identity(rule.spec.ai, settings),
            limit=limit or rule.spec.maxPullRequests,
            max_age=_go_seconds(max_age),
            now=time.time(),
        )
    except ConfigError as exc:
        fail(str(exc))
    except GitHubError as exc:
        _step_error("fetch", exc)
    _write(output, steps.dump_for_argo(fetched.refs))
    if counts_output is not None:
        _write(counts_output, steps.dump_for_argo(fetched.counts))
    log = get_logger("step", rule=rule.qualified_name)
    if fetched.memory_error:
        log.warning("outcome index not read: every PR is decided anew", error=fetched.memory_error)
    log.info("fetched", **fetched.counts.wire(), cap=rule.spec.maxPullRequests)


def _outcome_index(
    rule: PRReconciliationRule,
    namespace: str | None,
    prefix: str | None,
    max_age: str,
) -> OutcomeIndex | None:
    """The rule's outcome index, when the step knows where it is and can reach the API."""
    if prefix is None:
        return None
    seconds = _go_seconds(max_age)
    try:
        api = KubernetesAPI.from_environment(os.environ)
    except APIRequestError as exc:
        fail(str(exc))
    if api is None:
        get_logger("step").warning("no Kubernetes API: no outcome index", outcomes=prefix)
        return None
    # The controller makes the rule the index's owner (the steps do not know the rule's uid).
    where = namespace or rule.metadata.namespace
    return OutcomeIndex(api, where, prefix, None, max_age_seconds=seconds)


def _take_lease(namespace: str, name: str, holder: str) -> RuleLease | None:
    """Take the rule's Lease before acting: exit 75 (Argo retries) while another run holds it.

    Without a reachable API the act goes on without it (and says so): the CronWorkflow's
    ``concurrencyPolicy: Forbid`` still keeps scheduled runs apart.
    """
    log = get_logger("step")
    try:
        api = KubernetesAPI.from_environment(os.environ)
        if api is None:
            log.warning("no Kubernetes API: acting without the rule's lease", lease=name)
            return None
        lease = RuleLease(api, namespace, name, holder)
        lease.acquire()
        return lease
    except LeaseHeld as exc:
        _step_error("act", exc, kind="step")
    except APIRequestError as exc:
        log.warning("the rule's lease could not be taken: acting without it", error=str(exc))
    return None


def _release_lease(namespace: str, name: str, holder: str) -> None:
    """Give the rule's Lease up when this run holds it (best effort: it expires anyway)."""
    log = get_logger("step")
    try:
        api = KubernetesAPI.from_environment(os.environ)
        if api is not None and RuleLease(api, namespace, name, holder).release():
            log.info("released the rule's lease", lease=name)
    except APIRequestError as exc:
        log.warning("the rule's lease was not released: it expires", error=str(exc))


def _go_seconds(duration: str) -> float:
    """Seconds in a Go duration (``24h``, ``90m``, ``1h30m``), as the chart's values give it."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        fail(f"--max-age must be a duration such as 24h, not {duration!r}")
    return sum(float(number) * units[unit] for number, unit in parts)


@step_app.command("decide")
def step_decide(
    pr: Annotated[str, typer.Option("--pr", help="The PR reference (JSON) from fetch.")],
    output: Annotated[Path, typer.Option("--output", help="Where to write the decision.")],
    run: Annotated[
        str | None, typer.Option("--run", help="The workflow's name, to tell reused decisions.")
    ] = None,
) -> None:
    """Decide one PR; write the decision, what it cost and whether act has anything to do."""
    rule = _step_rule()
    settings = _settings()
    _within_limits(rule, settings, "decide")
    try:
        ref = steps.parse_ref(pr)
    except StepInputError as exc:
        fail(str(exc))
    if ref.noop:
        _write(output, steps.NOOP_OUTPUT)
        return
    github = _github(settings)
    started = time.monotonic()
    try:
        ai = make_decision_client(resolve_ai(rule.spec.ai, settings))
        model = model_identity(rule.spec.ai, settings)
        decision, settled, facts = steps.decide_seeing(rule, ref, github, ai, model=model)
    except (StepInputError, ConfigError) as exc:
        fail(str(exc))
    except PullRequestFailure as exc:
        _step_error("decide", exc, kind=exc.kind)
    latency = time.monotonic() - started
    decided = steps.Decided(
        decision=decision,
        usage=ai.usage,
        latency_seconds=latency,
        run=run,
        settled=settled,
        facts=facts,
    )
    _write(output, steps.dump_for_argo(decided))
    # The decision line itself is the act step's, once the decision is applied.
    get_logger("step", rule=rule.qualified_name).info(
        "decided",
        pr=decision.display,
        head=decision.head_oid,
        action=decision.action.value,
        proposed=decision.proposed.value if decision.proposed else None,
        guardrail=decision.guardrail,
        model_calls=ai.usage.calls,
        latency_seconds=round(latency, 3),
    )


@step_app.command("act")
def step_act(
    decisions: Annotated[
        str, typer.Option("--decisions", help="The branch's decision (JSON) from decide.")
    ],
    output: Annotated[Path, typer.Option("--output", help="Where to write the results.")],
    summary_output: Annotated[
        Path | None, typer.Option("--summary-output", help="Where to write the counts (JSON).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide, change nothing.")] = False,
    run: Annotated[
        str | None, typer.Option("--run", help="The workflow's name, to tell reused decisions.")
    ] = None,
    outcome_output: Annotated[
        Path | None,
        typer.Option("--outcome-output", help="Where to write one PR's outcome (JSON, no text)."),
    ] = None,
    lease: Annotated[
        str | None, typer.Option("--lease", help="The rule's Lease: one run acts at a time.")
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", help="Where the rule's Lease and outcome index are."),
    ] = None,
    outcomes: Annotated[
        str | None,
        typer.Option("--outcomes", help="The outcome index's prefix (-0 ... -f) to record in."),
    ] = None,
    max_age: Annotated[
        str, typer.Option("--max-age", help="How long a record is kept, e.g. 24h.")
    ] = "24h",
) -> None:
    """Apply the decisions on fresh facts, serialized; write the results and their counts.

    With ``--outcomes``, a decision made and acted on the same facts is recorded in the rule's
    outcome index, so that later runs leave the PR alone until its facts change.
    """
    rule = _step_rule()
    settings = _settings()
    _within_limits(rule, settings, "act")
    github = _github(settings)
    try:
        parsed = steps.parse_decided(decisions)
    except StepInputError as exc:
        fail(str(exc))
    if lease and parsed:
        _take_lease(namespace or rule.metadata.namespace, lease, run or "act")
    act_dry_run = dry_run or rule.spec.dryRun
    scope = Scope(rule_repositories(rule.spec, settings), settings.limits)
    try:
        model = model_identity(rule.spec.ai, settings)
    except ConfigError as exc:
        fail(str(exc))
    index = _outcome_index(rule, namespace, outcomes, max_age)
    # The lease stays with the run: sibling act pods may still be acting. Report releases it.
    results, facts = steps.act_branch(
        rule, parsed, github, dry_run=act_dry_run, run=run, model=model, scope=scope
    )
    _record(rule, parsed, results, facts, github, index)
    report = PassReport(rule=rule.qualified_name, results=results)
    _write(output, steps.dump_for_argo([r.to_json() for r in results]))
    mine = counts(report, dry_run=act_dry_run).model_copy(
        update={"github_requests": github.stats.requests}
    )
    if summary_output is not None:
        remaining = github.stats.rate_limit_remaining
        tally = mine.model_copy(update={"github_rate_limit_remaining": remaining})
        _write(summary_output, steps.dump_for_argo(tally))
    if outcome_output is not None:
        outcome = steps.branch_outcome(results, mine, run, facts)
        _write(outcome_output, steps.dump_for_argo(outcome))
    _log_report(report)
    raise typer.Exit(_act_exit_code(results))


def _record(
    rule: PRReconciliationRule,
    decided: list[steps.Decided],
    results: list[PullRequestResult],
    facts: str | None,
    github: GitHubClient,
    index: OutcomeIndex | None,
) -> None:
    """Keep the branch's outcome record in the rule's index (best effort: savings only)."""
    if index is None or facts is None:
        return
    try:
        actor: str | None = github.viewer_login()
    except GitHubError:
        actor = None
    records = steps.branch_record(decided, results, facts, actor=actor, now=time.time())
    if not records:
        return
    try:
        index.keep(rule.qualified_name, records)
    except OutcomeIndexError as exc:
        get_logger("step", rule=rule.qualified_name).warning(
            "outcome not recorded: the next run decides the PR again", error=str(exc)
        )


@step_app.command("tally")
def step_tally(
    outcomes: Annotated[str, typer.Option("--outcomes", help="The branches' outcomes.")] = "[]",
    counts_text: Annotated[str, typer.Option("--counts", help="Fetch's counts (JSON).")] = "{}",
    run: Annotated[str | None, typer.Option("--run", help="The workflow's name.")] = None,
    summary_output: Annotated[
        Path | None, typer.Option("--summary-output", help="Where to write the run's counts.")
    ] = None,
) -> None:
    """Add up the branches' outcomes and fetch's counts: the run's summary (no PR text)."""
    rule = _step_rule()
    _settings()
    summary = steps.tally(outcomes, counts_text, run)
    if summary_output is not None:
        _write(summary_output, steps.dump_for_argo(summary))
    get_logger("step", rule=rule.qualified_name).info(
        "run tallied",
        matched=summary.matched,
        decided=summary.decided,
        reused=summary.reused,
        deferred=summary.deferred,
        model_calls=summary.ai_calls,
    )


def _act_exit_code(results: Sequence[PullRequestResult]) -> int:
    """The act step's exit code: 1 for refused credentials, 75 when a failure may clear.

    On 75 Argo retries act: every plan is idempotent, so a retry redoes nothing done already.
    Other failures are 2; none is 0.
    """
    failed = [row for row in results if row.error]
    refused = [row.error for row in failed if row.error_kind == "auth"]
    if refused:
        typer.echo(f"error: act: {refused[0]}", err=True)
        return EXIT_CONFIG
    if any(row.error_retryable for row in failed):
        return steps.EX_TEMPFAIL
    return EXIT_PARTIAL if failed else EXIT_OK


@step_app.command("report")
def step_report(
    summary: Annotated[str, typer.Option("--summary", help="The run's counts (JSON).")] = "{}",
    status: Annotated[str, typer.Option("--status", help="The workflow's status.")] = "Unknown",
    workflow: Annotated[
        str | None, typer.Option("--workflow", help="The workflow's name: its failed nodes.")
    ] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="The workflow's namespace.")
    ] = None,
    failures: Annotated[
        str, typer.Option("--failures", help="Argo's {{workflow.failures}} (earlier workflows).")
    ] = "null",
    duration: Annotated[str, typer.Option("--duration", help="Seconds the run took.")] = "0",
    lease: Annotated[
        str | None,
        typer.Option("--lease", help="The rule's Lease, released when this run holds it."),
    ] = None,
) -> None:
    """Release the rule's Lease, push the run's metrics once to the Pushgateway; never fails.

    The run counts as successful when Argo says so and no node failed: a failed branch is handled
    by the tally (so Argo calls the run Succeeded), but the metrics must show it. The failed
    nodes, with the error type each left, are read from the Workflow itself (``--workflow``):
    no argument of this step grows with the number of pull requests or retries.
    """
    rule = _step_rule()
    settings = _settings()
    if lease and workflow:
        _release_lease(namespace or rule.metadata.namespace, lease, workflow)
    tally = steps.parse_counts(summary)
    failed = _run_failures(workflow, namespace or rule.metadata.namespace, failures, tally)
    log = get_logger("step", rule=rule.qualified_name)
    for node in failed.first:
        log.warning("failed node", node=node.name, template=node.template, message=node.message)
    if not settings.pushgateway_url:
        get_logger("metrics").info("PUSHGATEWAY_URL is not set; no metrics pushed")
        return
    errors = Counter(tally.errors) + Counter(failed.errors)
    branches_failed = tally.branches_failed
    pushed = summary_from_counts(
        rule.qualified_name,
        tally.model_copy(update={"errors": dict(errors)}),
        duration_seconds=steps.parse_seconds(duration),
        succeeded=status == "Succeeded" and failed.nodes == 0 and branches_failed == 0,
        finished_at=time.time(),
        interval_seconds=_interval_seconds(rule),
    )
    _push(settings.pushgateway_url, pushed)


def _run_failures(
    workflow: str | None, namespace: str, failures: str, tally: PassCounts
) -> FailureSummary:
    """The run's failed nodes, counted, from its Workflow object (else what is known)."""
    if workflow is None:  # a workflow compiled before --workflow: its own failures argument
        listed = [
            FailedNode(str(n.get("displayName", "")), "Pod", "", str(n.get("message", "")))
            for n in steps.failed_node_list(failures)
        ]
        return summarize_failures(listed)
    try:
        api = KubernetesAPI.from_environment(os.environ)
        if api is None:
            raise APIUnreadable("no Kubernetes API in this pod")
        return summarize_failures(failed_nodes(api, namespace, workflow))
    except APIUnreadable as exc:
        lost = tally.branches_failed
        get_logger("step").warning(
            "failed nodes not read: failed branches counted as step errors", error=str(exc)
        )
        return FailureSummary(nodes=lost, errors={"step": lost} if lost else {})


def _step_error(step: str, exc: Exception, kind: str = "github") -> NoReturn:
    """Log a step's failure, leave its type in the termination log for the report, and exit."""
    retryable = bool(getattr(exc, "retryable", False))
    get_logger("step").error(f"{step} failed", error=str(exc), retryable=retryable)
    typer.echo(f"error: {step}: {exc}", err=True)
    _write_termination_message(steps.termination_message(kind, redact(str(exc))))
    raise typer.Exit(steps.EX_TEMPFAIL if retryable else EXIT_CONFIG)


TERMINATION_LOG_ENV = "AI_OPERATOR_TERMINATION_LOG"


def _write_termination_message(text: str) -> None:
    """Write Kubernetes' termination message, when the container has the file (in a pod).

    ``AI_OPERATOR_TERMINATION_LOG`` names another file, for a local run of the pipeline.
    """
    elsewhere = os.environ.get(TERMINATION_LOG_ENV, "").strip()  # a local run of the pipeline
    path = Path(elsewhere) if elsewhere else steps.TERMINATION_LOG
    if elsewhere or path.exists():
        # Not writable here: the message is a nicety, the exit code is what counts.
        with contextlib.suppress(OSError):
            path.write_text(text)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the console script: usage errors exit 64, apart from failed PRs' 2."""
    sys.exit(run_app(app, argv))


def run_app(command: typer.Typer, argv: Sequence[str] | None = None) -> int:
    """Run ``command`` on ``argv``; its exit code, a usage error's being :data:`EXIT_USAGE`."""
    cli = readable_help(typer.main.get_command(command))  # type: ignore[arg-type]
    try:
        code = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="ai-operator",
            standalone_mode=False,
        )
    except typer.TyperException as exc:  # the command line itself (typer's own usage errors)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            typer.echo(f"error: {exc.format_message()}", err=True)
        return EXIT_USAGE if exc.exit_code == _TYPER_USAGE_EXIT else exc.exit_code
    except typer.Abort:
        typer.echo("Aborted.", err=True)
        return EXIT_CONFIG
    return code if isinstance(code, int) else EXIT_OK


_TYPER_USAGE_EXIT = 2  # typer's (click's) exit code for usage errors, which 2 already means here


# --- help that reads like a CLI ------------------------------------------------------------------
# Typer shows Python types (<bool>, <list[Path]>, <int range> [1<=x<=64]) and the usage line
# {files}...; docstrings carry RST (``--limit``). Metavars and plain words instead: FILE...,
# --parallelism N (1 to 64), flags without a type.

_RST_LITERAL = re.compile(r"``([^`]+)``")
_RST_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


def readable_help(command: TyperGroup | TyperCommand) -> TyperGroup | TyperCommand:
    """``command`` (and its subcommands) with help texts in CLI words, changed in place."""
    command.help = _plain(command.help)
    command.short_help = _plain(command.short_help)
    help_option = command.get_help_option(
        typer.Context(command, help_option_names=HELP_OPTIONS["help_option_names"])
    )
    if help_option is not None:
        help_option.metavar = ""  # a flag: no type to show
    for param in command.params:
        if isinstance(param, TyperArgument):
            param.__class__ = _ReadableArgument
            param.metavar = param.metavar or _metavar(param)
        elif isinstance(param, TyperOption):
            _readable_option(param)
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            if isinstance(sub, TyperGroup | TyperCommand):
                readable_help(sub)
    return command


def _plain(text: str | None) -> str | None:
    return _RST_ROLE.sub(r"\1", _RST_LITERAL.sub(r"\1", text)) if text else text


def _readable_option(option: TyperOption) -> None:
    option.help = _plain(option.help)
    if option.type_descriptor.is_ranged:
        low, high = getattr(option, "min", None), getattr(option, "max", None)
        bounds = f"{low} to {high}" if high is not None else f"at least {low}"
        text = (option.help or "").rstrip()
        option.help = f"{text[:-1]} ({bounds})." if text.endswith(".") else f"{text} ({bounds})"
        option.__class__ = _UnrangedOption
    if option.metavar is None:
        option.metavar = "" if option.is_flag else _metavar(option)


def _metavar(param: TyperArgument | TyperOption) -> str:
    described = param.type_descriptor
    if described.is_choice:
        return "|".join(str(choice) for choice in described.choices or ())
    if "Path" in param.bare_type():
        return "FILE" if isinstance(param, TyperArgument) else "PATH"
    if param.bare_type() in ("int", "float"):
        return "N"
    if "(JSON)" in (param.help or ""):
        return "JSON"
    return (param.name or "value").upper().replace("_", "-")


class _ReadableArgument(TyperArgument):
    """An argument shown as ``FILE...`` in the usage line, and with no Python type."""

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")

    def _rich_display_name(self) -> str:
        return self.display_name_raw + ("..." if self.nargs != 1 else "")

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


class _UnrangedOption(TyperOption):
    """A number option whose range is said in its help text, not as ``1<=x<=64``."""

    def _get_number_range_help_str(self) -> str | None:
        return None
