"""What the controller reads from the API server: named objects, read once, leniently."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from ai_operator.pipelines.controller.objects import (
    RULES_API_VERSION,
    ListedObject,
    RuleObject,
    RuleRef,
    Unreadable,
    named,
)
from ai_operator.pipelines.controller.status import (
    Event,
    EventReason,
    EventType,
    event_name,
    event_object,
)
from ai_operator.pipelines.controller.tenancy import LimitsObject, RefusedLimits
from tests.factories import RULE_DOCUMENT

STORED: dict[str, Any] = copy.deepcopy(RULE_DOCUMENT) | {"status": {"observedGeneration": 1}}
STORED["metadata"] |= {
    "uid": "u-1",
    "generation": 2,
    "resourceVersion": "41",
    "labels": {"team": "web"},
    "annotations": {"note": "not the checker's"},
    "managedFields": [{"manager": "kubectl"}],
}


def test_a_rule_is_read_once_with_its_spec_as_stored() -> None:
    """Identity, version and status typed; the spec kept as stored for the checker."""
    rule = RuleObject.read(STORED)
    assert rule.ref == RuleRef("ci", "staging", "u-1", RULES_API_VERSION, "PRReconciliationRule")
    assert (rule.generation, rule.resource_version, rule.deletion_timestamp) == (2, "41", None)
    assert rule.status == {"observedGeneration": 1}
    assert rule.spec == RULE_DOCUMENT["spec"]
    assert rule.source() == {
        "apiVersion": "aioperator.io/v1alpha1",
        "kind": "PRReconciliationRule",
        "metadata": {"name": "staging", "namespace": "ci", "labels": {"team": "web"}},
        "spec": RULE_DOCUMENT["spec"],
    }


@pytest.mark.parametrize(
    ("stored", "read"),
    [
        pytest.param({"generation": "2"}, {"generation": None}, id="generation-not-a-number"),
        pytest.param({"deletionTimestamp": "t"}, {"deletion_timestamp": "t"}, id="being-deleted"),
        pytest.param({"uid": None}, {"ref.uid": None}, id="no-uid"),
    ],
)
def test_a_rule_is_read_leniently(stored: dict[str, Any], read: dict[str, Any]) -> None:
    document = copy.deepcopy(STORED)
    document["metadata"] |= stored
    rule = RuleObject.read(document)
    for field, value in read.items():
        found: Any = rule
        for part in field.split("."):
            found = getattr(found, part)
        assert found == value


@pytest.mark.parametrize(
    "item",
    [
        pytest.param(None, id="not-an-object"),
        pytest.param({"spec": {}}, id="no-metadata"),
        pytest.param({"metadata": {"namespace": "ci"}}, id="no-name"),
        pytest.param({"metadata": {"name": 7}}, id="name-not-text"),
    ],
)
def test_an_object_without_a_name_is_unreadable(item: object) -> None:
    """The runner skips it (a watch event, a list entry); the other rules go on."""
    with pytest.raises(Unreadable):
        RuleObject.read(item)


def test_a_detached_rule_does_not_see_the_original_change() -> None:
    """What a checker's thread gets is its own copy."""
    document = copy.deepcopy(STORED)
    rule = RuleObject.read(document)
    mine = rule.detached()
    document["spec"]["repositories"].append("acme/api")
    assert mine.spec == RULE_DOCUMENT["spec"]
    assert mine.ref == rule.ref


def test_listed_objects_keep_what_is_well_formed() -> None:
    """An owner reference that is not one, or an annotation that is not text, is left out."""
    owner = {"apiVersion": "v", "kind": "PRReconciliationRule", "name": "r", "uid": "u"}
    items: list[object] = [
        {
            "metadata": {
                "name": "a",
                "namespace": "ci",
                "ownerReferences": [{"kind": "broken"}, owner | {"controller": True}],
                "annotations": {"text": "yes", "number": 1},
            }
        },
        {"metadata": {"namespace": "ci"}},
        {"metadata": "nonsense"},
        "nonsense",
    ]
    found = named(items)
    assert [item.metadata.name for item in found] == ["a"]
    (only,) = found
    assert only.controller is not None and only.controller.uid == "u"
    assert only.metadata.annotations == {"text": "yes"}
    assert RuleRef("ci", "r", "u").controls(only)
    assert RuleRef("ci", "r", "earlier").left_by_earlier(only)
    assert ListedObject.read(None).metadata.name == ""


def test_limits_are_read_where_listed() -> None:
    """A spec the model refuses is kept as refused, with the namespaces it names; no name: none."""
    good = LimitsObject.read({"metadata": {"name": "a"}, "spec": {"namespaces": ["x"]}})
    assert good is not None and good.name == "a" and not isinstance(good.spec, RefusedLimits)
    bad = LimitsObject.read(
        {"metadata": {"name": "b"}, "spec": {"namespaces": ["x"], "allowedActions": ["explode"]}}
    )
    assert bad is not None and isinstance(bad.spec, RefusedLimits)
    assert bad.spec.namespaces == ("x",)
    assert bad.spec.reason.startswith("spec.allowedActions.0: ")
    assert LimitsObject.read({"metadata": {}}) is None


def test_an_event_is_built_as_a_model_and_sent_as_the_core_v1_event() -> None:
    rule = RuleObject.read(STORED)
    now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    event = Event(EventReason.APPLIED, "compiled", EventType.NORMAL)
    sent = event_object(event, rule, now, "pod-1").to_json()
    expected = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": event_name(event, rule, "2026-12-01T10:00:00Z", "pod-1"),
            "namespace": "ci",
        },
        "involvedObject": {
            "apiVersion": "aioperator.io/v1alpha1",
            "kind": "PRReconciliationRule",
            "name": "staging",
            "namespace": "ci",
            "uid": "u-1",
            "resourceVersion": "41",
        },
        "reason": "Applied",
        "message": "compiled",
        "type": "Normal",
        "source": {"component": "ai-operator"},
        "reportingComponent": "ai-operator",
        "reportingInstance": "pod-1",
        "firstTimestamp": "2026-12-01T10:00:00Z",
        "lastTimestamp": "2026-12-01T10:00:00Z",
        "count": 1,
    }
    assert sent == expected
    assert list(sent) == list(expected)  # the fields in the order they were always sent
