"""With events.enabled the chart renders Argo Events objects that v1.9.11's schema accepts, and the
controller compiles Sensors that listen to them."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_operator.jobs.rules.model import PRReconciliationRule
from ai_operator.pipelines.compile import compile_rule
from ai_operator.pipelines.controller.config import load_config
from tests.argo_schema import events_errors
from tests.chart.helm import VALUES, Helm
from tests.factories import make_rule

EVENTS = VALUES / "events.yaml"
ENABLED = [
    "events.enabled=true",
    "events.github.organizations={acme}",
    "events.webhook.url=https://hooks.example.com",
]


def test_the_event_source_and_bus_validate_against_argo_events_schema(helm: Helm) -> None:
    """EventSource and EventBus pass Argo Events v1.9.11's schema, made strict."""
    rendered = helm.template(EVENTS)
    kinds = [doc["kind"] for doc in rendered.of_kind("EventSource", "EventBus")]
    assert sorted(kinds) == ["EventBus", "EventSource"]
    for doc in rendered.of_kind("EventSource", "EventBus"):
        assert events_errors(doc) == [], doc["kind"]


def test_the_event_source_checks_signatures_and_creates_no_hook(helm: Helm) -> None:
    """The webhook secret comes from a Secret; no API token, so the EventSource never edits
    GitHub's hooks (the organization's or the App's webhook is set up once, by hand)."""
    source = helm.template(EVENTS).one("EventSource")
    github = source["spec"]["github"]["github"]
    assert github["webhookSecret"] == {"name": "ai-operator-secrets", "key": "webhook-secret"}
    assert "apiToken" not in github and "githubApp" not in github
    assert github["organizations"] == ["acme"]
    assert github["webhook"]["url"] == "https://hooks.example.com"
    assert {"check_suite", "pull_request"} <= set(github["events"])


def test_the_ingress_reaches_the_event_sources_service(helm: Helm) -> None:
    """The Ingress sends the webhook path to the Service Argo Events creates for the source."""
    rendered = helm.template(EVENTS)
    source = rendered.one("EventSource")
    ingress = rendered.one("Ingress")
    [path] = ingress["spec"]["rules"][0]["http"]["paths"]
    backend = path["backend"]["service"]
    assert backend["name"] == f"{source['metadata']['name']}-eventsource-svc"
    assert backend["port"]["number"] == source["spec"]["service"]["ports"][0]["port"]
    assert path["path"] == source["spec"]["github"]["github"]["webhook"]["endpoint"]


def test_an_existing_event_bus_is_named_not_created(helm: Helm) -> None:
    """events.eventBus.create=false: no EventBus; the source and the Sensors use the named one."""
    rendered = helm.template(
        values=[*ENABLED, "events.eventBus.create=false", "events.eventBus.name=shared"]
    )
    assert rendered.of_kind("EventBus") == []
    assert rendered.one("EventSource")["spec"]["eventBusName"] == "shared"


def test_the_controller_compiles_sensors_for_the_rendered_source(
    helm: Helm, tmp_path: Path
) -> None:
    """The controller's configuration names the EventSource, EventBus and the Sensors' account
    the chart created; a rule compiled with it gets a Sensor that validates too."""
    rendered = helm.template(EVENTS)
    config_path = tmp_path / "controller.yaml"
    config_path.write_text(rendered.controller_config_map["data"]["controller.yaml"])
    options = load_config(config_path).compile
    assert options.events is True
    assert options.event_source == rendered.one("EventSource")["metadata"]["name"]
    assert options.event_bus == rendered.one("EventSource")["spec"]["eventBusName"]
    assert rendered.named("ServiceAccount", options.sensor_service_account)
    role = rendered.one("Role", options.sensor_service_account)
    assert role["rules"] == [
        {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create"]}
    ]
    rule: PRReconciliationRule = make_rule(events={"github": ["check_suite"]})
    sensor = compile_rule(rule, "argo", options).sensor
    assert sensor is not None and events_errors(sensor) == []


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["events.enabled=true", "executor=cronjob"], "needs executor: argo"),
        (["events.enabled=true"], "events.github.organizations"),
        (
            ["events.enabled=true", "events.github.organizations={acme}"],
            "events.webhook.url",
        ),
        ([*ENABLED, "events.ingress.enabled=true"], "events.ingress.host is required"),
    ],
    ids=["cronjob", "no-organization", "no-url", "ingress-without-host"],
)
def test_values_that_cannot_work_are_refused(helm: Helm, values: list[str], message: str) -> None:
    """Each refusal names the value to set."""
    assert message in helm.template_error(values=values)


def test_events_are_off_by_default(helm: Helm) -> None:
    """No Argo Events object, and the controller compiles no Sensor."""
    rendered = helm.template()
    assert rendered.of_kind("EventSource", "EventBus", "Ingress") == []
