"""Loading rule files: every document checked, every problem named by file and field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from ai_operator.jobs.rules.files import (
    LoadedRule,
    RuleFileError,
    RuleProblem,
    RuleSource,
    load_rule_documents,
    load_rules,
    parse_rule_document,
)

SOURCE = RuleSource("rules.yaml")

RULE: dict[str, Any] = {
    "apiVersion": "aioperator.io/v1alpha1",
    "kind": "PRReconciliationRule",
    "metadata": {"name": "staging", "namespace": "ci"},
    "spec": {
        "selector": {"labels": {"include": ["auto-merge"]}},
        "instruction": "Merge #{{ pr.number }} when CI passed.",
    },
}


def make_doc(name: str = "staging", **spec: Any) -> dict[str, Any]:
    """A valid rule document; keyword arguments replace spec fields."""
    doc = copy.deepcopy(RULE)
    doc["metadata"]["name"] = name
    doc["spec"].update(spec)
    return doc


def write(tmp_path: Path, *docs: Any, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def problems_of(doc: object) -> list[tuple[str, str]]:
    outcome = parse_rule_document(doc, SOURCE)
    assert isinstance(outcome, list), "expected problems"
    return [(problem.field, problem.message) for problem in outcome]


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        pytest.param(RuleSource("a.yaml"), "a.yaml", id="first-document"),
        pytest.param(RuleSource("a.yaml", 1), "a.yaml[#2]", id="second-document"),
        pytest.param(RuleSource("a.yaml", 0, 1), "a.yaml (items[1])", id="list-item"),
        pytest.param(RuleSource("a.yaml", 2, 0), "a.yaml[#3] (items[0])", id="item-of-third"),
    ],
)
def test_rule_source_names_the_document(source: RuleSource, shown: str) -> None:
    """Documents are numbered from 1 for people; List items keep their 0-based index."""
    assert str(source) == shown


def test_problem_reads_as_file_field_message() -> None:
    """A problem prints as ``file: field: message`` (no field for the whole document)."""
    assert str(RuleProblem(SOURCE, "spec.schedule", "bad")) == "rules.yaml: spec.schedule: bad"
    assert str(RuleProblem(SOURCE, "", "not valid YAML")) == "rules.yaml: not valid YAML"


def test_valid_document_loads() -> None:
    """A valid document becomes a LoadedRule that remembers its source."""
    outcome = parse_rule_document(make_doc(), SOURCE)
    assert isinstance(outcome, LoadedRule)
    assert outcome.source == SOURCE
    assert outcome.rule.qualified_name == "ci/staging"


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        pytest.param(
            {"selector": {"labels": {"include": [["x"]]}}},
            "spec.selector.labels.include.0",
            "Input should be a valid string",
            id="list-item-path",
        ),
        pytest.param(
            {"selector": {"branch": "main"}}, "spec.selector.branch", "unknown field", id="unknown"
        ),
        pytest.param(
            {"titlePattern": "^x"}, "spec.titlePattern", "unknown field", id="field-misplaced"
        ),
        pytest.param(
            {"selector": {"titlePattern": "(x"}},
            "spec.selector.titlePattern",
            "not a valid regular expression for the linear-time engine RE2: missing ): (x "
            "(RE2 has no lookahead, lookbehind or backreferences)",
            id="bad-regex-without-value-error-prefix",
        ),
        pytest.param(
            {"repositories": ["web"]},
            "spec.repositories.0",
            "String should match pattern '^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$' (found 'web')",
            id="repository-needs-owner",
        ),
        pytest.param(
            {"allowedActions": ["merge", "rebase"]},
            "spec.allowedActions.1",
            "Input should be 'merge', 'close', 'escalate', 'wait' or 'update' (found 'rebase')",
            id="unknown-action",
        ),
        pytest.param(
            {"reconciliationInterval": 5},
            "spec.reconciliationInterval",
            "Input should be greater than or equal to 10 (found 5)",
            id="interval-too-short",
        ),
        pytest.param(
            {"schedule": "* * * * *", "reconciliationInterval": 60},
            "spec",
            "set either schedule or reconciliationInterval, not both",
            id="schedule-and-interval",
        ),
    ],
)
def test_model_errors_name_the_field(spec: dict[str, Any], field: str, message: str) -> None:
    """Each pydantic error becomes one problem at the field's dotted path."""
    assert problems_of(make_doc(**spec)) == [(field, message)]


def test_missing_instruction_is_reported() -> None:
    """A required field that is absent is named."""
    doc = make_doc()
    del doc["spec"]["instruction"]
    assert problems_of(doc) == [("spec.instruction", "required field is missing")]


def test_all_errors_of_a_document_are_reported_without_urls() -> None:
    """Every error is listed, and none carries pydantic's documentation links."""
    doc = make_doc(mergeMethod="FAST", maxPullRequests=0, dryRun="perhaps")
    problems = problems_of(doc)
    assert [field for field, _ in problems] == [
        "spec.mergeMethod",
        "spec.dryRun",
        "spec.maxPullRequests",
    ]
    assert not any("pydantic.dev" in message or "http" in message for _, message in problems)


@pytest.mark.parametrize(
    ("doc", "field", "fragment"),
    [
        pytest.param(
            {"apiVersion": "v1", "kind": "ConfigMap"},
            "kind",
            "found kind 'ConfigMap', apiVersion 'v1'",
            id="other-kind",
        ),
        pytest.param(
            {**RULE, "apiVersion": "aioperator.io/v1beta1"},
            "apiVersion",
            "apiVersion 'aioperator.io/v1beta1'",
            id="other-version",
        ),
        pytest.param(["a", "b"], "", "found a list", id="not-a-mapping"),
        pytest.param("text", "", "found a str", id="plain-text"),
    ],
)
def test_non_rule_documents_say_what_was_found(doc: object, field: str, fragment: str) -> None:
    """A document that is not a rule is one problem naming what it is."""
    [(found_field, message)] = problems_of(doc)
    assert found_field == field
    assert fragment in message


def test_multi_document_files_skip_empty_documents(tmp_path: Path) -> None:
    """Every ``---`` document is read; empty ones are skipped, indexes stay true."""
    path = tmp_path / "rules.yaml"
    path.write_text(
        yaml.safe_dump(make_doc("a")) + "---\n---\n" + yaml.safe_dump(make_doc("b")) + "---\n"
    )
    rules = load_rules([path])
    assert [(r.rule.metadata.name, r.source.index) for r in rules] == [("a", 0), ("b", 2)]


def test_list_items_are_rules(tmp_path: Path) -> None:
    """A ``kind: List`` holds rules as items; a bad item is named by its index."""
    items = [make_doc("a"), make_doc("b", dryRun="sometimes")]
    path = write(tmp_path, {"apiVersion": "v1", "kind": "List", "items": items})
    rules, problems = load_rule_documents([path])
    assert [r.rule.metadata.name for r in rules] == ["a"]
    assert [str(p) for p in problems] == [
        f"{path} (items[1]): spec.dryRun: Input should be a valid boolean, unable to interpret "
        "input (found 'sometimes')"
    ]


def test_list_without_items_is_a_problem(tmp_path: Path) -> None:
    """A List whose items are not a list is reported at ``items``."""
    path = write(tmp_path, {"apiVersion": "v1", "kind": "List", "items": "none"})
    _, [problem] = load_rule_documents([path])
    assert problem.field == "items"


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    """A YAML error names the file and the line; documents before it are still checked."""
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(make_doc("a")) + "---\nspec:\n  selector: [unclosed\n")
    rules, [problem] = load_rule_documents([path])
    assert [r.rule.metadata.name for r in rules] == ["a"]
    assert problem.source.path == str(path)
    assert problem.message.startswith("not valid YAML at line 1")


def test_unreadable_files_are_problems(tmp_path: Path) -> None:
    """A missing or non-UTF-8 file is a problem, and the other files are still read."""
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    good = write(tmp_path, make_doc(), name="good.yaml")
    rules, problems = load_rule_documents([tmp_path / "missing.yaml", binary, good])
    assert len(rules) == 1
    assert [p.message for p in problems] == [
        "cannot read the file: No such file or directory",
        "cannot read the file: not UTF-8 text (invalid start byte)",
    ]


def test_load_rules_raises_with_every_problem(tmp_path: Path) -> None:
    """load_rules reports all problems of all files at once, one per line."""
    first = write(tmp_path, make_doc(suspend="no way"), name="one.yaml")
    second = write(tmp_path, {"apiVersion": "v1", "kind": "Secret"}, name="two.yaml")
    with pytest.raises(RuleFileError) as caught:
        load_rules([first, second])
    assert [p.source.path for p in caught.value.problems] == [str(first), str(second)]
    assert str(caught.value).splitlines() == [str(p) for p in caught.value.problems]
