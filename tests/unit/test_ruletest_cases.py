"""Cases files: facts by their template variable names, every problem named by file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_operator.jobs.rules.cases import FACTS, load_cases
from ai_operator.jobs.rules.files import RuleFileError
from ai_operator.jobs.rules.model import Action
from ai_operator.jobs.rules.template import VARIABLES
from tests.conftest import ROOT, cli_env, run_cli


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "cases.yaml"
    path.write_text(text)
    with pytest.raises(RuleFileError) as raised:
        load_cases(path)
    return [f"{p.field}: {p.message}" for p in raised.value.problems]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        pytest.param(
            "{name: a, pr: {ciStauts: SUCCESS}, expect: merge}",
            "cases.0.pr.ciStauts: unknown fact (facts: number, title, body, ",
            id="unknown-fact-lists-the-known-ones",
        ),
        pytest.param(
            '{name: a, pr: {mergeable: "yes"}, expect: merge}',
            "cases.0.pr.mergeable: Input should be a valid boolean (found 'yes')",
            id="wrong-type",
        ),
        pytest.param(
            "{name: a, pr: {ciStatus: GREEN}, expect: merge}",
            "cases.0.pr.ciStatus: Input should be 'SUCCESS', 'FAILURE', 'PENDING', 'ERROR' or "
            "'UNKNOWN' (found 'GREEN')",
            id="unknown-ci-status",
        ),
        pytest.param(
            "{name: a, pr: {checks: [{name: ci, conclusion: GREEN}]}, expect: merge}",
            "cases.0.pr.checks.0.conclusion: Input should be ",
            id="nested-path",
        ),
        pytest.param(
            "{name: a, expect: deploy}",
            "cases.0.expect.0: Input should be 'merge', 'close', 'escalate', 'wait' or "
            "'update' (found 'deploy')",
            id="unknown-action",
        ),
        pytest.param(
            '{name: a, expect: merge, reasonPattern: "(["}',
            "cases.0.reasonPattern: not a valid regular expression",
            id="bad-regex",
        ),
        pytest.param(
            "{name: a, pr: {mergeable: true, mergeableState: CONFLICTING}, expect: escalate}",
            "cases.0.pr: mergeable true contradicts mergeableState CONFLICTING",
            id="contradicting-facts",
        ),
        pytest.param("{name: a}", "cases.0.expect: required field is missing", id="no-expect"),
    ],
)
def test_a_bad_case_is_named_by_its_field_path(tmp_path: Path, case: str, expected: str):
    """Each problem starts with the field's path, as rule files' problems do."""
    found = problems(tmp_path, f"cases:\n  - {case}\n")
    assert any(line.startswith(expected) for line in found), found


def test_problems_name_the_file(tmp_path: Path):
    path = tmp_path / "cases.yaml"
    path.write_text("cases: []\n")
    with pytest.raises(RuleFileError, match=rf"^{path}: cases: List should have at least 1 item"):
        load_cases(path)


def test_two_cases_with_one_name_are_refused(tmp_path: Path):
    found = problems(tmp_path, "cases:\n  - {name: a, expect: wait}\n  - {name: a, expect: wait}\n")
    assert found == [": two cases are named 'a'"]


def test_not_yaml_is_one_problem_with_its_line(tmp_path: Path):
    found = problems(tmp_path, "cases:\n  - {name: a\n")
    assert len(found) == 1 and "not valid YAML at line" in found[0]


def test_one_action_or_a_list(tmp_path: Path):
    path = tmp_path / "cases.yaml"
    path.write_text(
        "cases:\n  - {name: a, expect: wait}\n  - {name: b, expect: [wait, escalate]}\n"
    )
    first, second = load_cases(path).cases
    assert first.expected == (Action.WAIT,)
    assert second.expected == (Action.WAIT, Action.ESCALATE)


def test_the_facts_are_the_template_variables_of_a_pull_request():
    """A case sets facts under the names a rule's template reads (``pr.ciStatus`` is ciStatus)."""
    assert {f"pr.{fact}" for fact in FACTS} <= set(VARIABLES)


@pytest.mark.e2e
def test_the_command_exits_1_on_a_bad_file_and_on_a_failing_case(tmp_path: Path, github, llm):
    """One line for a bad file; a table and exit 1 for a failing case; exit 0 when all pass."""
    rule = ROOT / "examples/staging-automerge.yaml"
    recording = ROOT / "examples/cases/staging-automerge.recording.yaml"
    bad, failing = tmp_path / "bad.yaml", tmp_path / "failing.yaml"
    bad.write_text("cases:\n  - {name: a, pr: {ciStauts: SUCCESS}, expect: merge}\n")
    failing.write_text(
        "cases:\n  - name: green and mergeable is merged\n"
        "    pr: {title: Cache product pages for 60 seconds}\n    expect: wait\n"
    )
    env = {k: v for k, v in cli_env(github, llm).items() if not k.startswith("AI_")}

    broken = run_cli(["test", str(rule), "--cases", str(bad), "--replay", str(recording)], env)
    failed = run_cli(["test", str(rule), "--cases", str(failing), "--replay", str(recording)], env)
    passed = run_cli(
        ["test", str(rule), "--cases", str(ROOT / "examples/cases/staging-automerge.cases.yaml"),
         "--replay", str(recording), "--junit", str(tmp_path / "junit.xml")],
        env,
    )  # fmt: skip

    assert broken.code == 1 and len(broken.stderr.strip().splitlines()) == 1
    assert "cases.0.pr.ciStauts: unknown fact" in broken.stderr and "Traceback" not in broken.stderr
    assert failed.code == 1 and "FAIL green and mergeable is merged: expected wait, got merge" in (
        failed.stdout.replace("\n", " ")
    )
    assert passed.code == 0, passed.stdout + passed.stderr
    assert "12 cases: 12 passed, 0 failed" in passed.stdout
    assert (tmp_path / "junit.xml").read_text().startswith("<?xml")
