"""A rule as an Argo WorkflowTemplate and the CronWorkflow that submits it (Argo v4, Hera 7).

The WorkflowTemplate is the pipeline (fetch -> each PR's branch -> tally); the CronWorkflow only
says when (``workflowTemplateRef``), and an event-driven rule's Sensor (:mod:`pipelines.events`)
submits the same template, so every run of a rule is the same workflow whatever started it,
labelled with what did (:data:`TRIGGER_LABEL`), and holds the rule's mutex (:func:`rule_mutex`).
A run's arguments (:data:`RUN_ARGUMENTS`) are empty for a scheduled run; an event-started one
names the pull requests fetch reads.

The workflow, entrypoint ``reconcile`` (a DAG), exit handler ``report``::

    fetch ──> settle: one ``pull-request`` branch per PR (withParam) ──> tally ──> report
                      pull-request = decide ──> act   (a DAG template of its own)

- ``fetch`` finds every matching PR and reads the rule's outcome index (ConfigMaps
  ``ai-operator-memo-<rule>-<0..f>``, :mod:`jobs.clients.outcome_index`, read through the API:
  ``get`` on ConfigMaps): a PR whose recorded decision still stands (same facts, rule and model,
  younger than ``memo_max_age``, no fallback) is left out and counted as reused. It lists the
  others, at most ``min(maxPullRequests, max_decisions_per_run)``, least recently decided
  first, as small references (``display``, ``key``; never PR text), then one no-op item; and it
  writes the run's counts (matched, reused, deferred). The no-op item gives ``settle`` a branch
  that always succeeds: Argo leaves a fan-out's aggregated output unset when every branch failed
  (a model outage), and ``tally`` would then wait for it until the deadline.
  For a rule in shadow mode fetch first settles the decisions recorded earlier from each pull
  request's timeline and writes them back to the index (``update`` on ConfigMaps), and hands
  the rule's shadow score on with its counts (:mod:`jobs.reconcile.shadow`).
- ``pull-request`` is one PR's branch: ``decide`` (retried on exit 75) re-reads the PR, asks
  the model and writes the decision (JSON with no ``{{``, so Argo never reads PR text as one of
  its tags); ``act`` re-reads the PR and applies the plan under the token semaphore, so that rules
  sharing a GitHub token never mutate at the same time, records the outcome in the rule's index
  (``create``/``update`` on ConfigMaps, merged with other writers on a 409) when it acted on the
  facts decide saw, and writes the branch's ``outcome``: counts, the PR's name and the run, no
  PR text. Nothing is memoized by Argo: its cache would replay a branch on facts fetch no longer
  sees, and the index is the operator's own, kept only for decisions that still hold.
  Each act pod first takes (or renews) the rule's Lease (``<name>-act``, :func:`act_lease`) with
  the run as holder, so that a resubmitted workflow never acts beside a scheduled one: its act
  pods exit 75 and are retried while another run holds it. No act pod releases it (a sibling
  branch of the same run may still be acting); ``report`` does.
  Nothing is aggregated but the outcomes: no argument grows with the number of PRs' text.
- ``tally`` adds the outcomes to fetch's counts, exported as the global output ``summary``.
- ``report`` always runs. It first releases the rule's Lease when this run holds it (an expired
  lease of a run that died is taken over by the next one anyway). Its arguments are bounded
  whatever the number of PRs or retries: the tally's counts (which include the branches that
  handed no outcome), the run's status, duration and name. It reads the failed nodes, and the
  error type each left, from its own Workflow through the API (``get`` on Workflows), never from
  ``{{workflow.failures}}``, which lists every failed node and retry and passes Linux's 128 KiB
  limit for one argument at a few hundred failing PRs. When ``tally`` never ran,
  ``{{workflow.outputs.parameters.summary}}`` stays unresolved: Argo leaves unknown tags of a pod
  template as they are, and the report step reads that text as "no counts" and still exits 0.

The step command lines (:func:`fetch_command`, :data:`DECIDE_COMMAND` ...) are the contract with
``ai-operator step``. This module builds data only: it talks to no cluster (Hera's ``build()``
is offline).
"""

from __future__ import annotations

from typing import Any

from hera.workflows import (
    DAG,
    Container,
    CronWorkflow,
    Parameter,
    RetryStrategy,
    Task,
    WorkflowTemplate,
)
from hera.workflows import models as m

from ai_operator.jobs.reconcile import wire
from ai_operator.jobs.rules.model import PRReconciliationRule
from ai_operator.jobs.rules.schedule import Schedule
from ai_operator.pipelines import options as conventions
from ai_operator.pipelines.options import (
    AI_TOKEN_ENV,
    ARGOCD_TOKEN_ENV,
    GITHUB_TOKEN_ENV,
    CompileOptions,
)

# The wire between the steps: output names and files (ai_operator.jobs.reconcile.wire), one place.
PRS, PRS_PATH = wire.PRS, wire.PRS_PATH
COUNTS, COUNTS_PATH = wire.COUNTS, wire.COUNTS_PATH
DECISION, DECISION_PATH = wire.DECISION, wire.DECISION_PATH
RESULTS, RESULTS_PATH = wire.RESULTS, wire.RESULTS_PATH
OUTCOME, OUTCOME_PATH = wire.OUTCOME, wire.OUTCOME_PATH
SUMMARY, SUMMARY_PATH = wire.SUMMARY, wire.SUMMARY_PATH
PR, OUTCOMES = wire.PR_INPUT, wire.OUTCOMES_INPUT

ENTRYPOINT = "reconcile"
BRANCH = "pull-request"
EXIT_HANDLER = "report"

TRIGGER_LABEL = "aioperator.io/trigger"
TRIGGER_SCHEDULE, TRIGGER_EVENT = "schedule", "event"
PULL_REQUESTS_ARGUMENT = "pull-requests"
REPOSITORY_ARGUMENT = "repository"
NOT_BEFORE_ARGUMENT = "not-before"
RUN_ARGUMENTS = {PULL_REQUESTS_ARGUMENT: "", REPOSITORY_ARGUMENT: "", NOT_BEFORE_ARGUMENT: "0"}
"""The run's arguments and their values for a scheduled run: every PR the rule covers, now.
An event-started run names the pull requests (a JSON number or list of numbers), their
repository, and the epoch second before which fetch does not read GitHub (the end of the
debounce window, so that the run sees every event it coalesced)."""

FETCH_COMMAND = (
    "ai-operator", "step", "fetch",
    "--output", PRS_PATH,
    "--counts-output", COUNTS_PATH,
    "--namespace", "{{workflow.namespace}}",
    "--pull-requests", f"{{{{workflow.parameters.{PULL_REQUESTS_ARGUMENT}}}}}",
    "--repository", f"{{{{workflow.parameters.{REPOSITORY_ARGUMENT}}}}}",
    "--not-before", f"{{{{workflow.parameters.{NOT_BEFORE_ARGUMENT}}}}}",
)  # fmt: skip
DECIDE_COMMAND = (
    "ai-operator", "step", "decide",
    "--pr", f"{{{{inputs.parameters.{PR}}}}}",
    "--output", DECISION_PATH,
    "--run", "{{workflow.name}}",
)  # fmt: skip
ACT_COMMAND = (
    "ai-operator", "step", "act",
    "--decisions", f"{{{{inputs.parameters.{DECISION}}}}}",
    "--output", RESULTS_PATH,
    "--outcome-output", OUTCOME_PATH,
    "--run", "{{workflow.name}}",
    "--namespace", "{{workflow.namespace}}",
)  # fmt: skip
TALLY_COMMAND = (
    "ai-operator", "step", "tally",
    "--outcomes", f"{{{{inputs.parameters.{OUTCOMES}}}}}",
    "--counts", f"{{{{inputs.parameters.{COUNTS}}}}}",
    "--run", "{{workflow.name}}",
    "--summary-output", SUMMARY_PATH,
)  # fmt: skip
REPORT_COMMAND = (
    "ai-operator", "step", "report",
    "--summary", f"{{{{workflow.outputs.parameters.{SUMMARY}}}}}",
    "--status", "{{workflow.status}}",
    "--duration", "{{workflow.duration}}",
    "--workflow", "{{workflow.name}}",
    "--namespace", "{{workflow.namespace}}",
)  # fmt: skip

# tally runs after the branches whatever they did; Skipped is an empty fan-out.
TALLY_DEPENDS = "settle.Succeeded || settle.Failed || settle.Errored || settle.Skipped"
TRANSIENT_EXIT = "asInt(lastRetry.exitCode) == 75"  # ai_operator.jobs.reconcile.steps.EX_TEMPFAIL
EMPTY_LIST = "[]"
EMPTY_OBJECT = "{}"
TITLE_ANNOTATION = "workflows.argoproj.io/title"


def build_workflow_template(rule: PRReconciliationRule, options: CompileOptions) -> dict[str, Any]:
    """The WorkflowTemplate document for ``rule``: the pipeline every run of the rule follows.

    The CronWorkflow (:func:`build_cron_workflow`) and the rule's Sensor
    (:mod:`pipelines.events`) both submit it by ``workflowTemplateRef``, so a run looks the same
    in the Argo UI whatever started it, and ``argo resubmit`` works on any of them. Every run
    holds the rule's mutex (:func:`rule_mutex`): at most one run of a rule at a time, whatever
    started it; the others wait in Argo's queue.
    """
    fetch, decide, act, tally, report = _steps(rule, options)
    branch = _branch(decide, act)
    reconcile = DAG(
        name=ENTRYPOINT,
        parallelism=options.parallelism,
        fail_fast=False,  # one failed branch must neither stop the others nor the tally
        tasks=_tasks(fetch, branch, tally),
    )
    template = WorkflowTemplate(
        name=conventions.object_name(rule),
        namespace=conventions.target_namespace(rule, options),
        labels=conventions.rule_labels(rule),
        annotations={conventions.RULE_ANNOTATION: rule.qualified_name},
        entrypoint=ENTRYPOINT,
        on_exit=EXIT_HANDLER,
        arguments=[Parameter(name=name, value=value) for name, value in RUN_ARGUMENTS.items()],
        synchronization=m.Synchronization(mutexes=[m.Mutex(name=rule_mutex(rule))]),
        templates=[reconcile, fetch, branch, decide, act, tally, report],
        **_workflow_spec(rule, options),
    )
    model = template.build()
    model.spec.workflow_metadata = m.ObjectMeta(
        labels=conventions.rule_labels(rule), annotations=_annotations(rule, None)
    )
    document: dict[str, Any] = model.model_dump(exclude_none=True, by_alias=True, mode="json")
    return document


def build_cron_workflow(
    rule: PRReconciliationRule, schedule: Schedule, options: CompileOptions
) -> dict[str, Any]:
    """The CronWorkflow document that submits the rule's WorkflowTemplate on ``schedule``."""
    cron = CronWorkflow(
        name=conventions.object_name(rule),
        namespace=conventions.target_namespace(rule, options),
        labels=conventions.rule_labels(rule),
        annotations=_annotations(rule, schedule),
        schedules=[schedule.cron],
        timezone=rule.spec.timezone or options.timezone,
        concurrency_policy="Forbid",
        starting_deadline_seconds=options.starting_deadline_seconds,
        successful_jobs_history_limit=options.successful_history_limit,
        failed_jobs_history_limit=options.failed_history_limit,
        cron_suspend=rule.spec.suspend,
        workflow_template_ref=m.WorkflowTemplateRef(name=conventions.object_name(rule)),
    )
    model = cron.build()
    # Its runs' annotations (the spec hash, the title) come from the template's workflowMetadata.
    model.spec.workflow_metadata = m.ObjectMeta(labels=run_labels(rule, TRIGGER_SCHEDULE))
    document: dict[str, Any] = model.model_dump(exclude_none=True, by_alias=True, mode="json")
    return document


def run_labels(rule: PRReconciliationRule, trigger: str) -> dict[str, str]:
    """The labels of a run: the rule's, and what started it (``schedule`` or ``event``).

    A run that ``argo resubmit`` made keeps these and gains Argo's own
    ``workflows.argoproj.io/resubmitted-from-workflow``.
    """
    return conventions.rule_labels(rule) | {TRIGGER_LABEL: trigger}


def rule_mutex(rule: PRReconciliationRule) -> str:
    """The mutex every run of the rule holds (scheduled, event-started or resubmitted)."""
    return f"{conventions.APP_NAME}-rule-{conventions.object_name(rule)}"


def _annotations(rule: PRReconciliationRule, schedule: Schedule | None) -> dict[str, str]:
    note = schedule.note if schedule else None
    return conventions.rule_annotations(rule, note) | {TITLE_ANNOTATION: rule.qualified_name}


def _workflow_spec(rule: PRReconciliationRule, options: CompileOptions) -> dict[str, Any]:
    """Workflow-level settings: identity, security, clean-up, deadline, volumes, placement.

    The volumes are ``/tmp`` and the rule's ConfigMap; every pod carries the rule file's SHA-256
    as an annotation, the one place in the CronWorkflow that changes with the rule.

    Succeeded pods are deleted ``pod_gc_delete_delay`` after they finish, not at once, so that
    ``argo logs`` and the UI's logs still show a finished run's decisions for that long.
    """
    return {
        "service_account_name": options.service_account,
        "security_context": m.PodSecurityContext.model_validate(
            conventions.pod_security_context(options)
        ),
        "pod_metadata": m.Metadata(
            labels=conventions.rule_labels(rule), annotations=conventions.pod_annotations(rule)
        ),
        "pod_gc": m.PodGC(
            strategy="OnPodSuccess", delete_delay_duration=options.pod_gc_delete_delay
        ),
        "ttl_strategy": m.TTLStrategy(
            seconds_after_success=options.ttl_seconds_after_success,
            seconds_after_failure=options.ttl_seconds_after_failure,
        ),
        "active_deadline_seconds": options.active_deadline_seconds,
        "volumes": [
            m.Volume.model_validate(conventions.tmp_volume(options)),
            m.Volume.model_validate(conventions.rule_volume(rule)),
        ],
        **_placement(options),
    }


def _placement(options: CompileOptions) -> dict[str, Any]:
    """Image pull secrets, node selector, tolerations and affinity of every pod, when set."""
    placement = conventions.pod_placement(options)
    models: dict[str, Any] = {
        "image_pull_secrets": [
            m.LocalObjectReference.model_validate(ref)
            for ref in placement.get("imagePullSecrets", [])
        ],
        "node_selector": placement.get("nodeSelector"),
        "tolerations": [m.Toleration.model_validate(t) for t in placement.get("tolerations", [])],
        "affinity": m.Affinity.model_validate(placement["affinity"])
        if "affinity" in placement
        else None,
    }
    return {key: value for key, value in models.items() if value}


def fetch_command(rule: PRReconciliationRule, options: CompileOptions) -> tuple[str, ...]:
    """Fetch's command line: the outcome index, how long a decision stands, how many to decide."""
    limit = min(rule.spec.maxPullRequests, options.max_decisions_per_run)
    return (
        *FETCH_COMMAND,
        "--limit", str(limit),
        "--outcomes", conventions.memo_config_map(rule),
        "--max-age", options.memo_max_age,
    )  # fmt: skip


def decide_command(rule: PRReconciliationRule, options: CompileOptions) -> tuple[str, ...]:
    """Decide's command line: its PR, and the outcome index a PR whose writes waited reads."""
    return (
        *DECIDE_COMMAND,
        "--namespace", "{{workflow.namespace}}",
        "--outcomes", conventions.memo_config_map(rule),
        "--max-age", options.memo_max_age,
    )  # fmt: skip


def act_lease(rule: PRReconciliationRule) -> str:
    """The rule's Lease, which one run's act pods hold at a time (``<object name>-act``)."""
    return f"{conventions.object_name(rule)}-act"


def act_command(rule: PRReconciliationRule, options: CompileOptions) -> tuple[str, ...]:
    """Act's command line: the decisions, its outputs, the rule's Lease and outcome index."""
    return (
        *ACT_COMMAND,
        "--lease", act_lease(rule),
        "--outcomes", conventions.memo_config_map(rule),
        "--max-age", options.memo_max_age,
    )  # fmt: skip


def report_command(rule: PRReconciliationRule) -> tuple[str, ...]:
    """Report's command line: the run's counts, status and name, and the Lease it releases."""
    return (*REPORT_COMMAND, "--lease", act_lease(rule))


def _tasks(fetch: Container, branch: DAG, tally: Container) -> list[Task | m.DAGTask]:
    return [
        Task(name="fetch", template=fetch),
        Task(
            name="settle",
            template=branch,
            depends="fetch",
            with_param=f"{{{{tasks.fetch.outputs.parameters.{PRS}}}}}",
            arguments=[Parameter(name=PR, value="{{item}}")],
        ),
        Task(
            name="tally",
            template=tally,
            depends=TALLY_DEPENDS,
            arguments=[
                Parameter(
                    name=OUTCOMES, value=f"{{{{tasks.settle.outputs.parameters.{OUTCOME}}}}}"
                ),
                Parameter(name=COUNTS, value=f"{{{{tasks.fetch.outputs.parameters.{COUNTS}}}}}"),
            ],
        ),
    ]


def _branch(decide: Container, act: Container) -> DAG:
    """One PR's branch: decide, then act; its output is act's small outcome."""
    return DAG(
        name=BRANCH,
        inputs=[Parameter(name=PR)],
        outputs=[
            Parameter(
                name=OUTCOME,
                value_from=m.ValueFrom(parameter=f"{{{{tasks.act.outputs.parameters.{OUTCOME}}}}}"),
            )
        ],
        fail_fast=False,
        tasks=[
            Task(
                name="decide",
                template=decide,
                arguments=[Parameter(name=PR, value=f"{{{{inputs.parameters.{PR}}}}}")],
            ),
            Task(
                name="act",
                template=act,
                depends="decide",
                arguments=[
                    Parameter(
                        name=DECISION, value=f"{{{{tasks.decide.outputs.parameters.{DECISION}}}}}"
                    )
                ],
            ),
        ],
    )


def _steps(
    rule: PRReconciliationRule, options: CompileOptions
) -> tuple[Container, Container, Container, Container, Container]:
    fetch = _container(
        "fetch",
        fetch_command(rule, options),
        rule,
        options,
        tokens=(GITHUB_TOKEN_ENV, ARGOCD_TOKEN_ENV),  # Argo CD's: a rule with argocdEnabled
        outputs=[_output(PRS, PRS_PATH), _output(COUNTS, COUNTS_PATH, default=EMPTY_OBJECT)],
        retry_strategy=_transient_retry(options),
    )
    decide = _container(
        "decide",
        decide_command(rule, options),
        rule,
        options,
        tokens=(GITHUB_TOKEN_ENV, AI_TOKEN_ENV),
        inputs=[Parameter(name=PR)],
        outputs=[_output(DECISION, DECISION_PATH)],
        retry_strategy=_transient_retry(options),
    )
    act = _container(
        "act",
        act_command(rule, options),
        rule,
        options,
        tokens=(GITHUB_TOKEN_ENV,),
        inputs=[Parameter(name=DECISION)],
        outputs=[
            _output(RESULTS, RESULTS_PATH),
            _output(OUTCOME, OUTCOME_PATH, default=EMPTY_OBJECT),
        ],
        synchronization=_token_semaphore(options),
        retry_strategy=_transient_retry(options),  # plans are idempotent: a retry redoes nothing
    )
    tally = _container(
        "tally",
        TALLY_COMMAND,
        rule,
        options,
        tokens=(),
        inputs=[
            Parameter(name=OUTCOMES, default=EMPTY_LIST),
            Parameter(name=COUNTS, default=EMPTY_OBJECT),
        ],
        outputs=[_output(SUMMARY, SUMMARY_PATH, global_name=SUMMARY, default=EMPTY_OBJECT)],
    )
    report = _container("report", report_command(rule), rule, options, tokens=())
    return fetch, decide, act, tally, report


def _container(
    name: str,
    command: tuple[str, ...],
    rule: PRReconciliationRule,
    options: CompileOptions,
    *,
    tokens: tuple[str, ...],
    **template: Any,
) -> Container:
    """One step's container template; tokens are given only to the steps that use them."""
    return Container(
        name=name,
        image=options.image,
        image_pull_policy=options.image_pull_policy,
        command=list(command),
        env=[m.EnvVar.model_validate(v) for v in conventions.environment(rule, options, tokens)],
        env_from=[m.EnvFromSource.model_validate(s) for s in conventions.environment_from(options)],
        resources=m.ResourceRequirements.model_validate(conventions.resources(options)),
        security_context=m.SecurityContext.model_validate(conventions.container_security_context()),
        volume_mounts=[
            m.VolumeMount.model_validate(conventions.tmp_mount()),
            m.VolumeMount.model_validate(conventions.rule_mount()),
        ],
        **template,
    )


def _output(
    name: str, path: str, global_name: str | None = None, default: str = EMPTY_LIST
) -> Parameter:
    return Parameter(
        name=name,
        value_from=m.ValueFrom(path=path, default=default),
        global_name=global_name,
    )


def _transient_retry(options: CompileOptions) -> RetryStrategy:
    """Retry a fetch, decide or act pod only when it says the failure was transient (exit 75)."""
    return RetryStrategy(
        limit=options.decide_retry_limit,
        retry_policy="OnFailure",
        expression=TRANSIENT_EXIT,
        backoff=m.Backoff(
            duration=options.retry_backoff,
            factor=m.IntOrString(2),
            max_duration=options.retry_backoff_max,
        ),
    )


def _token_semaphore(options: CompileOptions) -> m.Synchronization | None:
    ref = options.semaphore_ref
    if ref is None:
        return None
    name, key = ref
    selector = m.ConfigMapKeySelector(name=name, key=key)
    return m.Synchronization(semaphores=[m.SemaphoreRef(config_map_key_ref=selector)])
