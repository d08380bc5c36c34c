"""``ai-operator step``: the pipeline's pod commands (fetch, decide, act, tally, report).

Each reads its rule from its pod (:mod:`jobs.rules.encoding`), hands the next step a wire model
(:mod:`jobs.reconcile.wire`) through a file Argo reads as the step's output, and exits 0 done,
75 (EX_TEMPFAIL) on a transient failure worth Argo's retry, 1 on anything else. The user's
commands are in :mod:`jobs.cli`.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from ai_operator.jobs.cli_support import (
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_PARTIAL,
    HELP_OPTIONS,
    argocd_client,
    fail,
    github_client,
    interval_seconds,
    load_settings,
    log_report,
    pass_budget,
    push_metrics,
    within_limits,
    write_gate,
    write_output,
)
from ai_operator.jobs.clients.ai import make_decision_client
from ai_operator.jobs.clients.argo_workflow import failed_nodes
from ai_operator.jobs.clients.github import GitHubClient
from ai_operator.jobs.clients.github.errors import GitHubError
from ai_operator.jobs.clients.kube import APIRequestError, APIUnreadable, KubernetesAPI
from ai_operator.jobs.clients.outcome_index import OutcomeIndex
from ai_operator.jobs.clients.pause import PAUSE_ANNOTATION, namespace_paused
from ai_operator.jobs.clients.rule_lease import LeaseHeld, RuleLease
from ai_operator.jobs.config import (
    ConfigError,
    Settings,
    model_identity,
    resolve_ai,
    rule_repositories,
)
from ai_operator.jobs.log import get_logger, redact
from ai_operator.jobs.policy.admission import Scope
from ai_operator.jobs.policy.counts import PassCounts
from ai_operator.jobs.policy.shadow import shadowing
from ai_operator.jobs.reconcile import steps
from ai_operator.jobs.reconcile.event_scope import event_scope, wait_seconds
from ai_operator.jobs.reconcile.failures import FailureSummary, summarize_failures
from ai_operator.jobs.reconcile.report import (
    counts,
    summary_from_counts,
)
from ai_operator.jobs.reconcile.results import PassReport, PullRequestFailure, PullRequestResult
from ai_operator.jobs.rules.encoding import (
    StepInputError,
    rule_from_env,
)
from ai_operator.jobs.rules.model import PRReconciliationRule

step_app = typer.Typer(
    no_args_is_help=True,
    context_settings=HELP_OPTIONS,
    help="Pipeline steps (run inside workflow pods).",
)


def _step_rule() -> PRReconciliationRule:
    try:
        return rule_from_env(os.environ)
    except StepInputError as exc:
        fail(str(exc))


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
    pull_requests: Annotated[
        str,
        typer.Option(
            "--pull-requests",
            help="An event's pull request numbers (JSON); empty: every PR the rule covers.",
        ),
    ] = "",
    repository: Annotated[
        str, typer.Option("--repository", help="The repository of --pull-requests.")
    ] = "",
    not_before: Annotated[
        str, typer.Option("--not-before", help="Epoch second before which GitHub is not read.")
    ] = "0",
) -> None:
    """Write references to the PRs to decide (a JSON list) and the run's counts.

    PRs whose recorded decision still stands (unchanged facts, younger than ``--max-age``) are
    left out; the others go least recently decided first, at most ``--limit``. An event-started
    run names its pull requests (``--pull-requests``, ``--repository``): only those are read,
    once the debounce window has ended (``--not-before``).
    """
    rule = _step_rule()
    settings = load_settings()
    within_limits(rule, settings, "fetch")
    try:
        repositories = list(rule_repositories(rule.spec, settings))
        scope = event_scope(pull_requests, repository, repositories)
        wait = wait_seconds(not_before, time.time())
    except (ConfigError, StepInputError) as exc:
        fail(str(exc))
    if wait > 0:
        time.sleep(wait)  # the debounce window: the run sees every event it coalesced
    github = _github(rule, settings)
    memory = _outcome_index(rule, namespace, outcomes, max_age)
    try:
        fetched = steps.fetch_run(
            rule,
            repositories,
            github,
            memory,
            model=model_identity(rule.spec.ai, settings),
            limit=limit or rule.spec.maxPullRequests,
            max_age=_go_seconds(max_age),
            now=time.time(),
            budget=pass_budget(rule, settings),
            paused=_paused(settings, namespace or rule.metadata.namespace),
            argocd=argocd_client(settings),
            scope=scope,
        )
    except ConfigError as exc:
        fail(str(exc))
    except GitHubError as exc:
        _step_error("fetch", exc)
    write_output(output, steps.dump_for_argo(fetched.refs))
    if counts_output is not None:
        write_output(counts_output, steps.dump_for_argo(fetched.counts))
    log = get_logger("step", rule=rule.qualified_name)
    if fetched.memory_error:
        log.warning("outcome index not read: every PR is decided anew", error=fetched.memory_error)
    log.info("fetched", **fetched.counts.wire(), cap=rule.spec.maxPullRequests)


def _github(rule: PRReconciliationRule, settings: Settings) -> GitHubClient:
    """The GitHub client; a GitHub App finds its installation by the rule's repositories."""
    try:
        repositories = rule_repositories(rule.spec, settings)
    except ConfigError:
        repositories = ()  # the step reports it where it needs them
    return github_client(settings, repositories)


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
    return OutcomeIndex(api, where, prefix, max_age_seconds=seconds)


def _paused(settings: Settings, namespace: str) -> bool:
    """Whether writes are paused: ``AI_OPERATOR_PAUSED``, or the namespace's annotation.

    Read before any write. An annotation that cannot be read counts as a pause (the switch may
    be on); without a Kubernetes API (a run outside a cluster) only the setting counts.
    """
    if settings.paused:
        return True
    log = get_logger("step")
    try:
        api = KubernetesAPI.from_environment(os.environ)
        if api is None:
            return False
        paused = namespace_paused(api, namespace)
    except (APIRequestError, APIUnreadable) as exc:
        log.warning("the pause annotation could not be read: writes are deferred", error=str(exc))
        return True
    if paused:
        log.warning("writes are paused by the namespace's annotation", annotation=PAUSE_ANNOTATION)
    return paused


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
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="Where the outcome index is.")
    ] = None,
    outcomes: Annotated[
        str | None, typer.Option("--outcomes", help="The outcome index's prefix (-0 ... -f).")
    ] = None,
    max_age: Annotated[
        str, typer.Option("--max-age", help="How long a decision stands, e.g. 24h.")
    ] = "24h",
) -> None:
    """Decide one PR; write the decision, what it cost and whether act has anything to do.

    A PR whose writes waited for write budget (fetch marks it) reuses its recorded decision
    from the outcome index (``--outcomes``) while its facts are unchanged: no model is asked.
    """
    rule = _step_rule()
    settings = load_settings()
    within_limits(rule, settings, "decide")
    try:
        ref = steps.parse_ref(pr)
    except StepInputError as exc:
        fail(str(exc))
    if ref.noop:
        write_output(output, steps.NOOP_OUTPUT)
        return
    github = _github(rule, settings)
    index = _outcome_index(rule, namespace, outcomes, max_age) if ref.waited else None
    started = time.monotonic()
    try:
        ai = make_decision_client(resolve_ai(rule.spec.ai, settings))
        model = model_identity(rule.spec.ai, settings)
        seen = steps.decide_recalling(
            rule,
            ref,
            github,
            ai,
            model=model,
            recall=(lambda: index.recall_one(rule.qualified_name, ref.display)) if index else None,
            now=time.time(),
            max_age=_go_seconds(max_age),
        )
    except (StepInputError, ConfigError) as exc:
        fail(str(exc))
    except PullRequestFailure as exc:
        _step_error("decide", exc, kind=exc.kind)
    latency = time.monotonic() - started
    decision = seen.decision
    decided = steps.Decided(
        decision=decision,
        usage=ai.usage,
        latency_seconds=latency,
        run=run,
        settled=seen.settled,
        facts=seen.facts,
        share=ref.share,
        argocd=ref.argocd,
        decided_at=seen.decided_at,
    )
    write_output(output, steps.dump_for_argo(decided))
    # The decision line itself is the act step's, once the decision is applied.
    get_logger("step", rule=rule.qualified_name).info(
        "decided",
        pr=decision.display,
        head=decision.head_oid,
        action=decision.action.value,
        proposed=decision.proposed.value if decision.proposed else None,
        guardrail=decision.guardrail,
        model_calls=ai.usage.calls,
        reused=seen.decided_at is not None,
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
    settings = load_settings()
    within_limits(rule, settings, "act")
    github = _github(rule, settings)
    try:
        parsed = steps.parse_decided(decisions)
    except StepInputError as exc:
        fail(str(exc))
    if lease and parsed:
        _take_lease(namespace or rule.metadata.namespace, lease, run or "act")
    act_dry_run = dry_run or rule.spec.dryRun or shadowing(rule.spec)
    scope = Scope(rule_repositories(rule.spec, settings), settings.limits)
    try:
        model = model_identity(rule.spec.ai, settings)
    except ConfigError as exc:
        fail(str(exc))
    index = _outcome_index(rule, namespace, outcomes, max_age)
    # The lease stays with the run: sibling act pods may still be acting. Report releases it.
    gate = None
    if parsed and not act_dry_run:  # read before any write: the pause, this branch's share
        share = parsed[0].share
        gate = write_gate(
            rule,
            settings,
            budget=share.budget() if share else None,
            paused=_paused(settings, namespace or rule.metadata.namespace),
        )
    results, facts = steps.act_branch(
        rule, parsed, github, dry_run=act_dry_run, run=run, model=model, scope=scope, gate=gate
    )
    kept = steps.keep_branch_record(rule, parsed, results, facts, github, index, now=time.time())
    report = PassReport(rule=rule.qualified_name, results=results)
    write_output(output, steps.dump_for_argo([r.to_json() for r in results]))
    mine = counts(report, dry_run=act_dry_run).model_copy(
        update={
            "github_requests": github.stats.requests,
            "shadow_decided": steps.shadow_decided(rule, kept),
        }
    )
    if summary_output is not None:
        remaining = github.stats.rate_limit_remaining
        tally = mine.model_copy(update={"github_rate_limit_remaining": remaining})
        write_output(summary_output, steps.dump_for_argo(tally))
    if outcome_output is not None:
        outcome = steps.branch_outcome(results, mine, run, facts)
        write_output(outcome_output, steps.dump_for_argo(outcome))
    log_report(report)
    raise typer.Exit(_act_exit_code(results))


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
    load_settings()
    summary = steps.tally(outcomes, counts_text, run)
    if summary_output is not None:
        write_output(summary_output, steps.dump_for_argo(summary))
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
    settings = load_settings()
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
        interval_seconds=interval_seconds(rule),
    )
    push_metrics(settings.pushgateway_url, pushed)


def _run_failures(
    workflow: str | None, namespace: str, failures: str, tally: PassCounts
) -> FailureSummary:
    """The run's failed nodes, counted, from its Workflow object (else what is known)."""
    if workflow is None:  # a workflow compiled before --workflow: its own failures argument
        return summarize_failures(steps.failed_node_list(failures))
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
