"""The chart's optional monitoring: the generated dashboard and the promtool-tested alerts."""

from __future__ import annotations

import json

import yaml

from tests.chart.helm import CHART, Helm

ENABLED = ["monitoring.dashboard.enabled=true", "monitoring.prometheusRule.enabled=true"]


def test_monitoring_is_off_by_default(helm: Helm) -> None:
    """Without monitoring values, neither a dashboard ConfigMap nor a PrometheusRule is made."""
    rendered = helm.template()
    assert rendered.of_kind("PrometheusRule") == []
    assert not any(
        "grafana_dashboard" in doc["metadata"].get("labels", {})
        for doc in rendered.of_kind("ConfigMap")
    )


def test_the_dashboard_ships_as_the_sidecars_configmap(helm: Helm) -> None:
    """The ConfigMap holds the generated JSON unchanged, labelled grafana_dashboard: "1"."""
    rendered = helm.template(values=ENABLED)
    config_map = rendered.one("ConfigMap", "ai-operator-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads(config_map["data"]["ai-operator.json"])
    assert shipped == json.loads((CHART / "dashboards" / "ai-operator.json").read_text())


def test_the_alerts_ship_as_the_rules_file(helm: Helm) -> None:
    """The PrometheusRule's spec is the plain rules file, with the labels a ruleSelector wants."""
    rendered = helm.template(
        values=[*ENABLED, "monitoring.prometheusRule.labels.release=kube-prometheus-stack"]
    )
    rule = rendered.one("PrometheusRule", "ai-operator-alerts")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"] == yaml.safe_load((CHART / "alerts" / "ai-operator.rules.yaml").read_text())


def test_monitoring_objects_go_where_they_are_asked_to(helm: Helm) -> None:
    """Grafana's and Prometheus' namespaces may differ from the release's."""
    rendered = helm.template(
        values=[
            *ENABLED,
            "monitoring.dashboard.namespace=grafana",
            "monitoring.prometheusRule.namespace=monitoring",
        ]
    )
    assert rendered.one("ConfigMap", "ai-operator-dashboard")["metadata"]["namespace"] == "grafana"
    assert rendered.one("PrometheusRule")["metadata"]["namespace"] == "monitoring"


def test_unknown_monitoring_values_are_refused(helm: Helm) -> None:
    """The values schema knows the monitoring block: a typo fails the install."""
    error = helm.template_error(values=["monitoring.dashbord.enabled=true"])
    assert "dashbord" in error
