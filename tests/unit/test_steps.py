"""Pipeline step inputs and outputs: what Argo carries between pods survives the trip."""

from __future__ import annotations

import base64
import json

import pytest

from jobs.model import Action
from jobs.policy.decision import decide
from jobs.policy.verdict import Verdict
from jobs.steps import (
    StepInputError,
    dump_for_argo,
    encode_rule,
    parse_decisions,
    parse_ref,
    parse_results,
    rule_from_env,
)
from tests.factories import make_pr, make_rule

RULE = make_rule(instruction="PR {{pr.number}}: {{pr.title}}")


def a_decision(**pr):
    verdict = Verdict(action=Action.MERGE, reason="green")
    return decide(RULE, make_pr(**pr), verdict, "fp").model_dump(mode="json")


def test_the_rule_round_trips_through_the_environment():
    """AI_OPERATOR_RULE carries the whole rule, templates included, with no {{ visible."""
    value = encode_rule(RULE)
    assert "{{" not in value
    assert rule_from_env({"AI_OPERATOR_RULE": value}) == RULE


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("", "not set", id="missing"),
        pytest.param("not base64!", "not base64-encoded JSON", id="not-base64"),
        pytest.param(
            base64.b64encode(b'{"kind": "Pod"}').decode(), "not a valid rule", id="not-a-rule"
        ),
    ],
)
def test_a_bad_rule_variable_names_the_problem(value, message):
    """A step without a usable rule says what is wrong with AI_OPERATOR_RULE."""
    with pytest.raises(StepInputError, match=message):
        rule_from_env({"AI_OPERATOR_RULE": value})


def test_outputs_never_show_argo_tags():
    """PR text with {{...}} is escaped in step outputs and decodes back unchanged."""
    decision = a_decision(title="Use {{pr.number}} in {{{x}}}")
    text = dump_for_argo(decision)
    assert "{{" not in text
    assert json.loads(text) == decision


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(lambda d: json.dumps([d, d]), id="list-of-objects"),
        pytest.param(lambda d: json.dumps([json.dumps(d)]), id="list-of-json-strings"),
        pytest.param(json.dumps, id="single-object"),
        pytest.param(lambda d: json.dumps([d, [], {}]), id="failed-nodes-contribute-nothing"),
    ],
)
def test_aggregated_decisions_in_every_shape_argo_produces(shape):
    """The act step reads Argo's aggregate however Argo shaped it."""
    decisions = parse_decisions(shape(a_decision()))
    assert decisions and all(d.action is Action.MERGE for d in decisions)


@pytest.mark.parametrize("text", ["[]", "", "  "])
def test_no_decisions_is_an_empty_list(text):
    """An empty fan-out gives act nothing to do."""
    assert parse_decisions(text) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("{not json", "not JSON", id="not-json"),
        pytest.param('[{"action": "merge"}]', "invalid decision", id="incomplete-decision"),
        pytest.param('"merge"', "must be a JSON list", id="a-string"),
    ],
)
def test_malformed_decisions_are_refused(text, message):
    """A malformed aggregate is an error naming --decisions, never a guessed action."""
    with pytest.raises(StepInputError, match=message):
        parse_decisions(text)


def test_a_reference_needs_repository_and_number():
    """--pr must name the PR it refers to."""
    assert parse_ref('{"repository": "acme/web", "number": 3}')["number"] == 3
    with pytest.raises(StepInputError, match="repository/number"):
        parse_ref('{"repository": "acme/web"}')


def test_report_tolerates_an_unresolved_argo_tag():
    """The exit handler may receive Argo's literal tag when act never ran: that is no rows."""
    assert parse_results("{{workflow.outputs.parameters.results}}") == []
