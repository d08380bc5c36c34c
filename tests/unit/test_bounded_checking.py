"""Checking a rule costs a bounded time and never fails with a traceback.

A rule's author controls its text: a timezone that names a directory of the time zone database,
a name too long for a file, a template nested a hundred deep, a megabyte of instruction, a
``range`` of a billion items. Each is refused with one line naming the field, quickly, by
``validate`` (the command and the function) and by rendering.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from ai_operator.jobs.rules.files import LoadedRule, RuleSource, parse_rule_document
from ai_operator.jobs.rules.template import (
    MAX_NESTING,
    TemplateError,
    render_template,
    size_problem,
)
from ai_operator.jobs.rules.validation import check_rule, validate_files
from tests.factories import RULE_DOCUMENT

ROOT = Path(__file__).resolve().parents[2]
SOURCE = RuleSource("rule.yaml")
NESTED_100 = "{% if true %}" * 100 + "x" + "{% endif %}" * 100
RULE: dict[str, Any] = RULE_DOCUMENT

# (id, spec changes, the field named, words of the one-line reason)
REFUSED = [
    ("timezone-directory", {"timezone": "America"}, "spec.timezone", "unknown timezone"),
    ("timezone-too-long", {"timezone": "A" * 5000}, "spec.timezone", "at most 64"),
    ("timezone-path", {"timezone": "../../etc/passwd"}, "spec.timezone", "unknown timezone"),
    ("nested-100", {"instruction": NESTED_100}, "spec.instruction", "nested more than"),
    ("instruction-1mb", {"instruction": "x" * 2**20}, "spec.instruction", "at most 16384"),
    (
        "range-billion",
        {"instruction": "{% for i in range(10**9) %}x{% endfor %}"},
        "spec.instruction",
        "range(...) of more than 1000 items is refused",
    ),
    (
        "labels-too-many",
        {"selector": {"labels": {"include": [f"l{i}" for i in range(21)]}}},
        "spec.selector.labels.include",
        "at most 20",
    ),
    (
        "repositories-too-many",
        {"repositories": [f"acme/r{i}" for i in range(101)]},
        "spec.repositories",
        "at most 100",
    ),
]


def document(**spec: Any) -> dict[str, Any]:
    doc = copy.deepcopy(RULE)
    doc["spec"].update(spec)
    return doc


def problems_of(doc: dict[str, Any]) -> list[tuple[str, str]]:
    loaded = parse_rule_document(doc, SOURCE)
    if not isinstance(loaded, LoadedRule):
        return [(p.field, p.message) for p in loaded]
    return [(f.field, f.message) for f in check_rule(loaded) if f.severity == "error"]


@pytest.mark.parametrize(
    ("changes", "field", "words"), [pytest.param(*r[1:], id=r[0]) for r in REFUSED]
)
def test_each_case_is_one_error_on_its_field_in_under_a_second(
    changes: dict[str, Any], field: str, words: str
) -> None:
    """One error naming the field, one line, found in well under a second."""
    started = time.perf_counter()
    problems = problems_of(document(**changes))
    elapsed = time.perf_counter() - started
    assert len(problems) == 1, problems
    (where, message) = problems[0]
    assert where == field
    assert words in message
    assert "\n" not in message and len(message) < 300
    assert elapsed < 1.0


def test_any_exception_while_checking_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A check that raises (a bug, a library's surprise) makes the rule invalid, no traceback."""
    import ai_operator.jobs.rules.validation as validation

    def broken(*_: object) -> list[object]:
        raise OSError(36, "File name too long")

    monkeypatch.setattr(validation, "_schedule_findings", broken)
    loaded = parse_rule_document(document(), SOURCE)
    assert isinstance(loaded, LoadedRule)
    (finding,) = check_rule(loaded)
    assert (finding.severity, finding.field) == ("error", "spec")
    assert (
        finding.message == "the rule could not be checked: OSError: [Errno 36] File name too long"
    )


@pytest.mark.parametrize(
    ("template", "words"),
    [
        pytest.param("{{ range(10**9)|list }}", "range of 1000000000 items", id="range"),
        pytest.param("{{ 'a' * 10**9 }}", "repetition of more than", id="repeat-text"),
        pytest.param("{{ 2 ** (10 ** 9) }}", "exponent", id="power"),
        pytest.param(NESTED_100, "nested more than", id="nested"),
    ],
)
def test_rendering_refuses_what_would_not_end(template: str, words: str) -> None:
    """The sandbox bounds ranges, repetition, powers and nesting at render time too."""
    with pytest.raises(TemplateError, match=words):
        render_template(template, {}, "instruction")


@pytest.mark.parametrize(
    "template",
    [
        "{% for label in pr.labels %}{% if label %}{{ label }}{% endif %}{% endfor %}",
        "{% set x = 1 %}" * 50 + "{{ x }}",
        "{{ range(pr.number)|list }} {{ range(5)|list }}",
        "{{ ((((1)))) }}",
    ],
)
def test_ordinary_templates_are_within_the_bounds(template: str) -> None:
    """Real templates stay far from the limits."""
    assert size_problem(template) is None


def test_nesting_is_counted_up_to_the_limit() -> None:
    """Exactly MAX_NESTING levels pass; one more is refused."""
    deep = "{% if true %}" * MAX_NESTING + "x" + "{% endif %}" * MAX_NESTING
    deeper = "{% if true %}" + deep + "{% endif %}"
    assert size_problem(deep) is None
    assert size_problem(deeper) is not None


@pytest.mark.parametrize(
    ("changes", "field", "words"), [pytest.param(*r[1:], id=r[0]) for r in REFUSED[:4]]
)
@pytest.mark.parametrize("command", ["validate", "compile"])
def test_validate_and_compile_print_one_line_and_exit_1(
    tmp_path: Path, command: str, changes: dict[str, Any], field: str, words: str
) -> None:
    """`ai-operator validate` and `compile` on the reported cases: one line, no traceback, 1."""
    path = tmp_path / "rule.yaml"
    path.write_text(yaml.safe_dump(document(**changes)))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ai-operator"), command, str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"error: {path}: {field}: "), result.stderr
    assert words in lines[0]
    assert lines[1:] == (["1 error(s) in 1 file(s)"] if command == "validate" else [])
    assert "Traceback" not in result.stderr


def test_validate_files_never_raises_for_a_document_nested_too_deep(tmp_path: Path) -> None:
    """A YAML document nested beyond the parser's recursion is one error line for the file."""
    path = tmp_path / "deep.yaml"
    path.write_text("[" * 5000 + "]" * 5000)
    (finding,) = validate_files([path])
    assert finding.severity == "error"
    assert "\n" not in finding.message
