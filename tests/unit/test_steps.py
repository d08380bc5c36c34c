"""Pipeline step inputs and outputs: what Argo carries between pods survives the trip."""

from __future__ import annotations

import base64
import json

import pytest

from ai_operator.jobs.clients.ai.usage import ModelUsage
from ai_operator.jobs.policy.counts import PassCounts
from ai_operator.jobs.policy.decision import decide
from ai_operator.jobs.policy.verdict import Verdict
from ai_operator.jobs.reconcile.failures import summarize_failures
from ai_operator.jobs.reconcile.steps import (
    Decided,
    dump_for_argo,
    failed_node_list,
    noop_ref,
    parse_counts,
    parse_decided,
    parse_ref,
    termination_message,
)
from ai_operator.jobs.rules.encoding import StepInputError, encode_rule, rule_from_env
from ai_operator.jobs.rules.model import Action
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
        pytest.param("", "neither AI_OPERATOR_RULE nor AI_OPERATOR_RULE_FILE", id="missing"),
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


def a_decided(**pr) -> Decided:
    decision = decide(RULE, make_pr(**pr), Verdict(action=Action.MERGE, reason="green"), "fp")
    usage = ModelUsage(calls=1, input_tokens=900, output_tokens=40, cached_tokens=600)
    return Decided(decision=decision, usage=usage, latency_seconds=1.25, run="wf-1700000000")


def test_a_decide_output_carries_the_decision_what_it_cost_and_which_run_asked():
    """Decision, model calls, tokens, latency and the asking run travel to act, exactly."""
    decided = a_decided(title="Use {{workflow.name}}")
    text = dump_for_argo(decided)
    assert "{{" not in text
    assert json.loads(text)["model"] == {"calls": 1, "input": 900, "output": 40, "cached": 600}
    assert parse_decided(text) == [decided]


@pytest.mark.parametrize("text", ["-", "", "  ", "{}", "[]"])
def test_the_noop_branch_hands_act_no_decision(text):
    """The no-op item's output (and an empty one) gives act nothing to do."""
    assert parse_decided(text) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("{not json", "invalid decision", id="not-json"),
        pytest.param('{"decision": {"action": "merge"}}', "invalid decision", id="incomplete"),
        pytest.param('"merge"', "invalid decision", id="a-string"),
        pytest.param("[{}]", "invalid decision", id="a-list"),
    ],
)
def test_malformed_decisions_are_refused(text, message):
    """A malformed decide output is an error naming --decisions, never a guessed action."""
    with pytest.raises(StepInputError, match=message):
        parse_decided(text)


def test_a_reference_needs_the_pr_it_refers_to():
    """--pr names its PR as ``owner/name#N``; fields Argo or a later version add are ignored."""
    ref = parse_ref('{"display": "acme/web#3", "key": "d-1", "shard": "1"}')
    assert ref.target() == ("acme/web", 3)
    for broken in ('{"display": "web#3", "key": "k"}', '{"display": "a/b#x", "key": "k"}'):
        with pytest.raises(StepInputError, match="owner/name#number"):
            parse_ref(broken)
    for broken in ('{"repository": "acme/web", "number": 3}', "[]", "not json"):
        with pytest.raises(StepInputError, match="--pr is no pull request reference"):
            parse_ref(broken)


def test_report_tolerates_an_unresolved_argo_tag():
    """The exit handler may receive Argo's literal tag when act never ran: that is no counts."""
    assert parse_counts("{{workflow.outputs.parameters.summary}}") == PassCounts()


def test_the_noop_item_needs_no_pull_request():
    """The no-op item passes --pr validation and has a fixed key per rule."""
    text = dump_for_argo(noop_ref(RULE))
    assert json.loads(text) == {"display": "(no-op)", "key": f"noop-{RULE.spec_hash()}",
                                "noop": True}  # fmt: skip
    assert parse_ref(text).noop is True


@pytest.mark.parametrize(
    ("text", "count"),
    [
        pytest.param('"null"', 0, id="nothing-failed"),
        pytest.param("null", 0, id="unquoted-null"),
        pytest.param(
            json.dumps(json.dumps([{"displayName": "decide(0)"}, {"displayName": "x"}])),
            2,
            id="two-failed",
        ),
        pytest.param("{{workflow.failures}}", 0, id="unresolved"),
    ],
)
def test_failed_nodes_are_counted_from_argos_twice_quoted_json(text, count):
    """The exit handler counts failed nodes however Argo quoted them."""
    from ai_operator.jobs.reconcile.steps import failed_nodes

    assert failed_nodes(text) == count


def argo_failures(*messages: str) -> str:
    nodes = [{"displayName": f"decide({i})", "message": m} for i, m in enumerate(messages)]
    return json.dumps(json.dumps(nodes))


@pytest.mark.parametrize(
    ("failures", "errors"),
    [
        pytest.param(
            argo_failures(
                "main: Error (exit code 75): " + termination_message("ai", "AI: HTTP 529"),
                "main: Error (exit code 1): " + termination_message("ai", "AI: HTTP 401"),
                "Error (exit code 75): " + termination_message("github", "GitHub: HTTP 502"),
            ),
            {"ai": 2, "github": 1},
            id="typed-by-the-termination-message",
        ),
        pytest.param(argo_failures("OOMKilled (exit code 137)"), {}, id="untyped-not-counted"),
        pytest.param('"null"', {}, id="nothing-failed"),
        pytest.param("{{workflow.failures}}", {}, id="unresolved"),
    ],
)
def test_failed_steps_are_counted_by_the_type_they_reported(failures, errors):
    """A step's termination message, in Argo's node message, names the error type to count."""
    assert summarize_failures(failed_node_list(failures)).errors == errors


def test_a_termination_message_is_one_bounded_line():
    """Kubernetes keeps 4 KiB of it: one line, cut well below that."""
    message = termination_message("ai", "line one\nline two " + "x" * 5000)
    assert message.startswith("error-type=ai: line one line two ")
    assert "\n" not in message and len(message) <= 1024
