"""The namespace's limits reach every compiled pod, in both targets, as readable JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ai_operator.jobs.rules.encoding import LIMITS_ENV, decode_limits
from ai_operator.jobs.rules.limits import BUILT_IN, AILimits, LimitsSpec
from ai_operator.jobs.rules.model import Action
from ai_operator.pipelines.compile import compile_rule
from ai_operator.pipelines.options import CompileOptions
from tests.factories import inlined, make_rule

TEAM_A = LimitsSpec(
    namespaces=["team-a", "team-b"],
    repositories=["acme/*"],
    allowedActions=[Action.MERGE, Action.ESCALATE],
    ai=AILimits(endpoints=["https://llm.example.com/{{v1}}"], allowInsecureHttp=False),
)


def pod_containers(document: dict[str, Any]) -> list[dict[str, Any]]:
    if document["kind"] == "CronJob":
        return list(document["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"])
    templates = document["spec"]["workflowSpec"]["templates"]
    return [t["container"] for t in templates if "container" in t]


@pytest.mark.parametrize("target", ["argo", "cronjob"])
@pytest.mark.parametrize("limits", [BUILT_IN, TEAM_A], ids=["built-in", "team-a"])
def test_every_pod_carries_the_limits(target: str, limits: LimitsSpec) -> None:
    """Each container's AI_OPERATOR_LIMITS decodes to the limits compiled in (namespaces aside)."""
    document = inlined(compile_rule(make_rule(), target, CompileOptions(limits=limits)))  # type: ignore[arg-type]
    for container in pod_containers(document):
        [value] = [v["value"] for v in container["env"] if v["name"] == LIMITS_ENV]
        assert "{{" not in value  # Argo would read it as one of its tags
        assert decode_limits(value) == limits.model_copy(update={"namespaces": []})
        assert "token" not in json.loads(value).get("ai", {})
