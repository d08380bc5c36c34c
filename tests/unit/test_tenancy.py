"""Which limits govern a namespace, as the controller resolves them from the cluster's objects."""

from __future__ import annotations

from typing import Any

import pytest

from ai_operator.jobs.rules.limits import BUILT_IN
from ai_operator.pipelines.controller.tenancy import LimitsCache, LimitsObject


def limits(name: str, **spec: Any) -> LimitsObject:
    """The object ``name`` with ``spec`` as the controller reads it where it lists the limits."""
    found = LimitsObject.read({"metadata": {"name": name}, "spec": spec})
    assert found is not None
    return found


# (id, objects, namespace, governing object's name, problem words)
CASES = [
    ("none-built-in", [], "team-a", None, None),
    ("default", [limits("default")], "team-a", "default", None),
    ("named-wins", [limits("default"), limits("a", namespaces=["team-a"])], "team-a", "a", None),
    ("other-namespace-default", [limits("a", namespaces=["team-a"])], "team-b", None, None),
    (
        "ambiguous",
        [limits("a", namespaces=["team-a"]), limits("b", namespaces=["team-a"])],
        "team-a",
        None,
        "named by more than one PRReconciliationLimits: a, b",
    ),
    (
        "broken-naming-object",
        [limits("a", namespaces=["team-a"], allowedActions=["explode"])],
        "team-a",
        "a",
        "PRReconciliationLimits a cannot be used: spec.allowedActions.0",
    ),
    (
        "broken-default",
        [limits("default", repositories="acme/*")],
        "team-a",
        "default",
        "PRReconciliationLimits default cannot be used: spec.repositories",
    ),
]


@pytest.mark.parametrize(
    ("objects", "namespace", "name", "problem"), [pytest.param(*c[1:], id=c[0]) for c in CASES]
)
def test_governing_limits(
    objects: list[LimitsObject], namespace: str, name: str | None, problem: str | None
) -> None:
    """The object that governs a namespace, or why none may (its rules are then refused)."""
    cache = LimitsCache()
    cache.replace(objects)
    governing = cache.governing(namespace)
    assert governing.name == name
    if problem is None:
        assert governing.problem is None and governing.spec is not None
    else:
        assert governing.spec is None
        assert governing.problem is not None and problem in governing.problem


def test_with_no_object_the_built_in_limits_apply() -> None:
    """No limits object at all: every repository and action, the installation's endpoint only."""
    governing = LimitsCache().governing("anywhere")
    assert governing.spec == BUILT_IN
    assert governing.shown == "the built-in limits"


def test_changes_are_reported_only_when_something_changed() -> None:
    """put/remove/replace say whether the limits changed (every rule is checked again then)."""
    cache = LimitsCache()
    assert cache.replace([limits("a", namespaces=["x"])])
    assert not cache.replace([limits("a", namespaces=["x"])])
    assert not cache.put(limits("a", namespaces=["x"]))
    assert cache.put(limits("a", namespaces=["y"]))
    assert cache.remove("a")
    assert not cache.remove("a")
