"""Compile rules into cluster objects: an Argo CronWorkflow or a ``batch/v1`` CronJob each.

``compile_rule`` resolves the rule's schedule (:func:`jobs.rules.schedule.resolve`: intervals
shorter than a minute run every minute, with a note), builds the document (:mod:`pipelines.argo` or
:mod:`pipelines.cronjob`) and, for Argo, refuses a document that fails Argo's own checks
(:mod:`pipelines.argo_checks`). Each object comes with the rule's ConfigMap
(:func:`pipelines.options.rule_config_map`): the rule once, as readable YAML, which every pod
mounts. ``to_yaml`` writes manifests as deterministic multi-document YAML, each rule's ConfigMap
before its object: the same rules and options give the same bytes, and a one-line change of a
rule's instruction is a one-line change of the rule file (plus its digest).

Errors: :class:`pipelines.options.CompileError` (bad options, a manifest failing its checks, a
name Kubernetes would refuse (:mod:`pipelines.names`), two rules compiling to the same object).
This module reads no file and talks to no cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ai_operator.jobs.policy.shadow import shadowing
from ai_operator.jobs.rules.encoding import readable_yaml
from ai_operator.jobs.rules.model import PRReconciliationRule
from ai_operator.jobs.rules.schedule import resolve
from ai_operator.pipelines.argo import build_cron_workflow, build_workflow_template
from ai_operator.pipelines.argo_checks import check_cron_workflow, check_workflow_template
from ai_operator.pipelines.cronjob import build_cron_job
from ai_operator.pipelines.events import build_sensor
from ai_operator.pipelines.names import manifest_name_problems
from ai_operator.pipelines.options import (
    CompiledManifest,
    CompileError,
    CompileOptions,
    Target,
    rule_config_map,
)

__all__ = [
    "CompileError",
    "CompileOptions",
    "CompiledManifest",
    "compile_rule",
    "compile_rules",
    "to_yaml",
]


def compile_rule(
    rule: PRReconciliationRule, target: Target, options: CompileOptions
) -> CompiledManifest:
    """The CronWorkflow (``argo``) or CronJob (``cronjob``) that runs ``rule`` on its schedule."""
    schedule = resolve(rule.spec.schedule, rule.spec.reconciliationInterval)
    template = sensor = None
    if target == "argo":
        template = build_workflow_template(rule, options)
        document = build_cron_workflow(rule, schedule, options)
        for kind, problems in (
            ("WorkflowTemplate", check_workflow_template(template)),
            ("CronWorkflow", check_cron_workflow(document)),
        ):
            if problems:
                raise CompileError(
                    f"{rule.qualified_name}: the compiled {kind} fails Argo's checks: "
                    + "; ".join(problems)
                )
        sensor = _sensor(rule, options)
    elif target == "cronjob":
        if shadowing(rule.spec):
            raise CompileError(
                f"{rule.qualified_name}: spec.mode Shadow needs the argo target: a CronJob's run "
                "keeps no outcome store, so its shadow decisions could never be scored"
            )
        document = build_cron_job(rule, schedule, options)
    else:
        raise CompileError(f"unknown target {target!r}: use argo or cronjob")
    refused = [
        problem
        for checked in (template, document, sensor)
        if checked is not None
        for problem in manifest_name_problems(checked)
    ]
    if refused:
        raise CompileError(f"{rule.qualified_name}: " + "; ".join(refused))
    return CompiledManifest(
        rule=rule.qualified_name,
        kind=str(document["kind"]),
        name=str(document["metadata"]["name"]),
        document=document,
        notes=(schedule.note,) if schedule.note else (),
        config_map=rule_config_map(rule, options),
        workflow_template=template,
        sensor=sensor,
    )


def _sensor(rule: PRReconciliationRule, options: CompileOptions) -> dict[str, Any] | None:
    """The rule's Sensor when the rule and the installation use events, else None."""
    events = rule.spec.events
    if events is None or not options.events:
        return None
    if not rule.spec.repositories:
        raise CompileError(
            f"{rule.qualified_name}: spec.events needs spec.repositories: the Sensor accepts "
            "deliveries from the rule's repositories only"
        )
    return build_sensor(rule, options, events)


def compile_rules(
    rules: Iterable[PRReconciliationRule], target: Target, options: CompileOptions
) -> list[CompiledManifest]:
    """Compile each rule; two rules that would become the same object are an error."""
    manifests = [compile_rule(rule, target, options) for rule in rules]
    owners: dict[tuple[str, str], str] = {}
    for manifest in manifests:
        # The object first: two rules clashing are reported by the object they would share.
        others = [d for d in manifest.documents if d is not manifest.document]
        for document in [manifest.document, *others]:
            metadata = document["metadata"]
            kind, where = str(document["kind"]), f"{metadata['namespace']}/{metadata['name']}"
            if (kind, where) in owners:
                raise CompileError(
                    f"rules {owners[kind, where]} and {manifest.rule} both compile to "
                    f"{kind} {where}"
                )
            owners[kind, where] = manifest.rule
    return manifests


def to_yaml(manifests: Sequence[CompiledManifest]) -> str:
    """Multi-document YAML, each document headed by a comment naming its rule and notes."""
    return "".join(_document_yaml(manifest) for manifest in manifests)


def _document_yaml(manifest: CompiledManifest) -> str:
    text = ""
    if manifest.config_map is not None:
        header = f"# ConfigMap for rule {manifest.rule}: the rule its {manifest.kind} runs."
        text += "---\n" + header + "\n" + readable_yaml(manifest.config_map)
    if manifest.workflow_template is not None:
        header = f"# WorkflowTemplate for rule {manifest.rule}: what every run of it does."
        text += "---\n" + header + "\n" + readable_yaml(manifest.workflow_template)
    header_lines = [
        f"# {manifest.kind} for rule {manifest.rule}; generated by `ai-operator compile`."
    ]
    header_lines += [f"# Note: {note}" for note in manifest.notes]
    # No anchors; long values stay on one line, text of several lines is a block: easy to diff.
    body = readable_yaml(manifest.document)
    text += "---\n" + "\n".join(header_lines) + "\n" + body
    if manifest.sensor is not None:
        header = f"# Sensor for rule {manifest.rule}: its GitHub events start a run at once."
        text += "---\n" + header + "\n" + readable_yaml(manifest.sensor)
    return text
