"""What the ``ai-operator`` commands share: exit codes, settings, the GitHub client, output.

Used by the user's commands (:mod:`jobs.cli`) and the pipeline's pod commands
(:mod:`jobs.step_cli`). Every failure here is one line on stderr and an exit code, never a
traceback.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import typer
from pydantic import SecretStr

from ai_operator.jobs.clients.argocd import ArgoCDClient
from ai_operator.jobs.clients.github import GitHubClient
from ai_operator.jobs.clients.github.app_auth import InstallationTokens
from ai_operator.jobs.clients.metrics import PassSummary, push_pass_metrics
from ai_operator.jobs.config import (
    ConfigError,
    GitHubAppConfig,
    Settings,
    check_limits,
)
from ai_operator.jobs.log import configure_logging, decision_logger, get_logger
from ai_operator.jobs.policy.pacing import WriteBudget, writes_per_pass
from ai_operator.jobs.reconcile.gate import WriteGate
from ai_operator.jobs.reconcile.report import (
    decision_fields,
)
from ai_operator.jobs.reconcile.results import PassReport
from ai_operator.jobs.rules.model import PRReconciliationRule
from ai_operator.jobs.rules.schedule import minutes_between, resolve

EXIT_OK, EXIT_CONFIG, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2, 64
HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}


def fail(message: str, code: int = EXIT_CONFIG) -> NoReturn:
    """Print a one-line error to stderr and exit."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def load_settings() -> Settings:
    """The process's settings from its environment, logging configured (exits 1 if invalid)."""
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        fail(str(exc))
    configure_logging(settings.log_level, settings.log_format, secrets=settings.secrets())
    return settings


def github_client(settings: Settings, repositories: Sequence[str] = ()) -> GitHubClient:
    """The GitHub client of ``settings``: ``GITHUB_TOKEN``, else the GitHub App's tokens.

    Exits 1 when neither is set. A GitHub App without ``GITHUB_APP_INSTALLATION_ID`` finds its
    installation on ``GITHUB_ORGANIZATION``, else on the first of ``repositories``.
    """
    try:
        auth = settings.github_auth()
    except ConfigError as exc:
        fail(str(exc))
    token: SecretStr | InstallationTokens
    identity = None
    if isinstance(auth, GitHubAppConfig):
        token = InstallationTokens(
            auth.api_url,
            auth.app_id,
            auth.private_key,
            installation_id=auth.installation_id,
            organization=settings.organization,
            repositories=repositories,
        )
        identity = token.identity
    else:
        token = auth
    return GitHubClient(
        settings.github_url,
        token,
        max_retries=settings.github_max_retries,
        backoff_seconds=settings.github_retry_backoff,
        mutation_interval_seconds=settings.github_mutation_interval,
        identity=identity,
    )


def argocd_client(settings: Settings) -> ArgoCDClient | None:
    """Argo CD's client when ``ARGOCD_ENABLED`` is true, else None (health stays Unknown)."""
    found = settings.argocd()
    return ArgoCDClient(found[0], found[1]) if found else None


def within_limits(rule: PRReconciliationRule, settings: Settings, step: str | None = None) -> None:
    """Refuse, before anything is read or written, a rule that exceeds its limits."""
    try:
        check_limits(rule.spec, settings)
    except ConfigError as exc:
        fail(f"{step + ': ' if step else ''}{rule.qualified_name}: {exc}")


def interval_seconds(rule: PRReconciliationRule) -> float:
    """Seconds between two scheduled runs of ``rule`` (what "no success for N intervals" means)."""
    return 60.0 * minutes_between(resolve(rule.spec.schedule, rule.spec.reconciliationInterval))


def pass_budget(rule: PRReconciliationRule, settings: Settings) -> WriteBudget:
    """What one pass of ``rule`` may write: its writes, merges and closes.

    ``GITHUB_WRITES_PER_PASS``, and ``GITHUB_WRITES_PER_HOUR`` spread over the rule's passes
    (:func:`jobs.policy.pacing.writes_per_pass`); the rule's ``spec.limits`` merge and close caps.
    """
    writes = writes_per_pass(
        settings.github_writes_per_pass, settings.github_writes_per_hour, interval_seconds(rule)
    )
    return WriteBudget.of(rule.spec.limits, writes)


def write_gate(
    rule: PRReconciliationRule,
    settings: Settings,
    *,
    budget: WriteBudget | None = None,
    paused: bool = False,
) -> WriteGate:
    """The gate of one pass (or act pod): ``budget`` (default: the pass's) and the pause."""
    return WriteGate(budget or pass_budget(rule, settings), paused=paused or settings.paused)


def push_metrics(url: str, summary: PassSummary) -> None:
    """Push a pass's metrics to the Pushgateway at ``url``; a failure is logged, not raised."""
    outcome = push_pass_metrics(url, summary)
    log = get_logger("metrics")
    if outcome.pushed:
        log.info("metrics pushed", rule=summary.qualified_name)
    else:
        log.warning("metrics push failed", rule=summary.qualified_name, error=outcome.error)


def log_report(report: PassReport) -> None:
    """One decision line per pull request (whatever the log level), and a failed pass's error."""
    if report.error:
        get_logger("run", rule=report.rule).error("pass failed", error=report.error)
    log = decision_logger()
    for row in report.results:
        log.info("decision", **decision_fields(row))


def write_output(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, making its folder (a step's output file, a report)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
