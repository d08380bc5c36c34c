"""The user's ``ai-operator`` commands: run, validate, demo, test, backtest, explain (and step).

The pipeline's pod commands (``step``) are in :mod:`jobs.step_cli`; what both share is in
:mod:`jobs.cli_support`.

Exit codes (documented in the README):
    0  every rule's pass and every pull request went through
    1  configuration error: a rule file, an environment variable, a missing token, credentials
       GitHub or the model refused
    2  some pull requests (or a rule's whole pass) failed; the others were still handled
   64  usage error: an unknown command or option, a missing argument (EX_USAGE)
   75  (``step`` only) a transient failure: Argo retries the step
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from ai_operator.jobs.cli_support import (
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    HELP_OPTIONS,
    argocd_client,
    fail,
    github_client,
    interval_seconds,
    load_settings,
    log_report,
    push_metrics,
    within_limits,
    write_gate,
    write_output,
)
from ai_operator.jobs.clients.ai import DecisionClient, make_decision_client
from ai_operator.jobs.clients.decision_cache import DecisionFile, cache_directory
from ai_operator.jobs.clients.github import GitHubClient
from ai_operator.jobs.clients.github.errors import GitHubAuthError, GitHubError, GitHubUnreachable
from ai_operator.jobs.clients.kube import APIRequestError, KubernetesAPI
from ai_operator.jobs.clients.network import safe_url
from ai_operator.jobs.clients.rule_lock import RuleLock, RuleLockError, lock_directory
from ai_operator.jobs.config import (
    ConfigError,
    Settings,
    model_identity,
    resolve_ai,
    rule_repositories,
)
from ai_operator.jobs.log import get_logger
from ai_operator.jobs.policy.shadow import shadowing
from ai_operator.jobs.reconcile.report import (
    as_json,
    as_table,
    summarize,
)
from ai_operator.jobs.reconcile.results import PassReport, PullRequestResult
from ai_operator.jobs.reconcile.run import DEFAULT_PARALLELISM, Reuse, run_pass
from ai_operator.jobs.rules.encoding import (
    LIMITS_ENV,
    RULE_ENV,
    RULE_FILE_ENV,
    StepInputError,
    limits_document,
    rule_from_env,
)
from ai_operator.jobs.rules.files import RuleFileError, expand_paths
from ai_operator.jobs.rules.limits import LimitsSpec
from ai_operator.jobs.rules.model import KIND, PRReconciliationRule
from ai_operator.jobs.rules.validation import load_valid_rules
from ai_operator.jobs.step_cli import step_app

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings=HELP_OPTIONS,
    help="Let an AI settle pull requests safely, under rules you write.",
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


RecordOption = Annotated[
    Path | None, typer.Option("--record", help="Write the model's answers there.")
]
ReplayOption = Annotated[
    Path | None, typer.Option("--replay", help="Answer offline from a recording.")
]
StandInOption = Annotated[
    bool, typer.Option("--stand-in", help="Answer with the stand-in (not a real model).")
]
"""Where ``test`` and ``backtest`` get the model's answers (the same three options)."""


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Rule files (YAML, multi-document or List).")],
) -> None:
    """Check rule files: schema, regexes, templates, schedules, actions."""
    from ai_operator.jobs.rules.validation import validate_files  # noqa: PLC0415 - keeps the command's start fast

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
    settings = load_settings()
    if limits_file is not None:
        settings = settings.model_copy(update={"limits": _limits(limits_file)})
    # Every rule's configuration and the token are checked before any rule acts.
    setups = [_setup(rule, settings) for rule in rules]
    github = github_client(settings, [name for s in setups for name in s.repositories])
    progress = _progress(output)
    if progress is not None:
        typer.echo(f"… checking the GitHub token at {safe_url(settings.github_url)}", err=True)
    _check_token(github)
    log = get_logger("run")
    memory = None if no_cache else _memory(settings)
    reports: list[PassReport] = []
    for setup in setups:
        reports.append(_run_rule(setup, settings, github, dry_run, parallelism, progress, memory))
    any_dry = dry_run or any(rule.spec.dryRun or shadowing(rule.spec) for rule in rules)
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


def _setup(rule: PRReconciliationRule, settings: Settings) -> _RuleSetup:
    within_limits(rule, settings)
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
    pass_dry_run = dry_run or rule.spec.dryRun or shadowing(rule.spec)
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
                gate=write_gate(rule, settings),
                argocd=argocd_client(settings),
            )
    except RuleLockError as exc:  # another pass of this rule is running: this one did nothing
        report = PassReport(rule=rule.qualified_name, error=str(exc))
        report.duration_seconds = time.monotonic() - started
    except Exception as exc:  # one rule's failed pass never stops the next rule
        report = PassReport(rule=rule.qualified_name, error=f"{type(exc).__name__}: {exc}")
        report.duration_seconds = time.monotonic() - started
    log_report(report)
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
            interval_seconds=interval_seconds(rule),
        )
        push_metrics(settings.pushgateway_url, summary)
    return report


def _progress(output: OutputFormat) -> Callable[[str, PullRequestResult | None], None] | None:
    if output is not OutputFormat.TABLE or not sys.stderr.isatty():
        return None

    def show(rule: str, row: PullRequestResult | None) -> None:
        if row is None:
            typer.echo(f"… {rule}", err=True)
        else:
            typer.echo(f"  {row.repository}#{row.number}: {row.reported_action}", err=True)

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
    from ai_operator.jobs.demo import run as demo_run  # noqa: PLC0415 - keeps the other commands' start fast
    from ai_operator.jobs.demo import view  # noqa: PLC0415

    options = demo_run.DemoOptions(tuple(rule_files or ()), pipeline, pushgateway)
    shown = output is OutputFormat.TABLE and sys.stderr.isatty()
    progress = (lambda name: typer.echo(f"… {name}", err=True)) if shown else None
    try:
        result = demo_run.run_demo(options, load_settings(), progress)
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
    record: RecordOption = None,
    replay: ReplayOption = None,
    stand_in: StandInOption = False,
) -> None:
    """Unit tests for a rule's instruction: each case's PR through the prompt, model, guardrails.

    Exit 1 when a case fails: another action came out, or it cannot pass as written.
    """
    from ai_operator.jobs.ruletest import run as ruletest  # noqa: PLC0415 - keeps the other commands' start fast
    from ai_operator.jobs.ruletest import view  # noqa: PLC0415

    options = ruletest.RuleTestOptions(rule_file, cases, record, replay, stand_in)
    try:
        outcome = ruletest.run_rule_tests(options, load_settings())
    except ruletest.RuleTestError as exc:
        fail(str(exc))
    if junit is not None:
        write_output(junit, view.as_junit(outcome))
    typer.echo(view.as_json(outcome) if output is OutputFormat.JSON else view.as_table(outcome))
    raise typer.Exit(EXIT_CONFIG if outcome.failed else EXIT_OK)


@app.command()
def backtest(
    rule_file: Annotated[Path, typer.Argument(help="The rule file (one rule).")],
    since: Annotated[
        str, typer.Option("--since", help="Start of the window: 30d, 12h, 2w or a date.")
    ] = "30d",
    until: Annotated[
        str | None, typer.Option("--until", help="End of the window: a date (default: now).")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=1000, help="Pull requests read at most.")
    ] = 1000,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="A table for people, or JSON.")
    ] = OutputFormat.TABLE,
    record: RecordOption = None,
    replay: ReplayOption = None,
    stand_in: StandInOption = False,
    sandbox: Annotated[
        bool,
        typer.Option("--sandbox", help="Read the sandbox GitHub's history (no GITHUB_TOKEN)."),
    ] = False,
) -> None:
    """Decide again on the pull requests people merged or closed, and compare: nothing is written.

    Each as it stood at its last head commit, through the same prompt, model and guardrails.
    """
    from ai_operator.jobs.backtest import run as backtesting  # noqa: PLC0415 - keeps the other commands' start fast
    from ai_operator.jobs.backtest import view  # noqa: PLC0415

    options = backtesting.BacktestOptions(
        rule_file, since, until, limit, record, replay, stand_in, sandbox
    )
    settings = load_settings()
    github = None if sandbox else github_client(settings)
    try:
        result = backtesting.run_backtest(options, settings, github)
    except backtesting.BacktestError as exc:
        fail(str(exc))
    typer.echo(view.as_json(result) if output is OutputFormat.JSON else view.as_table(result))
    raise typer.Exit(EXIT_OK)


@app.command()
def explain(
    rule_file: Annotated[Path, typer.Argument(help="The rule file (one rule).")],
    pull_request: Annotated[
        str, typer.Argument(help="OWNER/REPO#N or the pull request's URL.", metavar="PR")
    ],
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="Text for people, or JSON.")
    ] = OutputFormat.TABLE,
    sandbox: Annotated[
        bool,
        typer.Option("--sandbox", help="Read the sandbox GitHub's samples (no GITHUB_TOKEN)."),
    ] = False,
) -> None:
    """Why the rule does or does not act on a pull request right now. Read-only.

    Selector clauses, safety rules, recorded decision, people, caps, and the next pass. With
    AI_OPERATOR_KUBERNETES_API (e.g. kubectl proxy's URL), the recorded decision is the rule's
    pipeline's, from its outcome index in the cluster.
    """
    from ai_operator.jobs.explain import run as explaining  # noqa: PLC0415 - keeps the other commands' start fast
    from ai_operator.jobs.explain import view  # noqa: PLC0415

    settings = load_settings()
    github = None if sandbox else github_client(settings)
    memory = None if sandbox else _memory(settings)
    options = explaining.ExplainOptions(rule_file, pull_request, sandbox)
    try:
        cluster = None if sandbox else KubernetesAPI.from_environment(os.environ)
        explanation, where = explaining.run_explain(
            options, settings, github, memory, cluster=cluster
        )
    except (explaining.ExplainError, APIRequestError) as exc:
        fail(str(exc))
    if output is OutputFormat.JSON:
        typer.echo(view.as_json(explanation, where))
    else:
        typer.echo(view.as_text(explanation, where), nl=False)
    raise typer.Exit(EXIT_OK)


# --- pipeline steps --------------------------------------------------------------------------


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
