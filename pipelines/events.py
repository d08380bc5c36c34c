"""A rule's Argo Events Sensor: GitHub webhooks start the rule's WorkflowTemplate at once.

The installation runs one GitHub EventSource (the chart's ``events.enabled``); it verifies each
delivery's ``X-Hub-Signature-256`` with the webhook secret and puts ``{headers, body}`` on the
EventBus. Each event-driven rule (``spec.events``) gets a Sensor that:

- has one dependency per GitHub event type the rule lists, whose data filters (Argo Events'
  ``path``/``type``/``value``; string values are regular expressions, anchored here) keep only
  deliveries of that type (``X-Github-Event``), with an action that can change what the rule
  decides, from one of the rule's repositories (case-insensitive), naming at least one pull
  request, and, where the payload carries them, with the selector's base branch and labels;
- has one trigger per dependency (``conditions``: that dependency alone), a ``k8s`` trigger
  creating a Workflow that references the rule's WorkflowTemplate, labelled
  ``aioperator.io/trigger: event``. The only values taken from the payload are the pull
  requests' numbers (``dataKey``: a JSON number or list of numbers), the repository's full name
  (which the filter already matched against the rule's repositories, and which fetch checks
  again) and two clock values; nothing else of a payload reaches the Workflow.

Coalescing: the Workflow's name is ``<rule>-e-<subject>-<window>``, where the subject is the pull
request's number (or the head commit of a check or status) and the window the number of
``debounceSeconds`` periods since the epoch. A second delivery about the same subject in the same
window makes the same name, and the API server refuses it (AlreadyExists): a burst becomes one
run. The run's ``not-before`` argument is the window's end, and fetch reads GitHub only then, so
the one run sees what every coalesced delivery announced. Runs of one rule hold the rule's mutex
(:func:`pipelines.argo.rule_mutex`), so a run started while another is in progress waits for it
and then reads GitHub afresh; a decision already recorded for unchanged facts is reused, never
made or applied twice. With ``debounceSeconds: 0`` each delivery makes its own run
(``generateName``).

This module builds data only; it reads no file and talks to no cluster.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ai_operator.jobs.rules.model import GitHubEvent, PRReconciliationRule, RuleEvents
from ai_operator.jobs.rules.names import bounded_name
from ai_operator.pipelines import options as conventions
from ai_operator.pipelines.argo import (
    NOT_BEFORE_ARGUMENT,
    PULL_REQUESTS_ARGUMENT,
    REPOSITORY_ARGUMENT,
    RUN_ARGUMENTS,
    TITLE_ANNOTATION,
    TRIGGER_EVENT,
    run_labels,
)
from ai_operator.pipelines.options import CompileOptions

API_VERSION = "argoproj.io/v1alpha1"
EVENT_NAME = "github"
"""The name of the GitHub event in the installation's EventSource (``spec.github.<name>``)."""
RUN_PREFIX_LIMIT = 36
"""Characters of the rule's name in an event run's name: with ``-e-``, a 12-character subject and
a window number, the name stays a 63-character label value, as Argo needs."""
EVENT_HEADER = "headers.X-Github-Event.0"
REPOSITORY_PATH = "body.repository.full_name"


@dataclass(frozen=True)
class EventShape:
    """Where one GitHub event type's payload says what the Sensor needs."""

    actions: tuple[str, ...]
    """Actions that can change a decision; empty: the payload has no ``action`` to filter on."""
    pull_requests: str | None
    """The ``dataKey`` of the pull request numbers (None: the event names none; a full pass)."""
    must_exist: str
    """A path that only a payload about a pull request has (a string)."""
    subject: str
    """The Go template (over ``.Input``) of the coalescing subject: a number or a commit."""
    base: str | None = None
    """The path of the base branch, when the payload carries it."""
    labels: str | None = None
    """The path of the pull request's label names, when the payload carries them."""
    state_path: str | None = None
    states: tuple[str, ...] = ()


PULL_REQUEST_ACTIONS = (
    "opened", "reopened", "synchronize", "ready_for_review", "labeled", "unlabeled", "edited",
    "auto_merge_disabled",
)  # fmt: skip

SHAPES: dict[GitHubEvent, EventShape] = {
    GitHubEvent.PULL_REQUEST: EventShape(
        actions=PULL_REQUEST_ACTIONS,
        pull_requests="body.pull_request.number",
        must_exist="body.pull_request.html_url",
        subject="{{ .Input.body.pull_request.number | int }}",
        base="body.pull_request.base.ref",
        labels="body.pull_request.labels.#.name",
    ),
    GitHubEvent.PULL_REQUEST_REVIEW: EventShape(
        actions=("submitted", "dismissed", "edited"),
        pull_requests="body.pull_request.number",
        must_exist="body.pull_request.html_url",
        subject="{{ .Input.body.pull_request.number | int }}",
        base="body.pull_request.base.ref",
        labels="body.pull_request.labels.#.name",
    ),
    GitHubEvent.CHECK_SUITE: EventShape(
        actions=("completed",),
        pull_requests="body.check_suite.pull_requests.#.number",
        must_exist="body.check_suite.pull_requests.0.url",
        subject="{{ .Input.body.check_suite.head_sha | trunc 12 }}",
    ),
    GitHubEvent.CHECK_RUN: EventShape(
        actions=("completed",),
        pull_requests="body.check_run.pull_requests.#.number",
        must_exist="body.check_run.pull_requests.0.url",
        subject="{{ .Input.body.check_run.head_sha | trunc 12 }}",
    ),
    GitHubEvent.STATUS: EventShape(
        actions=(),
        pull_requests=None,
        must_exist="body.sha",
        subject="{{ .Input.body.sha | trunc 12 }}",
        state_path="body.state",
        states=("success", "failure", "error"),
    ),
    GitHubEvent.ISSUE_COMMENT: EventShape(
        actions=("created", "edited"),
        pull_requests="body.issue.number",
        must_exist="body.issue.pull_request.url",
        subject="{{ .Input.body.issue.number | int }}",
    ),
}
"""GitHub's documented payloads, per event type (docs.github.com, "Webhook events and
payloads"). A ``status`` names a commit, not a pull request: its run covers every pull request
of the rule, as a scheduled run does."""


def sensor_name(rule: PRReconciliationRule) -> str:
    """The rule's Sensor (the name of its CronWorkflow and WorkflowTemplate)."""
    return conventions.object_name(rule)


def run_prefix(rule: PRReconciliationRule) -> str:
    """The start of every event-started run's name."""
    return bounded_name(rule.metadata.name, RUN_PREFIX_LIMIT) + "-e-"


def window(seconds: int) -> str:
    """The Go template of the current debounce window's number (sprig's ``now``)."""
    return f"{{{{ div (now | unixEpoch) {seconds} }}}}"


def window_end(seconds: int) -> str:
    """The Go template of the epoch second the current debounce window ends."""
    return f"{{{{ mul (add1 (div (now | unixEpoch) {seconds})) {seconds} }}}}"


def build_sensor(
    rule: PRReconciliationRule, options: CompileOptions, events: RuleEvents
) -> dict[str, Any]:
    """The Sensor document that submits ``rule``'s WorkflowTemplate on its GitHub events."""
    dependencies = [_dependency(rule, event, options) for event in events.github]
    triggers = [_trigger(rule, event, events.debounceSeconds, options) for event in events.github]
    spec: dict[str, Any] = {
        "eventBusName": options.event_bus,
        "template": {"serviceAccountName": options.sensor_service_account},
        "dependencies": dependencies,
        "triggers": triggers,
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "Sensor",
        "metadata": {
            "name": sensor_name(rule),
            "namespace": conventions.target_namespace(rule, options),
            "labels": conventions.rule_labels(rule),
            "annotations": conventions.rule_annotations(rule, None),
        },
        "spec": spec,
    }


def _dependency(
    rule: PRReconciliationRule, event: GitHubEvent, options: CompileOptions
) -> dict[str, Any]:
    shape = SHAPES[event]
    repositories = rule.spec.repositories
    data: list[dict[str, Any] | None] = [
        _string(EVENT_HEADER, [_exactly(event.value)]),
        _string(REPOSITORY_PATH, [_exactly(name, ignore_case=True) for name in repositories]),
        _string(shape.must_exist, ["."]),
    ]
    if shape.actions:
        data.append(_string("body.action", [_exactly(action) for action in shape.actions]))
    if shape.state_path:
        data.append(_string(shape.state_path, [_exactly(state) for state in shape.states]))
    selector = rule.spec.selector
    if shape.base and selector.baseBranch is not None:
        data.append(_string(shape.base, [_exactly(selector.baseBranch)]))
    if shape.labels:
        data += [_label_filter(shape.labels, name) for name in selector.labels.include]
        data += [
            _label_filter(shape.labels, name, comparator="!=") for name in selector.labels.exclude
        ]
    return {
        "name": event.value.replace("_", "-"),
        "eventSourceName": options.event_source,
        "eventName": EVENT_NAME,
        "filters": {"data": [f for f in data if f is not None]},
    }


def _trigger(
    rule: PRReconciliationRule, event: GitHubEvent, debounce: int, options: CompileOptions
) -> dict[str, Any]:
    shape = SHAPES[event]
    dependency = event.value.replace("_", "-")
    arguments = list(RUN_ARGUMENTS)
    parameters: list[dict[str, Any]] = []

    def argument(name: str, source: dict[str, Any]) -> None:
        src = {"dependencyName": dependency, **source}
        dest = f"spec.arguments.parameters.{arguments.index(name)}.value"
        parameters.append({"src": src, "dest": dest})

    if shape.pull_requests is not None:
        argument(PULL_REQUESTS_ARGUMENT, {"dataKey": shape.pull_requests})
    argument(REPOSITORY_ARGUMENT, {"dataKey": REPOSITORY_PATH})
    metadata: dict[str, Any] = {
        "namespace": conventions.target_namespace(rule, options),
        "labels": run_labels(rule, TRIGGER_EVENT),
        "annotations": {TITLE_ANNOTATION: rule.qualified_name},
    }
    if debounce > 0:
        argument(NOT_BEFORE_ARGUMENT, {"dataTemplate": window_end(debounce)})
        metadata["name"] = run_prefix(rule)
        name = f"{run_prefix(rule)}{shape.subject}-{window(debounce)}"
        parameters.append(
            {"src": {"dependencyName": dependency, "dataTemplate": name}, "dest": "metadata.name"}
        )
    else:
        metadata["generateName"] = run_prefix(rule)
    workflow = {
        "apiVersion": API_VERSION,
        "kind": "Workflow",
        "metadata": metadata,
        "spec": {
            "workflowTemplateRef": {"name": conventions.object_name(rule)},
            "arguments": {
                "parameters": [{"name": k, "value": v} for k, v in RUN_ARGUMENTS.items()]
            },
        },
    }
    return {
        "template": {
            "name": dependency,
            "conditions": dependency,
            "k8s": {
                "operation": "create",
                "source": {"resource": workflow},
                "parameters": parameters,
            },
        },
    }


def _string(path: str, values: list[str], comparator: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"path": path, "type": "string", "value": values}
    if comparator:
        found["comparator"] = comparator
    return found


def _label_filter(path: str, name: str, comparator: str | None = None) -> dict[str, Any] | None:
    """A label among the payload's label names (a JSON list, matched as its text).

    A name JSON would escape is left to fetch, which checks every selector condition again.
    """
    quoted = json.dumps(name, ensure_ascii=False)
    if quoted != f'"{name}"':
        return None
    return _string(path, [go_quote_meta(quoted)], comparator)


def _exactly(value: str, *, ignore_case: bool = False) -> str:
    return ("(?i)" if ignore_case else "") + "^" + go_quote_meta(value) + "$"


_GO_META = re.compile(r"([\\.+*?()|\[\]{}^$])")


def go_quote_meta(text: str) -> str:
    """Go's ``regexp.QuoteMeta``: ``text`` as a regular expression matching it literally."""
    return _GO_META.sub(r"\\\1", text)
