"""A rule as an Argo CronWorkflow (Argo v4, built with Hera 7): fetch -> decide (fan-out) -> act.

The workflow, entrypoint ``reconcile`` (a DAG), exit handler ``report``::

    fetch ──> decide (one pod per PR, withParam, memoized, retried on exit 75) ──> act ──> report

- ``fetch`` writes a JSON list of small PR references, then one no-op item. The no-op item gives
  ``decide`` a node that always succeeds: Argo leaves a fan-out's aggregated output unset when
  every iteration failed (a model outage), and ``act`` would then wait for it until the deadline.
- ``decide`` runs once per reference, at most ``parallelism`` at a time; its memo key is the
  reference's ``key`` (rule + PR + facts), so an unchanged PR is not decided twice within
  ``memo_max_age`` (the no-op item's key is fixed per rule: one pod, ever). Argo names each node
  ``decide(<i>:display:<owner/name#N>,...)``: a map item's ``key:value`` pairs are sorted, so
  ``display`` comes first and the UI shows the PR. Its output is a plain line (action, PR,
  reason) ending in the encoded decision: not JSON, so Argo passes it through its aggregation
  untouched and never reads PR text as one of its tags.
- ``act`` runs whatever ``decide`` ended with (failed nodes contribute nothing) and holds the
  token semaphore, so rules sharing a GitHub token never mutate at the same time. Besides its
  results it writes their counts (no PR text), exported as the global output ``summary``.
- ``report`` always runs. When ``act`` never ran, ``{{workflow.outputs.parameters.summary}}``
  stays unresolved: Argo leaves unknown tags of a pod template as they are, and the report step
  reads that text as "no counts" and still exits 0.

The step command lines (:data:`FETCH_COMMAND` ...) are the contract with ``ai-operator step``.
This module builds data only: it talks to no cluster (Hera's ``build()`` is offline).
"""

from __future__ import annotations

from typing import Any

from hera.workflows import DAG, Container, CronWorkflow, Parameter, RetryStrategy, Task
from hera.workflows import models as m

from jobs.rules.model import PRReconciliationRule
from jobs.rules.schedule import Schedule
from pipelines import options as conventions
from pipelines.options import AI_TOKEN_ENV, GITHUB_TOKEN_ENV, CompileOptions

OUTPUTS_DIR = "/tmp/outputs"  # noqa: S108 - inside the pod's own emptyDir
PRS_PATH = f"{OUTPUTS_DIR}/prs.json"
DECISION_PATH = f"{OUTPUTS_DIR}/decision.json"
RESULTS_PATH = f"{OUTPUTS_DIR}/results.json"
SUMMARY_PATH = f"{OUTPUTS_DIR}/summary.json"

ENTRYPOINT = "reconcile"
EXIT_HANDLER = "report"

FETCH_COMMAND = ("ai-operator", "step", "fetch", "--output", PRS_PATH)
DECIDE_COMMAND = (
    "ai-operator", "step", "decide",
    "--pr", "{{inputs.parameters.pr}}",
    "--output", DECISION_PATH,
)  # fmt: skip
ACT_COMMAND = (
    "ai-operator", "step", "act",
    "--decisions", "{{inputs.parameters.decisions}}",
    "--output", RESULTS_PATH,
    "--summary-output", SUMMARY_PATH,
)  # fmt: skip
REPORT_COMMAND = (
    "ai-operator", "step", "report",
    "--summary", "{{workflow.outputs.parameters.summary}}",
    "--status", "{{workflow.status}}",
    "--failures", "{{workflow.failures}}",
    "--duration", "{{workflow.duration}}",
)  # fmt: skip

# act runs after decide whatever decide's children did; Skipped is an empty fan-out.
ACT_DEPENDS = "decide.Succeeded || decide.Failed || decide.Errored || decide.Skipped"
TRANSIENT_EXIT = "asInt(lastRetry.exitCode) == 75"  # jobs.reconcile.steps.EX_TEMPFAIL
EMPTY_LIST = "[]"
EMPTY_OBJECT = "{}"
TITLE_ANNOTATION = "workflows.argoproj.io/title"


def build_cron_workflow(
    rule: PRReconciliationRule, schedule: Schedule, options: CompileOptions
) -> dict[str, Any]:
    """The CronWorkflow document for ``rule``, run on ``schedule``."""
    fetch, decide, act, report = _steps(rule, options)
    reconcile = DAG(
        name=ENTRYPOINT,
        parallelism=options.parallelism,
        fail_fast=False,  # one failed decide must neither stop the others nor act
        tasks=_tasks(fetch, decide, act),
    )
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
        entrypoint=ENTRYPOINT,
        on_exit=EXIT_HANDLER,
        templates=[reconcile, fetch, decide, act, report],
        **_workflow_spec(rule, options),
    )
    model = cron.build()
    model.spec.workflow_metadata = m.ObjectMeta(
        labels=conventions.rule_labels(rule), annotations=_annotations(rule, None)
    )
    document: dict[str, Any] = model.model_dump(exclude_none=True, by_alias=True, mode="json")
    return document


def _annotations(rule: PRReconciliationRule, schedule: Schedule | None) -> dict[str, str]:
    note = schedule.note if schedule else None
    return conventions.rule_annotations(rule, note) | {TITLE_ANNOTATION: rule.qualified_name}


def _workflow_spec(rule: PRReconciliationRule, options: CompileOptions) -> dict[str, Any]:
    """Workflow-level settings: identity, security, clean-up, deadline, the /tmp volume."""
    return {
        "service_account_name": options.service_account,
        "security_context": m.PodSecurityContext.model_validate(
            conventions.pod_security_context(options)
        ),
        "pod_metadata": m.Metadata(labels=conventions.rule_labels(rule)),
        "pod_gc": m.PodGC(strategy="OnPodSuccess"),
        "ttl_strategy": m.TTLStrategy(
            seconds_after_success=options.ttl_seconds_after_success,
            seconds_after_failure=options.ttl_seconds_after_failure,
        ),
        "active_deadline_seconds": options.active_deadline_seconds,
        "volumes": [m.Volume.model_validate(conventions.tmp_volume(options))],
    }


def _tasks(fetch: Container, decide: Container, act: Container) -> list[Task | m.DAGTask]:
    return [
        Task(name="fetch", template=fetch),
        Task(
            name="decide",
            template=decide,
            depends="fetch",
            with_param="{{tasks.fetch.outputs.parameters.prs}}",
            arguments=[
                Parameter(name="pr", value="{{item}}"),
                Parameter(name="key", value="{{item.key}}"),
            ],
        ),
        Task(
            name="act",
            template=act,
            depends=ACT_DEPENDS,
            arguments=[
                Parameter(name="decisions", value="{{tasks.decide.outputs.parameters.decision}}")
            ],
        ),
    ]


def _steps(
    rule: PRReconciliationRule, options: CompileOptions
) -> tuple[Container, Container, Container, Container]:
    fetch = _container(
        "fetch",
        FETCH_COMMAND,
        rule,
        options,
        tokens=(GITHUB_TOKEN_ENV,),
        outputs=[_output("prs", PRS_PATH)],
    )
    decide = _container(
        "decide",
        DECIDE_COMMAND,
        rule,
        options,
        tokens=(GITHUB_TOKEN_ENV, AI_TOKEN_ENV),
        inputs=[Parameter(name="pr"), Parameter(name="key")],
        # The default is never aggregated in practice (the no-op item always succeeds).
        outputs=[_output("decision", DECISION_PATH)],
        memoize=m.Memoize(
            key="{{inputs.parameters.key}}",
            max_age=options.memo_max_age,
            cache=m.Cache(
                config_map=m.LocalObjectReference(name=conventions.memo_config_map(rule))
            ),
        ),
        retry_strategy=_transient_retry(options),
    )
    act = _container(
        "act",
        ACT_COMMAND,
        rule,
        options,
        tokens=(GITHUB_TOKEN_ENV,),
        inputs=[Parameter(name="decisions", default=EMPTY_LIST)],
        outputs=[
            _output("results", RESULTS_PATH),
            _output("summary", SUMMARY_PATH, global_name="summary", default=EMPTY_OBJECT),
        ],
        synchronization=_token_semaphore(options),
    )
    report = _container("report", REPORT_COMMAND, rule, options, tokens=())
    return fetch, decide, act, report


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
        volume_mounts=[m.VolumeMount.model_validate(conventions.tmp_mount())],
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
    """Retry a decide pod only when it says the failure was transient (exit code 75)."""
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
