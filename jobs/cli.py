"""The ``ai-operator`` commands that run reconciliation: ``run``, ``validate`` and ``step``.

Exit codes (documented in the README):
    0  every rule's pass and every pull request went through
    1  configuration error: a rule file, an environment variable, a missing token
    2  some pull requests (or a rule's whole pass) failed; the others were still handled
   75  (``step`` only) a transient failure: Argo retries the step
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from jobs.clients.ai import make_decision_client
from jobs.clients.github import GitHubClient
from jobs.clients.github.errors import GitHubError
from jobs.clients.metrics import PassSummary, push_pass_metrics
from jobs.config import ConfigError, Settings, resolve_ai, rule_repositories
from jobs.log import configure_logging, get_logger
from jobs.reconcile import steps
from jobs.reconcile.report import as_json, as_table, counts, summarize, summary_from_counts
from jobs.reconcile.results import PassReport, PullRequestFailure, PullRequestResult
from jobs.reconcile.run import run_pass
from jobs.rules.encoding import RULE_ENV, StepInputError, rule_from_env
from jobs.rules.files import RuleFileError, load_rules
from jobs.rules.model import PRReconciliationRule

EXIT_OK, EXIT_CONFIG, EXIT_PARTIAL = 0, 1, 2

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Let an AI settle pull requests safely, under rules you write.",
)
step_app = typer.Typer(no_args_is_help=True, help="Pipeline steps (run inside workflow pods).")
app.add_typer(step_app, name="step")


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
        typer.echo(f"{len(errors)} error(s) in {len(files)} file(s)", err=True)
        raise typer.Exit(EXIT_CONFIG)
    typer.echo(f"{len(files)} file(s) valid")


@app.command()
def run(
    files: Annotated[list[Path] | None, typer.Argument(help="Rule files to run once.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide, change nothing.")] = False,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.TABLE,
    parallelism: Annotated[int, typer.Option(min=1, max=32, help="Decisions at once.")] = 4,
    rule_from_env: Annotated[
        bool, typer.Option("--rule-from-env", help=f"Read the rule from {RULE_ENV}.")
    ] = False,
) -> None:
    """Run one reconciliation pass of each rule, locally."""
    rules = _rules(files or [], rule_from_env)
    settings = _settings()
    github = _github(settings)
    log = get_logger("run")
    progress = _progress(output)
    reports: list[PassReport] = []
    for rule in rules:
        reports.append(_run_rule(rule, settings, github, dry_run, parallelism, progress))
    any_dry = dry_run or any(rule.spec.dryRun for rule in rules)
    rendered = as_json(reports, dry_run=any_dry) if output is OutputFormat.JSON else None
    typer.echo(rendered if rendered is not None else as_table(reports, dry_run=any_dry))
    failed = [r for r in reports if not r.ok]
    log.info("run finished", rules=len(reports), failed_rules=len(failed))
    raise typer.Exit(EXIT_PARTIAL if failed else EXIT_OK)


def _rules(files: Sequence[Path], from_env: bool) -> list[PRReconciliationRule]:
    if from_env:
        try:
            return [rule_from_env(os.environ)]
        except StepInputError as exc:
            fail(str(exc))
    if not files:
        fail("no rule files given (or use --rule-from-env)")
    try:
        return [loaded.rule for loaded in load_rules(files)]
    except RuleFileError as exc:
        fail(str(exc))


def _run_rule(
    rule: PRReconciliationRule,
    settings: Settings,
    github: GitHubClient,
    dry_run: bool,
    parallelism: int,
    progress: Callable[[str, PullRequestResult | None], None] | None,
) -> PassReport:
    try:
        repositories = rule_repositories(rule.spec, settings)
        ai = make_decision_client(resolve_ai(rule.spec.ai, settings))
    except ConfigError as exc:
        fail(f"{rule.qualified_name}: {exc}")
    requests_before = github.stats.requests
    report = run_pass(
        rule,
        repositories,
        github,
        ai,
        dry_run=dry_run or rule.spec.dryRun,
        parallelism=parallelism,
        progress=progress,
    )
    _log_report(report)
    if settings.pushgateway_url:
        summary = summarize(
            report,
            ai_calls=ai.calls,
            github_requests=github.stats.requests - requests_before,
            finished_at=time.time(),
        )
        _push(settings.pushgateway_url, summary)
    return report


def _push(url: str, summary: PassSummary) -> None:
    outcome = push_pass_metrics(url, summary)
    log = get_logger("metrics")
    if outcome.pushed:
        log.info("metrics pushed", rule=summary.rule)
    else:
        log.warning("metrics push failed", rule=summary.rule, error=outcome.error)


def _log_report(report: PassReport) -> None:
    log = get_logger("decision", rule=report.rule)
    if report.error:
        log.error("pass failed", error=report.error)
    for row in report.results:
        fields = {
            "pr": f"{row.repository}#{row.number}",
            "head": row.head_oid[:12],
            "action": row.action.value,
            "proposed": row.proposed.value if row.proposed else None,
            "guardrail": row.guardrail,
            "fallback": row.fallback,
            "applied": list(row.operations),
            "dry_run": row.dry_run,
            "reason": row.reason,
        }
        if row.error:
            log.error("decision failed", error=row.error, **fields)
        else:
            log.info("decision", **fields)


def _progress(output: OutputFormat) -> Callable[[str, PullRequestResult | None], None] | None:
    if output is not OutputFormat.TABLE or not sys.stderr.isatty():
        return None

    def show(rule: str, row: PullRequestResult | None) -> None:
        if row is None:
            typer.echo(f"… {rule}", err=True)
        else:
            typer.echo(f"  {row.repository}#{row.number}: {row.action.value}", err=True)

    return show


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
def step_fetch(output: Annotated[Path, typer.Option("--output")]) -> None:
    """Write references to the PRs the rule covers (a JSON list)."""
    rule = _step_rule()
    settings = _settings()
    github = _github(settings)
    try:
        refs = steps.fetch(rule, list(rule_repositories(rule.spec, settings)), github)
    except ConfigError as exc:
        fail(str(exc))
    except GitHubError as exc:
        _step_error("fetch", exc)
    _write(output, steps.dump_for_argo(refs))
    get_logger("step", rule=rule.qualified_name).info("fetched", pull_requests=len(refs))


@step_app.command("decide")
def step_decide(
    pr: Annotated[str, typer.Option("--pr", help="The PR reference (JSON) from fetch.")],
    output: Annotated[Path, typer.Option("--output")],
) -> None:
    """Decide one PR; write the decision (a summary line, then the decision encoded)."""
    rule = _step_rule()
    settings = _settings()
    try:
        ref = steps.parse_ref(pr)
    except StepInputError as exc:
        fail(str(exc))
    if steps.is_noop(ref):
        _write(output, steps.NOOP_OUTPUT)
        return
    github = _github(settings)
    try:
        ai = make_decision_client(resolve_ai(rule.spec.ai, settings))
        decision = steps.decide(rule, ref, github, ai)
    except (StepInputError, ConfigError) as exc:
        fail(str(exc))
    except PullRequestFailure as exc:
        _step_error("decide", exc)
    _write(output, steps.decision_output(decision))
    get_logger("decision", rule=rule.qualified_name).info(
        "decision",
        pr=decision.display,
        action=decision.action.value,
        proposed=decision.proposed.value if decision.proposed else None,
        guardrail=decision.guardrail,
        fallback=decision.fallback,
        reason=decision.reason,
    )


@step_app.command("act")
def step_act(
    decisions: Annotated[str, typer.Option("--decisions", help="Aggregated decisions (JSON).")],
    output: Annotated[Path, typer.Option("--output")],
    summary_output: Annotated[
        Path | None, typer.Option("--summary-output", help="Where to write the counts (JSON).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
) -> None:
    """Apply the decisions on fresh facts, serialized; write the results and their counts."""
    rule = _step_rule()
    settings = _settings()
    github = _github(settings)
    try:
        parsed = steps.parse_decisions(decisions)
    except StepInputError as exc:
        fail(str(exc))
    results = steps.act_all(rule, parsed, github, dry_run=dry_run or rule.spec.dryRun)
    report = PassReport(rule=rule.qualified_name, results=results)
    _write(output, steps.dump_for_argo([r.to_json() for r in results]))
    if summary_output is not None:
        tally = counts(report) | {"githubRequests": github.stats.requests}
        _write(summary_output, steps.dump_for_argo(tally))
    _log_report(report)
    if any(r.error for r in results):
        raise typer.Exit(EXIT_PARTIAL)


@step_app.command("report")
def step_report(
    summary: Annotated[str, typer.Option("--summary", help="The act step's counts (JSON).")] = "{}",
    status: Annotated[str, typer.Option("--status", help="The workflow's status.")] = "Unknown",
    failures: Annotated[
        str, typer.Option("--failures", help="Argo's {{workflow.failures}}.")
    ] = "null",
    duration: Annotated[str, typer.Option("--duration", help="Seconds the run took.")] = "0",
) -> None:
    """Push the run's metrics once to the Pushgateway; never fails the run.

    The run counts as successful when Argo says so and no node failed: a failed decide node is
    handled by act (so Argo calls the run Succeeded), but the metrics must show it.
    """
    rule = _step_rule()
    settings = _settings()
    if not settings.pushgateway_url:
        get_logger("metrics").info("PUSHGATEWAY_URL is not set; no metrics pushed")
        return
    pushed = summary_from_counts(
        rule.qualified_name,
        steps.parse_counts(summary),
        duration_seconds=steps.parse_seconds(duration),
        succeeded=status == "Succeeded" and steps.failed_nodes(failures) == 0,
        finished_at=time.time(),
    )
    _push(settings.pushgateway_url, pushed)


def _step_error(step: str, exc: Exception) -> NoReturn:
    retryable = bool(getattr(exc, "retryable", False))
    get_logger("step").error(f"{step} failed", error=str(exc), retryable=retryable)
    typer.echo(f"error: {step}: {exc}", err=True)
    raise typer.Exit(steps.EX_TEMPFAIL if retryable else EXIT_CONFIG)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the console script."""
    app(args=list(argv) if argv is not None else None)
