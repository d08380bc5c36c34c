"""`ai-operator test`: a rule's cases through the real prompt, client, SDK and guardrails.

The examples' cases pass offline by replaying their recordings (as CI runs them); a case that
contradicts its rule, a changed case without a recording, and an expectation the rule can never
meet each fail with a sentence that says so.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml

from ai_operator.jobs.config import Settings
from ai_operator.jobs.rules.model import Action
from ai_operator.jobs.ruletest.run import (
    RuleTestError,
    RuleTestOptions,
    RuleTestRun,
    run_rule_tests,
)
from ai_operator.jobs.ruletest.view import as_junit, as_table
from ai_operator.jobs.sandbox.standin import PRODUCED_BY
from tests.conftest import AI_TOKEN, ROOT
from tests.sandbox import FakeLLM

pytestmark = pytest.mark.usefixtures("restore_logging")

EXAMPLES = ROOT / "examples"
NAMES = ("staging-automerge", "production-approval", "dependabot-automerge")
OFFLINE = Settings.from_env({})


def example(name: str) -> tuple[Path, Path, Path]:
    cases = EXAMPLES / "cases"
    return EXAMPLES / f"{name}.yaml", cases / f"{name}.cases.yaml", cases / f"{name}.recording.yaml"


def cases_file(tmp_path: Path, *cases: dict[str, object], rule: str = "staging-automerge") -> Path:
    path = tmp_path / "cases.yaml"
    path.write_text(yaml.safe_dump({"rule": rule, "cases": list(cases)}))
    return path


def replay(rule: Path, cases: Path, recording: Path) -> RuleTestRun:
    return run_rule_tests(RuleTestOptions(rule, cases, replay=recording), OFFLINE)


def problem(run: RuleTestRun, name: str) -> str:
    [result] = [r for r in run.results if r.name == name]
    assert result.problem is not None, f"{name} passed"
    return result.problem


@pytest.mark.parametrize("name", NAMES)
def test_the_examples_cases_pass_by_replay(name: str):
    """Each example rule ships with cases and a recording; replayed offline, every case passes."""
    run = replay(*example(name))

    assert run.failed == [], as_table(run)
    assert len(run.results) >= 4


@pytest.mark.parametrize("name", NAMES)
def test_a_recording_no_model_produced_says_so(name: str):
    """The shipped recordings came from the stand-in, and the file says it."""
    document = yaml.safe_load(example(name)[2].read_text())
    assert document["producedBy"] == PRODUCED_BY == "stand-in (not a real model)"


def test_a_case_that_contradicts_its_rule_fails_readably(tmp_path: Path):
    """Same facts as a recorded case, another expectation: the failure says what came out and why."""
    rule, _, recording = example("staging-automerge")
    cases = cases_file(
        tmp_path,
        {"name": "green and mergeable is merged", "pr": {"title": "Cache product pages for 60 seconds"},
         "expect": "escalate"},
    )  # fmt: skip

    run = replay(rule, cases, recording)

    assert problem(run, "green and mergeable is merged") == (
        "expected escalate, got merge (the model proposed merge: "
        "'Checks passed and the pull request is mergeable.')"
    )
    assert "FAIL green and mergeable is merged: expected escalate, got merge" in as_table(run)


def test_a_guardrail_names_itself_in_the_failure(tmp_path: Path):
    """When a guardrail decided the final action, the failure names the guardrail."""
    rule, _, recording = example("staging-automerge")
    cases = cases_file(
        tmp_path,
        {"name": "a draft is never merged", "pr": {"title": "Add a dark mode toggle", "isDraft": True},
         "expect": "merge"},
    )  # fmt: skip

    message = problem(replay(rule, cases, recording), "a draft is never merged")

    assert message.startswith(
        "expected merge, got escalate (the model proposed merge; guardrail draft"
    )


def test_a_changed_case_has_no_recording(tmp_path: Path):
    """A case whose prompt was never recorded fails by name: record again."""
    rule, _, recording = example("staging-automerge")
    cases = cases_file(
        tmp_path, {"name": "new wording", "pr": {"title": "Brand new"}, "expect": "merge"}
    )

    message = problem(replay(rule, cases, recording), "new wording")

    assert message == (
        "no recorded answer for this prompt under model stand-in: "
        "the rule or the case changed: record again"
    )


def test_an_expectation_the_rule_never_allows_fails_without_asking(tmp_path: Path):
    """Expecting merge from a rule that cannot merge is a contradiction, said as such."""
    rule, _, recording = example("production-approval")
    cases = cases_file(
        tmp_path, {"name": "merge it", "expect": "merge"}, rule="production-approval"
    )

    message = problem(replay(rule, cases, recording), "merge it")

    assert message == (
        "expects merge, which the rule never allows (allowed: close, escalate, wait): "
        "the case contradicts the rule"
    )


def test_a_pull_request_the_rule_does_not_cover_fails(tmp_path: Path):
    """A case the selector would never pick is not asked about."""
    rule, _, recording = example("staging-automerge")
    cases = cases_file(
        tmp_path, {"name": "not staging", "pr": {"labels": ["auto-merge"]}, "expect": "wait"}
    )

    message = problem(replay(rule, cases, recording), "not staging")

    assert message == "the rule does not cover this pull request (missing labels staging)"


def test_record_then_replay(tmp_path: Path):
    """--record keeps each answer by model and prompt; --replay gives the same results offline."""
    rule, cases, _ = example("dependabot-automerge")
    recording = tmp_path / "recording.yaml"

    recorded = run_rule_tests(
        RuleTestOptions(rule, cases, record=recording, stand_in=True), OFFLINE
    )
    replayed = replay(rule, cases, recording)

    assert recorded.failed == [] and replayed.failed == []
    assert [(r.proposed, r.final) for r in replayed.results] == [
        (r.proposed, r.final) for r in recorded.results
    ]
    document = yaml.safe_load(recording.read_text())
    assert document["producedBy"] == PRODUCED_BY
    assert {entry["model"] for entry in document["answers"]} == {"stand-in"}
    assert all(entry["prompt"].startswith("sha256:") for entry in document["answers"])


def test_the_configured_model_is_asked_through_its_sdk(tmp_path: Path, llm: FakeLLM):
    """With AI_TOKEN set, each case is one request to the configured endpoint; recorded by name."""
    rule, cases, _ = example("production-approval")
    env = {"AI_TOKEN": AI_TOKEN, "AI_ENDPOINT": llm.openai_url, "AI_PROVIDER": "openai"}
    recording = tmp_path / "recording.yaml"

    run = run_rule_tests(RuleTestOptions(rule, cases, record=recording), Settings.from_env(env))

    assert len(llm.requests) == len(run.results)
    assert {request.provider for request in llm.requests} == {"openai"}
    text = recording.read_text()
    assert "openai gpt-4.1-mini" in text and AI_TOKEN not in text
    assert {entry["model"] for entry in yaml.safe_load(text)["answers"]} == {"gpt-4.1-mini"}


def test_without_a_model_it_says_how_to_run_offline():
    """No AI_TOKEN and neither --replay nor --stand-in: one sentence naming all three."""
    rule, cases, _ = example("staging-automerge")

    with pytest.raises(RuleTestError, match=r"AI_TOKEN is not set.*--replay FILE.*--stand-in"):
        run_rule_tests(RuleTestOptions(rule, cases), OFFLINE)


def test_record_and_replay_exclude_each_other(tmp_path: Path):
    rule, cases, recording = example("staging-automerge")

    with pytest.raises(RuleTestError, match="exclude each other"):
        run_rule_tests(
            RuleTestOptions(rule, cases, record=tmp_path / "r.yaml", replay=recording), OFFLINE
        )


def test_junit_lists_every_case_and_each_failure(tmp_path: Path):
    """--junit: one testcase per case; a failure carries the readable message."""
    rule, _, recording = example("staging-automerge")
    cases = cases_file(
        tmp_path,
        {"name": "checks still running wait", "pr": {"title": "Tune the connection pool",
         "ciStatus": "PENDING"}, "expect": "wait"},
        {"name": "wrong", "pr": {"title": "Tune the connection pool", "ciStatus": "PENDING"},
         "expect": ["merge", "close"]},
    )  # fmt: skip

    suite = ElementTree.fromstring(as_junit(replay(rule, cases, recording)))

    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    [failure] = suite.iter("failure")
    assert failure.get("message", "").startswith("expected merge or close, got wait")


def test_a_list_of_acceptable_actions_passes_on_any_of_them(tmp_path: Path):
    rule, _, recording = example("staging-automerge")
    cases = cases_file(
        tmp_path,
        {"name": "mergeability still being computed is never merged",
         "pr": {"title": "Bump the base image", "mergeableState": "UNKNOWN"},
         "expect": ["wait", "escalate"]},
    )  # fmt: skip

    [result] = replay(rule, cases, recording).results

    assert result.passed and result.final in (Action.WAIT, Action.ESCALATE)
