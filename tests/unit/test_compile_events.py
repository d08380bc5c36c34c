"""A rule's Sensor: what it accepts, what it passes on, and that Argo Events' schema accepts it.

The filters are evaluated on payloads in GitHub's documented shapes as Argo Events evaluates them
(:mod:`tests.argo_events`); the schema is Argo Events v1.9.11's, made strict
(:mod:`tests.argo_schema`); each trigger's Workflow is checked against Argo v4.1.2's.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from ai_operator.jobs.rules.model import GitHubEvent, PRReconciliationRule
from ai_operator.pipelines.argo import rule_mutex
from ai_operator.pipelines.compile import CompileError, compile_rule
from ai_operator.pipelines.events import SHAPES, go_quote_meta
from ai_operator.pipelines.options import CompileOptions
from tests.argo_events import Cluster, deliver, passes
from tests.argo_schema import events_errors, workflow_errors
from tests.conftest import run_cli
from tests.factories import make_rule

ON = CompileOptions(events=True)
ALL_EVENTS = [event.value for event in GitHubEvent]


def evented(name: str = "staging-automerge", **events: Any) -> PRReconciliationRule:
    """The staging rule (labels auto-merge and staging, not wip; base main; acme/web)."""
    selector = {
        "labels": {"include": ["auto-merge", "staging"], "exclude": ["wip"]},
        "baseBranch": "main",
    }
    return make_rule(name, selector=selector, events={"github": ALL_EVENTS} | events)


def sensor_of(rule: PRReconciliationRule) -> dict[str, Any]:
    sensor = compile_rule(rule, "argo", ON).sensor
    assert sensor is not None
    return sensor


def pull_request_body(**changes: Any) -> dict[str, Any]:
    """A ``pull_request`` delivery's body (GitHub's documented shape, the fields read)."""
    body: dict[str, Any] = {
        "action": "synchronize",
        "number": 7,
        "pull_request": {
            "html_url": "https://github.com/acme/web/pull/7",
            "number": 7,
            "state": "open",
            "base": {"ref": "main"},
            "head": {"ref": "raise-replicas", "sha": "4f1c7a2e9b3d58c06a1e2f7b9d4c3a5e6f708192"},
            "labels": [{"name": "auto-merge"}, {"name": "staging"}],
        },
        "repository": {"full_name": "acme/web"},
    }
    for path, value in changes.items():
        target = body
        *parents, last = path.split("__")
        for key in parents:
            target = target[key]
        target[last] = value
    return body


def data(event: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"headers": {"X-Github-Event": [event]}, "body": body}


def accepted(event: str, body: dict[str, Any]) -> bool:
    """Whether the rule's Sensor would start a run for this delivery."""
    sensor = sensor_of(evented())
    return any(
        passes(dependency, data(event, body)) for dependency in sensor["spec"]["dependencies"]
    )


STATUS = {"sha": "4f1c7a2e9b3d58c06a1e2f7b9d4c3a5e6f708192", "state": "success",
          "repository": {"full_name": "acme/web"}}  # fmt: skip
COMMENT = {
    "action": "created",
    "issue": {
        "number": 7,
        "pull_request": {"url": "https://api.github.com/repos/acme/web/pulls/7"},
    },
    "repository": {"full_name": "acme/web"},
}
REVIEW = pull_request_body(action="submitted") | {"review": {"state": "approved"}}
SUITE = {
    "action": "completed",
    "check_suite": {
        "head_sha": "4f1c7a2e9b3d58c06a1e2f7b9d4c3a5e6f708192",
        "pull_requests": [{"url": "https://api.github.com/repos/acme/web/pulls/7", "number": 7}],
    },
    "repository": {"full_name": "acme/web"},
}
RUN = {"action": "completed", "check_run": copy.deepcopy(SUITE["check_suite"]),
       "repository": {"full_name": "acme/web"}}  # fmt: skip


@pytest.mark.parametrize(
    ("event", "body", "starts"),
    [
        pytest.param("pull_request", pull_request_body(), True, id="pr-pushed-to"),
        pytest.param("pull_request", pull_request_body(repository={"full_name": "ACME/Web"}), True, id="repository-case-ignored"),
        pytest.param("pull_request", pull_request_body(repository={"full_name": "acme/web-fork"}), False, id="other-repository"),
        pytest.param("pull_request", pull_request_body(repository={"full_name": "evil/acme/web"}), False, id="repository-anchored"),
        pytest.param("pull_request", pull_request_body(action="closed"), False, id="pr-closed"),
        pytest.param("pull_request", pull_request_body(pull_request__base={"ref": "develop"}), False, id="other-base"),
        pytest.param("pull_request", pull_request_body(pull_request__labels=[{"name": "staging"}]), False, id="label-missing"),
        pytest.param("pull_request", pull_request_body(pull_request__labels=[{"name": "auto-merge"}, {"name": "staging"}, {"name": "wip"}]), False, id="excluded-label"),
        pytest.param("pull_request", pull_request_body(pull_request__labels=[{"name": "auto-merge-x"}, {"name": "staging"}]), False, id="label-prefix-is-not-the-label"),
        pytest.param("pull_request_review", REVIEW, True, id="review-submitted"),
        pytest.param("check_suite", SUITE, True, id="suite-completed"),
        pytest.param("check_suite", SUITE | {"action": "requested"}, False, id="suite-requested"),
        pytest.param("check_suite", SUITE | {"check_suite": {"head_sha": "x", "pull_requests": []}}, False, id="suite-of-no-pr"),
        pytest.param("check_run", RUN, True, id="run-completed"),
        pytest.param("status", STATUS, True, id="status-success"),
        pytest.param("status", STATUS | {"state": "pending"}, False, id="status-pending"),
        pytest.param("issue_comment", COMMENT, True, id="comment-on-a-pr"),
        pytest.param("issue_comment", COMMENT | {"issue": {"number": 7}}, False, id="comment-on-an-issue"),
        pytest.param("push", SUITE, False, id="event-type-not-listed"),
    ],
)  # fmt: skip
def test_the_sensor_starts_a_run_only_for_what_the_rule_covers(
    event: str, body: dict[str, Any], starts: bool
) -> None:
    """Event type, action, repository (case-insensitive, anchored), base and labels filter."""
    assert accepted(event, body) is starts


@pytest.mark.parametrize("events", [[e] for e in ALL_EVENTS] + [ALL_EVENTS])
@pytest.mark.parametrize("debounce", [0, 15])
def test_every_sensor_validates_and_its_workflows_validate_as_workflows(
    events: list[str], debounce: int
) -> None:
    """Argo Events v1.9.11's schema (strict) accepts the Sensor; Argo v4.1.2's, each Workflow."""
    sensor = sensor_of(evented(github=events, debounceSeconds=debounce))
    assert events_errors(sensor) == []
    for trigger in sensor["spec"]["triggers"]:
        workflow = trigger["template"]["k8s"]["source"]["resource"]
        assert workflow_errors(workflow) == []


def test_the_strict_schema_catches_a_misspelt_field() -> None:
    """A filter field Argo Events does not know is refused (the CRD alone would keep it)."""
    sensor = sensor_of(evented())
    sensor["spec"]["dependencies"][0]["filters"]["data"][0]["comparater"] = "="
    assert any("comparater" in problem for problem in events_errors(sensor))


def test_only_numbers_a_repository_and_the_clock_reach_the_workflow() -> None:
    """Each trigger parameter reads a PR number list, the repository's name, or a template of
    numbers, commit ids and the time; nothing else of a payload."""
    allowed_keys = {shape.pull_requests for shape in SHAPES.values()} | {
        "body.repository.full_name"
    }
    for trigger in sensor_of(evented())["spec"]["triggers"]:
        for parameter in trigger["template"]["k8s"]["parameters"]:
            source = parameter["src"]
            if "dataKey" in source:
                assert source["dataKey"] in allowed_keys
            else:
                template = source["dataTemplate"]
                assert "unixEpoch" in template
                assert ".Input" not in template or any(
                    part in template for part in ("number | int", "head_sha | trunc", "sha | trunc")
                )


def test_scheduled_and_event_runs_are_the_same_template_under_one_mutex() -> None:
    """The CronWorkflow and every trigger name the WorkflowTemplate, which holds the rule's mutex;
    a run's label says what started it."""
    manifest = compile_rule(evented(), "argo", ON)
    assert manifest.workflow_template is not None and manifest.sensor is not None
    template = manifest.workflow_template
    assert template["spec"]["synchronization"] == {"mutexes": [{"name": rule_mutex(evented())}]}
    ref = {"name": template["metadata"]["name"]}
    assert manifest.document["spec"]["workflowSpec"] == {"workflowTemplateRef": ref}
    assert (
        manifest.document["spec"]["workflowMetadata"]["labels"]["aioperator.io/trigger"]
        == "schedule"
    )
    for trigger in manifest.sensor["spec"]["triggers"]:
        workflow = trigger["template"]["k8s"]["source"]["resource"]
        assert workflow["spec"]["workflowTemplateRef"] == ref
        assert workflow["metadata"]["labels"]["aioperator.io/trigger"] == "event"


def test_without_debounce_each_delivery_makes_its_own_run() -> None:
    """debounceSeconds: 0 uses generateName: two deliveries, two Workflows."""
    sensor = sensor_of(evented(github=["check_suite"], debounceSeconds=0))
    cluster = Cluster()
    for _ in range(2):
        assert len(deliver(sensor, data("check_suite", SUITE), cluster, now=1_800_000_000)) == 1
    assert len(cluster.workflows) == 2


def test_a_long_rule_name_still_gives_runs_a_63_character_name() -> None:
    """Argo labels pods with the Workflow's name: at most 63 characters."""
    rule = evented("a-very-long-rule-name-that-goes-on-and-on-and-on-for-a-while")
    [workflow] = deliver(sensor_of(rule), data("check_suite", SUITE), Cluster(), now=1.8e9)
    assert len(workflow["metadata"]["name"]) <= 63


def test_events_need_the_rules_repositories_and_the_installations_consent() -> None:
    """No repositories: refused (the Sensor filters on them); events off: no Sensor."""
    with pytest.raises(CompileError, match=r"spec\.events needs spec\.repositories"):
        compile_rule(_without_repositories(), "argo", ON)
    assert compile_rule(evented(), "argo", CompileOptions()).sensor is None
    assert compile_rule(evented(), "cronjob", ON).sensor is None


def _without_repositories() -> PRReconciliationRule:
    document = evented().to_document()
    document["spec"]["repositories"] = []
    return PRReconciliationRule.model_validate(document)


def test_go_quote_meta_escapes_what_go_regexp_would_read() -> None:
    """Repository and label names match literally."""
    assert go_quote_meta("a.b+c(d)") == r"a\.b\+c\(d\)"


def test_compile_writes_the_sensor_only_when_asked(tmp_path: Path) -> None:
    """``ai-operator compile --events`` adds each event-driven rule's Sensor after its object."""
    path = tmp_path / "rule.yaml"
    path.write_text(yaml.safe_dump(evented().to_document()))
    plain = run_cli(["compile", str(path)], {"PATH": os.environ.get("PATH", "")})
    with_events = run_cli(["compile", "--events", str(path)], {"PATH": os.environ.get("PATH", "")})
    assert plain.code == 0 and with_events.code == 0, plain.stderr + with_events.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(with_events.stdout) if d]
    assert kinds == ["ConfigMap", "WorkflowTemplate", "CronWorkflow", "Sensor"]
    assert "kind: Sensor" not in plain.stdout
