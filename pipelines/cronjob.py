"""A rule as a Kubernetes ``batch/v1`` CronJob: one pod runs the whole pass.

For clusters without Argo. The pod runs ``ai-operator run --rule-from-env --output json
--no-cache`` with the same conventions as the workflow's pods (labels, the rule read from its
ConfigMap and checked against the pod's annotation, tokens from the Secret, non-root, read-only
root, ``/tmp`` emptyDir). A
failed pod is retried only when it exited 75 (a transient failure), through the Job's
``podFailurePolicy``; any other failure fails the Job at once, and the next scheduled pass starts
afresh.

The CronJob remembers no decision between passes: each pass is a new pod whose only writable
place is its own emptyDir, gone with it, and keeping decisions elsewhere would need what this
target does without (RBAC to write a ConfigMap, or a volume per rule). Every pass therefore asks
the model about up to ``maxPullRequests`` PRs, the least recently updated first; the Argo target
reuses decisions (its memo) and shares a capped run fairly.

This module builds data only; it talks to no cluster.
"""

from __future__ import annotations

from typing import Any

from ai_operator.jobs.rules.model import PRReconciliationRule
from ai_operator.jobs.rules.schedule import Schedule
from ai_operator.pipelines import options as conventions
from ai_operator.pipelines.options import (
    AI_TOKEN_ENV,
    ARGOCD_TOKEN_ENV,
    GITHUB_TOKEN_ENV,
    CompileOptions,
)

RUN_COMMAND = ("ai-operator", "run", "--rule-from-env", "--output", "json", "--no-cache")
CONTAINER = "run"
TRANSIENT_EXIT_CODE = 75  # ai_operator.jobs.reconcile.steps.EX_TEMPFAIL


def build_cron_job(
    rule: PRReconciliationRule, schedule: Schedule, options: CompileOptions
) -> dict[str, Any]:
    """The CronJob document for ``rule``, run on ``schedule``."""
    spec: dict[str, Any] = {
        "schedule": schedule.cron,
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": options.starting_deadline_seconds,
        "successfulJobsHistoryLimit": options.successful_history_limit,
        "failedJobsHistoryLimit": options.failed_history_limit,
        "suspend": rule.spec.suspend,
        "jobTemplate": {
            "metadata": {"labels": conventions.rule_labels(rule)},
            "spec": _job_spec(rule, options),
        },
    }
    timezone = rule.spec.timezone or options.timezone
    if timezone:
        spec["timeZone"] = timezone
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": conventions.object_name(rule),
            "namespace": conventions.target_namespace(rule, options),
            "labels": conventions.rule_labels(rule),
            "annotations": conventions.rule_annotations(rule, schedule.note),
        },
        "spec": spec,
    }


def _job_spec(rule: PRReconciliationRule, options: CompileOptions) -> dict[str, Any]:
    return {
        "backoffLimit": options.job_backoff_limit,
        "activeDeadlineSeconds": options.active_deadline_seconds,
        "ttlSecondsAfterFinished": options.ttl_seconds_after_failure,
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "FailJob",
                    "onExitCodes": {
                        "containerName": CONTAINER,
                        "operator": "NotIn",
                        "values": [TRANSIENT_EXIT_CODE],
                    },
                }
            ]
        },
        "template": {
            "metadata": {
                "labels": conventions.rule_labels(rule),
                "annotations": conventions.pod_annotations(rule),
            },
            "spec": _pod_spec(rule, options),
        },
    }


def _pod_spec(rule: PRReconciliationRule, options: CompileOptions) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": options.image,
        "command": list(RUN_COMMAND),
        "env": conventions.environment(
            rule, options, (GITHUB_TOKEN_ENV, AI_TOKEN_ENV, ARGOCD_TOKEN_ENV)
        ),
        "resources": conventions.resources(options),
        "securityContext": conventions.container_security_context(),
        "volumeMounts": [conventions.tmp_mount(), conventions.rule_mount()],
    }
    if options.image_pull_policy:
        container["imagePullPolicy"] = options.image_pull_policy
    env_from = conventions.environment_from(options)
    if env_from:
        container["envFrom"] = env_from
    return {
        "serviceAccountName": options.service_account,
        "restartPolicy": "Never",
        "securityContext": conventions.pod_security_context(options),
        "containers": [container],
        "volumes": [conventions.tmp_volume(options), conventions.rule_volume(rule)],
        **conventions.pod_placement(options),
    }
