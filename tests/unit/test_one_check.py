"""`validate`, `compile`, `run`, `demo --rule` and the controller accept and refuse the same rules.

All of them check a rule document with :func:`jobs.rules.validation.check_document` (files through
:func:`~jobs.rules.validation.check_files`), so a rule ``validate`` calls valid is one the others
run, and a rule they refuse is one ``validate`` refuses, with every error of the file at once.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ai_operator.jobs.demo.run import DemoError, demo_rules
from ai_operator.jobs.rules.cases import load_cases
from ai_operator.jobs.rules.files import RuleFileError, RuleSource
from ai_operator.jobs.rules.limits import BUILT_IN
from ai_operator.jobs.rules.validation import check_document, load_valid_rules, validate_files
from ai_operator.jobs.ruletest.run import RuleTestError, _rule_under_test
from ai_operator.pipelines.controller.checking import Compiled, Governing, evaluate_rule
from ai_operator.pipelines.controller.config import ControllerConfig
from ai_operator.pipelines.controller.objects import RuleObject
from ai_operator.pipelines.controller.status import Outcome
from tests.factories import RULE_DOCUMENT

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
RULE: dict[str, Any] = RULE_DOCUMENT


def rule(metadata: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    """The ordinary rule with ``spec`` fields (and ``metadata`` fields) replaced."""
    document = copy.deepcopy(RULE)
    document["metadata"].update(metadata or {})
    document["spec"].update(spec)
    return document


# (id, document, every error as (field, words of its message))
REFUSED: list[tuple[str, dict[str, Any], list[tuple[str, str]]]] = [
    (
        "label-included-and-excluded",
        rule(selector={"labels": {"include": ["x", "ok"], "exclude": ["x"]}}),
        [("spec.selector.labels", "'x' is both included and excluded")],
    ),
    (
        "namespace-not-a-dns-label",
        rule(metadata={"namespace": "Team_A"}),
        [("metadata.namespace", "namespace 'Team_A' is not a valid Kubernetes namespace")],
    ),
    (
        "instruction-1-mb",
        rule(instruction="x" * 2**20),
        [("spec.instruction", "at most 16384 characters")],
    ),
    (
        "range-of-a-billion",
        rule(instruction="{{ range(10**9)|list }}"),
        [("spec.instruction", "range(...) of more than 1000 items is refused")],
    ),
    (
        "schedule-and-interval-alone",
        rule(schedule="*/5 * * * *", reconciliationInterval=300),
        [("spec", "set either schedule or reconciliationInterval, not both")],
    ),
    (
        "schedule-and-interval-with-other-errors",
        rule(schedule="*/5 * * * *", reconciliationInterval=300, maxPullRequests=0, dryRun="x"),
        [
            ("spec.dryRun", "valid boolean"),
            ("spec.maxPullRequests", "greater than or equal to 1"),
            ("spec", "set either schedule or reconciliationInterval, not both"),
        ],
    ),
]
REFUSED.append(
    (
        "every-error-of-the-file-at-once",
        rule(
            metadata={"namespace": "Team_A"},
            selector={"labels": {"include": ["x"], "exclude": ["x"]}},
            instruction="{{ range(10**9)|list }} {{ pr.titel }}",
            schedule="*/5 * * * *",
            reconciliationInterval=300,
            maxPullRequests=0,
        ),
        [
            ("metadata.namespace", "not a valid Kubernetes namespace"),
            ("spec.selector.labels", "'x' is both included and excluded"),
            ("spec.maxPullRequests", "greater than or equal to 1"),
            ("spec", "set either schedule or reconciliationInterval, not both"),
            ("spec.instruction", "unknown variable 'pr.titel'"),
            ("spec.instruction", "range(...) of more than 1000 items is refused"),
        ],
    )
)
CASES = [pytest.param(document, errors, id=name) for name, document, errors in REFUSED]


def errors_of(findings: Any) -> list[tuple[str, str]]:
    return [(f.field, f.message) for f in findings if getattr(f, "severity", "error") == "error"]


def matches(found: list[tuple[str, str]], expected: list[tuple[str, str]]) -> bool:
    return len(found) == len(expected) and all(
        field == want_field and words in message
        for (field, message), (want_field, words) in zip(
            sorted(found), sorted(expected), strict=True
        )
    )


def controller(document: dict[str, Any]) -> Compiled | Outcome:
    """The controller's check of ``document`` as the API server would give it."""
    stored = copy.deepcopy(document)
    stored["metadata"] = {"namespace": "default", "uid": "1", **stored["metadata"]}
    return evaluate_rule(RuleObject.read(stored), ControllerConfig(), Governing(BUILT_IN))


@pytest.mark.parametrize(("document", "expected"), CASES)
def test_every_entry_point_refuses_the_case_with_every_error(
    tmp_path: Path, document: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    """validate's findings, the commands' RuleFileError, demo's and the controller's: one list."""
    path = tmp_path / "rule.yaml"
    path.write_text(yaml.safe_dump(document))

    by_validate = errors_of(validate_files([path]))
    assert matches(by_validate, expected), by_validate
    with pytest.raises(RuleFileError) as refused:  # compile and run
        load_valid_rules([path])
    assert errors_of(refused.value.problems) == by_validate
    with pytest.raises(DemoError) as by_demo:
        demo_rules([path])
    assert str(by_demo.value) == str(refused.value)
    outcome = controller(document)
    assert isinstance(outcome, Outcome) and outcome.reason == "ValidationFailed"
    for _, message in by_validate:
        assert message[:60] in outcome.message


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_entry_point_accepts_the_examples(example: Path) -> None:
    """What validate accepts, the commands, the demo and the controller accept."""
    assert errors_of(validate_files([example])) == []
    assert load_valid_rules([example])
    assert demo_rules([example])
    for document in yaml.safe_load_all(example.read_text()):
        checked = check_document(document, RuleSource(str(example)))
        assert checked.rule is not None and checked.errors == []
        assert isinstance(controller(document), Compiled)


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n---\n"])
def test_a_file_without_a_rule_is_an_error_of_validate(tmp_path: Path, text: str) -> None:
    """An empty file runs nothing: validate refuses it as compile and run do."""
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    (finding,) = validate_files([path])
    assert (finding.severity, finding.field) == ("error", "")
    assert finding.message == "no PRReconciliationRule in the file (it is empty)"
    with pytest.raises(RuleFileError):
        load_valid_rules([path])


def test_a_rule_file_beside_an_empty_one_is_still_refused(tmp_path: Path) -> None:
    """Each file given must hold a rule; a good one beside does not excuse the empty one."""
    (tmp_path / "good.yaml").write_text(yaml.safe_dump(RULE))
    (tmp_path / "empty.yaml").write_text("")
    findings = validate_files([tmp_path])
    assert [(str(f.source), f.severity) for f in findings] == [
        (str(tmp_path / "empty.yaml"), "error")
    ]


def test_the_label_in_both_lists_is_named_even_beside_other_errors() -> None:
    """include/exclude overlap is reported with the spec's other errors, not after them."""
    document = rule(selector={"labels": {"include": ["x"], "exclude": ["x"]}}, maxPullRequests=0)
    checked = check_document(document, RuleSource("rule.yaml"))
    assert sorted(f.field for f in checked.errors) == [
        "spec.maxPullRequests",
        "spec.selector.labels",
    ]


@pytest.mark.parametrize(
    "command",
    [["validate"], ["compile"], ["run", "--dry-run"], ["demo", "--rule"]],
    ids=["validate", "compile", "run", "demo"],
)
def test_each_command_refuses_an_empty_file_with_exit_1(tmp_path: Path, command: list[str]) -> None:
    """The reported case as a user meets it: no command calls an empty file valid."""
    path = tmp_path / "empty.yaml"
    path.write_text("")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ai-operator"), *command, str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{path}: no PRReconciliationRule in the file (it is empty)" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("document", "expected"), CASES[:2])
def test_rule_tests_refuse_what_validate_refuses(
    tmp_path: Path, document: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    """`ai-operator test` reads its rule through the same check (an empty file too)."""
    cases = load_cases(ROOT / "examples" / "cases" / "staging-automerge.cases.yaml")
    path = tmp_path / "rule.yaml"
    for text in [yaml.safe_dump(document), ""]:
        path.write_text(text)
        with pytest.raises(RuleTestError) as refused:
            _rule_under_test(path, cases)
        with pytest.raises(RuleFileError) as by_validate:
            load_valid_rules([path])
        assert str(refused.value) == str(by_validate.value)
