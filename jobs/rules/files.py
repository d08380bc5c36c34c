"""Reading PRReconciliationRule documents from YAML files, with every problem named.

A file may hold several documents (``---``) and ``kind: List`` documents (their ``items``); empty
documents are skipped. ``-`` reads standard input; a directory reads its ``*.yaml`` and ``*.yml``
files (not its subdirectories), in name order. Each problem names where it is
(:class:`RuleSource`), the field's path (``spec.selector.labels.include.0``) and what is wrong;
loading goes on after a problem so that one run reports all of them.

Errors: :class:`RuleFileError` (raised by :func:`load_rules` only) carries the whole list of
:class:`RuleProblem`; it is for people (the ``validate`` command prints it), never retryable.

This module reads files and checks them against :mod:`jobs.rules.model`; it renders no template and
talks to no cluster (semantic checks live in :mod:`jobs.rules.validation`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ai_operator.jobs.rules.model import API_GROUP, API_VERSION, KIND, PRReconciliationRule

RULE_API_VERSION = f"{API_GROUP}/{API_VERSION}"
STDIN = "-"
STDIN_NAME = "<stdin>"
RULE_FILE_SUFFIXES = (".yaml", ".yml")

# Friendlier words for pydantic's most common messages (keyed by error type).
_MESSAGES = {
    "extra_forbidden": "unknown field",
    "missing": "required field is missing",
}
_VALUE_ERROR_PREFIX = "Value error, "
# Messages that already say what was found, or where the input is not worth repeating.
_NO_FOUND_VALUE = frozenset({"value_error", "assertion_error", "missing", "extra_forbidden"})
_FOUND_VALUE_MAX = 60


@dataclass(frozen=True)
class RuleSource:
    """Where a document is: a file, the document's 0-based index in it, and a ``List`` item."""

    path: str
    index: int = 0
    item: int | None = None

    def __str__(self) -> str:
        # Documents are numbered from 1 for people: "rules.yaml[#2]" is the second document.
        where = self.path if self.index == 0 else f"{self.path}[#{self.index + 1}]"
        return where if self.item is None else f"{where} (items[{self.item}])"


Document = tuple[RuleSource, object]
"""A parsed YAML document, not yet checked, and where it is."""


@dataclass(frozen=True)
class LoadedRule:
    """A rule that passed the model's checks, and where it came from."""

    source: RuleSource
    rule: PRReconciliationRule


@dataclass(frozen=True)
class RuleProblem:
    """One reason a document is not a valid rule; ``field`` is "" for the whole document."""

    source: RuleSource
    field: str
    message: str

    def __str__(self) -> str:
        if not self.field:
            return f"{self.source}: {self.message}"
        return f"{self.source}: {self.field}: {self.message}"


class RuleFileError(Exception):
    """Rule files hold invalid documents; ``problems`` lists every one of them."""

    def __init__(self, problems: Sequence[RuleProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


def load_rules(paths: Sequence[str | Path]) -> list[LoadedRule]:
    """Every rule in ``paths``; raises :class:`RuleFileError` listing all problems if any."""
    rules, problems = load_rule_documents(paths)
    if problems:
        raise RuleFileError(problems)
    return rules


def load_rule_documents(
    paths: Sequence[str | Path],
) -> tuple[list[LoadedRule], list[RuleProblem]]:
    """Return the valid rules in ``paths`` and the problems found, in file and document order."""
    rules: list[LoadedRule] = []
    problems: list[RuleProblem] = []
    for path in expand_paths(paths):
        for outcome in _load_file(path):
            if isinstance(outcome, LoadedRule):
                rules.append(outcome)
            else:
                problems.extend(outcome)
    return rules, problems


def expand_paths(paths: Sequence[str | Path]) -> list[str]:
    """Every file ``paths`` name: ``-`` as is, a directory as its rule files in name order.

    A directory without rule files is kept as is: reading it then reports the problem.
    """
    expanded: list[str] = []
    for path in paths:
        text = str(path)
        if text != STDIN and Path(text).is_dir():
            found = sorted(
                str(child)
                for child in Path(text).iterdir()
                if child.suffix in RULE_FILE_SUFFIXES and child.is_file()
            )
            expanded += found or [text]
        else:
            expanded.append(text)
    return expanded


def parse_rule_document(doc: object, source: RuleSource) -> LoadedRule | list[RuleProblem]:
    """Check one parsed document against the rule model."""
    if not isinstance(doc, dict):
        found = type(doc).__name__
        return [RuleProblem(source, "", f"expected a {KIND} mapping, found a {found}")]
    wrong_kind = _kind_problem(doc, source)
    if wrong_kind is not None:
        return [wrong_kind]
    try:
        return LoadedRule(source, PRReconciliationRule.model_validate(doc))
    except ValidationError as exc:
        return validation_problems(exc, source)


def validation_problems(exc: ValidationError, source: RuleSource) -> list[RuleProblem]:
    """Every error of a model's validation, as problems at ``source`` with their field paths."""
    return [_problem_of(error, source) for error in exc.errors(include_url=False)]


def yaml_problem(exc: yaml.YAMLError, source: RuleSource) -> RuleProblem:
    """A YAML syntax error as a problem of the whole file, with its line and column."""
    return RuleProblem(source, "", _yaml_message(exc))


def read_documents(path: str) -> Iterator[Document | RuleProblem]:
    """Each document of one file (``List`` items one by one) with its source, or a problem.

    Empty documents are skipped; ``-`` reads standard input. Parsing against the model is left
    to the caller.
    """
    if path == STDIN:
        path = STDIN_NAME
    source = RuleSource(path)
    if Path(path).is_dir():
        suffixes = " or ".join(f"*{suffix}" for suffix in RULE_FILE_SUFFIXES)
        yield RuleProblem(source, "", f"a directory without rule files ({suffixes})")
        return
    try:
        text = sys.stdin.read() if path == STDIN_NAME else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        yield RuleProblem(source, "", f"cannot read the file: {_reason(exc)}")
        return
    try:
        for index, doc in enumerate(yaml.safe_load_all(text)):
            yield from _documents(doc, RuleSource(path, index))
    except yaml.YAMLError as exc:
        # The message's line number places the error; documents before it were checked.
        yield RuleProblem(source, "", _yaml_message(exc))


def _load_file(path: str) -> Iterator[LoadedRule | list[RuleProblem]]:
    for found in read_documents(path):
        if isinstance(found, RuleProblem):
            yield [found]
        else:
            yield parse_rule_document(found[1], found[0])


def _documents(
    doc: object, source: RuleSource
) -> Iterator[tuple[RuleSource, object] | RuleProblem]:
    if doc is None:
        return
    if isinstance(doc, dict) and doc.get("kind") == "List":
        items = doc.get("items")
        if not isinstance(items, list):
            yield RuleProblem(source, "items", "a List needs a list of items")
            return
        for number, item in enumerate(items):
            yield RuleSource(source.path, source.index, number), item
        return
    yield source, doc


def _kind_problem(doc: dict[object, object], source: RuleSource) -> RuleProblem | None:
    kind, api_version = doc.get("kind"), doc.get("apiVersion")
    if kind == KIND and api_version == RULE_API_VERSION:
        return None
    field = "kind" if kind != KIND else "apiVersion"
    return RuleProblem(
        source,
        field,
        f"not a {KIND} ({RULE_API_VERSION}): found kind {kind!r}, apiVersion {api_version!r}",
    )


def _problem_of(error: ErrorDetails, source: RuleSource) -> RuleProblem:
    field = ".".join(str(part) for part in error["loc"])
    message = _MESSAGES.get(error["type"], error["msg"]).removeprefix(_VALUE_ERROR_PREFIX)
    found = error.get("input")
    if error["type"] not in _NO_FOUND_VALUE and isinstance(found, str | int | float | bool):
        message = f"{message} (found {_shorten(repr(found))})"
    return RuleProblem(source, field, message)


def _shorten(text: str) -> str:
    return text if len(text) <= _FOUND_VALUE_MAX else text[: _FOUND_VALUE_MAX - 3] + "..."


def _yaml_message(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return f"not valid YAML: {problem}"
    return f"not valid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"


def _reason(exc: OSError | UnicodeDecodeError) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return f"not UTF-8 text ({exc.reason})"
