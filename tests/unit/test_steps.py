"""Pipeline step inputs and outputs: what Argo carries between pods survives the trip."""

from __future__ import annotations

import base64
import json

import pytest

from jobs.clients.ai.usage import ModelUsage
from jobs.policy.decision import decide
from jobs.policy.verdict import Verdict
from jobs.reconcile.steps import (
    Decided,
    decision_output,
    dump_for_argo,
    failure_errors,
    noop_ref,
    parse_counts,
    parse_decided,
    parse_decision_output,
    parse_decisions,
    parse_ref,
    ref_target,
    termination_message,
)
from jobs.rules.encoding import StepInputError, encode_rule, rule_from_env
from jobs.rules.model import Action
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
        pytest.param("{not json", "invalid decision", id="not-json"),
        pytest.param('[{"action": "merge"}]', "invalid decision", id="incomplete-decision"),
        pytest.param('"merge"', "no decision", id="a-string"),
    ],
)
def test_malformed_decisions_are_refused(text, message):
    """A malformed aggregate is an error naming --decisions, never a guessed action."""
    with pytest.raises(StepInputError, match=message):
        parse_decisions(text)


def test_a_reference_needs_the_pr_it_refers_to():
    """--pr names its PR as ``owner/name#N`` (or, earlier, by repository and number)."""
    assert ref_target(parse_ref('{"display": "acme/web#3", "key": "d-1", "shard": "1"}')) == (
        "acme/web",
        3,
    )
    assert ref_target(parse_ref('{"repository": "acme/web", "number": 3}')) == ("acme/web", 3)
    for broken in ('{"repository": "acme/web"}', '{"display": "web#3"}', '{"display": "a/b#x"}'):
        with pytest.raises(StepInputError, match="owner/name#number"):
            parse_ref(broken)


def test_report_tolerates_an_unresolved_argo_tag():
    """The exit handler may receive Argo's literal tag when act never ran: that is no counts."""
    assert parse_counts("{{workflow.outputs.parameters.summary}}") == {}


def test_a_decide_output_is_readable_and_exact():
    """The line starts with what people need; the encoded rest restores the whole decision."""
    decision = decide(
        RULE,
        make_pr(title="Use {{workflow.name}}"),
        Verdict(action=Action.MERGE, reason="green {{x}}"),
        "fp",
    )
    line = decision_output(decision)
    assert line.startswith(f"merge acme/web#7 at {decision.head_oid[:7]}: green {{ {{x}}}} | ")
    assert "{{" not in line
    assert parse_decision_output(line) == decision


def test_aggregated_decide_lines_become_decisions_and_the_noop_is_skipped():
    """Argo's list of strings (decide outputs plus the no-op's "-") gives the decisions."""
    decision = decide(RULE, make_pr(), Verdict(action=Action.MERGE, reason="green"), "fp")
    aggregate = json.dumps([decision_output(decision), "-"])
    assert parse_decisions(aggregate) == [decision]


def test_the_noop_item_needs_no_pull_request():
    """The no-op item passes --pr validation and has a fixed memo key per rule."""
    ref = noop_ref(RULE)
    assert parse_ref(json.dumps(ref))["noop"] is True
    assert ref["key"] == f"noop-{RULE.spec_hash()}"


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
    from jobs.reconcile.steps import failed_nodes

    assert failed_nodes(text) == count


def test_a_decide_output_carries_what_the_decision_cost_and_which_run_asked():
    """Model calls, tokens, latency and the asking run travel with the decision to act."""
    decision = decide(RULE, make_pr(), Verdict(action=Action.MERGE, reason="green"), "fp")
    usage = ModelUsage(calls=1, input_tokens=900, output_tokens=40, cached_tokens=600)
    line = decision_output(decision, usage=usage, latency_seconds=1.25, run="wf-1700000000")
    aggregate = json.dumps([line, "-"])
    assert parse_decided(aggregate) == [Decided(decision, usage, 1.25, "wf-1700000000")]


def test_a_bare_decision_of_an_earlier_version_still_reads():
    """A memo saved before outputs carried their cost reads as a decision that cost nothing."""
    decision = decide(RULE, make_pr(), Verdict(action=Action.WAIT, reason="pending"), "fp")
    bare = base64.b64encode(decision.model_dump_json().encode()).decode()
    assert parse_decided(f"wait acme/web#7: pending | {bare}") == [Decided(decision)]


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
    assert failure_errors(failures) == errors


def test_a_termination_message_is_one_bounded_line():
    """Kubernetes keeps 4 KiB of it: one line, cut well below that."""
    message = termination_message("ai", "line one\nline two " + "x" * 5000)
    assert message.startswith("error-type=ai: line one line two ")
    assert "\n" not in message and len(message) <= 1024
