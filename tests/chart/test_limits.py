"""The limits the chart creates: a default derived from the chart's own repositories, one object
per team namespace, each valid for the PRReconciliationLimits CRD and read by the controller."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import yaml

from ai_operator.jobs.rules.limits import LimitsSpec
from ai_operator.pipelines.controller.config import parse_config
from ai_operator.pipelines.controller.tenancy import LimitsCache, limits_objects
from tests.argo_schema import strict
from tests.chart.helm import CHART, VALUE_FILES, Helm

LIMITS_CRD = CHART / "crds" / "prreconciliationlimits.aioperator.io.yaml"


def limits_of(helm: Helm, *values: str) -> dict[str, dict[str, Any]]:
    rendered = helm.template(values=list(values))
    return {doc["metadata"]["name"]: doc for doc in rendered.of_kind("PRReconciliationLimits")}


@pytest.mark.parametrize(
    ("values", "repositories"),
    [
        pytest.param([], ["*/*"], id="nothing-set"),
        pytest.param(["github.organization=acme"], ["acme/*"], id="organization"),
        pytest.param(
            ["github.organization=acme", "github.repositories={web,other/api}"],
            ["acme/web", "other/api"],
            id="organization-and-repositories",
        ),
        pytest.param(
            ["github.organization=acme", "limits.default.repositories={acme/web-*}"],
            ["acme/web-*"],
            id="set-by-the-administrator",
        ),
    ],
)
def test_the_default_limits_cover_the_charts_repositories(
    helm: Helm, values: list[str], repositories: list[str]
) -> None:
    """`default`'s repositories: the value when set, else github.organization's repositories."""
    found = limits_of(helm, *values)
    assert set(found) == {"default"}
    assert found["default"]["spec"]["repositories"] == repositories
    assert "namespace" not in found["default"]["metadata"]


def test_each_team_namespace_gets_its_own_limits(helm: Helm) -> None:
    """An entry of limits.namespaces is an object naming its namespace, with its Secret."""
    found = limits_of(
        helm,
        "watchNamespaces={team-a,team-b}",
        "limits.namespaces.team-a.repositories={acme/web}",
        "limits.namespaces.team-a.allowedActions={escalate,wait}",
        "limits.namespaces.team-a.secretName=team-a-tokens",
    )
    team = found["team-a"]["spec"]
    assert team["namespaces"] == ["team-a"]
    assert team["repositories"] == ["acme/web"]
    assert team["allowedActions"] == ["escalate", "wait"]
    assert team["secretName"] == "team-a-tokens"
    assert "copyTokens" not in team
    cache = LimitsCache()
    cache.replace(limits_objects(found.values()))
    assert cache.governing("team-a").spec == LimitsSpec.model_validate(team)
    assert cache.governing("team-a").name == "team-a"
    assert cache.governing("team-b").name == "default"


@pytest.mark.parametrize(
    "value_file", [None, *VALUE_FILES], ids=lambda p: p.stem if p else "defaults"
)
def test_rendered_limits_pass_the_crd_and_the_model(helm: Helm, value_file: Any) -> None:
    """Every rendered PRReconciliationLimits is valid for its CRD (no unknown field) and model."""
    crd = yaml.safe_load(LIMITS_CRD.read_text())
    validator = jsonschema.Draft4Validator(
        strict(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    )
    rendered = helm.template(*((value_file,) if value_file else ()))
    limits = rendered.of_kind("PRReconciliationLimits")
    assert limits, "no PRReconciliationLimits rendered"
    for doc in limits:
        assert [e.message for e in validator.iter_errors(doc)] == []
        LimitsSpec.model_validate(doc["spec"])


def test_no_limits_objects_when_the_administrator_keeps_their_own(helm: Helm) -> None:
    """limits.create: false renders none (another release, or limits kept elsewhere)."""
    assert limits_of(helm, "limits.create=false") == {}


def test_the_controller_reads_the_installation_it_checks_rules_against(helm: Helm) -> None:
    """installation: the repositories and endpoint rules without their own fall back on."""
    rendered = helm.template(
        values=[
            "github.organization=acme",
            "github.repositories={web}",
            "ai.endpoint=https://models.example.com",
        ]
    )
    config = parse_config(rendered.controller_config())
    assert config.installation.rule_repositories([]) == ["acme/web"]
    assert config.installation.ai_endpoint == "https://models.example.com"
    assert config.leader_election.enabled
