"""What ``ai-operator validate`` reports: the model's checks plus the semantic ones beyond it.

Semantic checks on a loaded rule (:func:`check_rule`):

- ``instruction`` and ``argocdAppNamePattern`` compile as Jinja templates in the sandbox the
  prompt is rendered in, use only known variables and only attributes their values have
  (``repository.owner`` does not exist: ``repository`` is text), and reach for no internals the
  sandbox refuses (``__class__``, ``__globals__``, ... at any depth): each would fail every pass.
  Templates are compiled, never rendered.
- a ``reconciliationInterval`` that whole-minute schedules cannot honour exactly (warning);
- a fallback of ``escalate`` that ``allowedActions`` does not permit, so it becomes ``wait``
  (warning);
- Argo CD settings: ``argocdEnabled`` without ``argocdAppNamePattern`` names no application, so
  ``argocd.health`` stays "Unknown" (warning), and an application name pattern is ignored while
  ``argocdEnabled`` is false (warning).

:func:`validate_files` loads files with :mod:`jobs.rules.files` (its problems become errors), runs
the checks, and reports two rules with the same namespace and name as an error. Every
:class:`Finding` names its file and field. Pure apart from reading the files given.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import (
    UNSAFE_ASYNC_GENERATOR_ATTRIBUTES,
    UNSAFE_COROUTINE_ATTRIBUTES,
    UNSAFE_GENERATOR_ATTRIBUTES,
)

from ai_operator.jobs.rules.files import (
    STDIN,
    STDIN_NAME,
    LoadedRule,
    RuleFileError,
    RuleProblem,
    RuleSource,
    expand_paths,
    parse_rule_document,
    read_documents,
)
from ai_operator.jobs.rules.model import (
    KIND,
    ONE_SCHEDULE,
    Action,
    FallbackAction,
    PRReconciliationRule,
    RuleSpec,
)
from ai_operator.jobs.rules.schedule import resolve
from ai_operator.jobs.rules.template import (
    ARGOCD_UNKNOWN,
    MAX_RANGE,
    VARIABLE_TYPES,
    VARIABLES,
    make_environment,
    size_problem,
)

Severity = Literal["error", "warning"]
_TOO_DEEP = "the document is nested too deeply to be read"

# "pr" -> {"number", "title", ...}; plain variables ("repository") map to an empty set.
_KNOWN: dict[str, frozenset[str]] = {
    root: frozenset(name.partition(".")[2] for name in VARIABLES if name.startswith(f"{root}."))
    for root in {name.partition(".")[0] for name in VARIABLES}
}
# Attributes the sandbox refuses on any object (besides every name starting with "_").
_INTERNALS = (
    UNSAFE_GENERATOR_ATTRIBUTES
    | UNSAFE_COROUTINE_ATTRIBUTES
    | UNSAFE_ASYNC_GENERATOR_ATTRIBUTES
    | {"mro", "func_globals", "func_code", "f_globals", "f_locals", "f_builtins", "tb_frame"}
)


@dataclass(frozen=True)
class Finding:
    """One thing ``validate`` reports about a rule file."""

    source: RuleSource
    field: str
    message: str
    severity: Severity

    def __str__(self) -> str:
        where = f"{self.source}: {self.field}" if self.field else str(self.source)
        return f"{where}: {self.severity}: {self.message}"


def has_errors(findings: Iterable[Finding]) -> bool:
    """Tell whether any finding is an error (warnings alone leave a rule usable)."""
    return any(finding.severity == "error" for finding in findings)


@dataclass(frozen=True)
class CheckedRule:
    """One document, checked: the rule when the model accepted it, and every finding on it."""

    source: RuleSource
    rule: PRReconciliationRule | None
    findings: list[Finding]

    @property
    def errors(self) -> list[Finding]:
        """The findings that refuse the rule."""
        return [finding for finding in self.findings if finding.severity == "error"]


def check_document(document: object, source: RuleSource) -> CheckedRule:
    """The one check of a rule document, whoever asks: validate, compile, run, demo, controller.

    Every error of the document at once: the model's (field by field), the checks between
    fields that the model makes only once the fields are valid, and the semantic checks of
    :func:`check_rule`. Never raises.
    """
    parsed = parse_rule_document(document, source)
    if isinstance(parsed, LoadedRule):
        return CheckedRule(source, parsed.rule, check_rule(parsed))
    findings = [_from_problem(problem) for problem in parsed]
    try:
        more = list(_beside_model_errors(document, source, {f.field for f in findings}))
    except RecursionError:
        more = [Finding(source, "spec", "the rule is nested too deeply to be checked", "error")]
    except Exception as exc:  # any failure to check is the rule's error, never a traceback
        more = [Finding(source, "spec", f"the rule could not be checked: {one_line(exc)}", "error")]
    known = {(f.field, f.message) for f in findings}
    return CheckedRule(
        source, None, findings + [f for f in more if (f.field, f.message) not in known]
    )


def check_files(paths: Sequence[str | Path]) -> tuple[list[LoadedRule], list[Finding]]:
    """The rules in ``paths`` that have no error, and every finding, in file and document order.

    A file without a rule is an error (an empty file runs nothing), and so are two rules with
    the same namespace and name.
    """
    findings: list[Finding] = []
    checked: list[CheckedRule] = []
    for path in expand_paths(paths):
        in_file = _check_file(path)
        if isinstance(in_file, Finding):
            findings.append(in_file)
            continue
        for item in in_file:
            if isinstance(item, CheckedRule):
                checked.append(item)
                findings += item.findings
            else:
                findings.append(item)
    every_rule = [LoadedRule(c.source, c.rule) for c in checked if c.rule is not None]
    findings += _duplicates(every_rule)
    refused = {f.source for f in findings if f.severity == "error"}
    return [rule for rule in every_rule if rule.source not in refused], findings


def validate_files(paths: Sequence[str | Path]) -> list[Finding]:
    """Load every rule in ``paths`` and check it, file by file; loading problems are errors."""
    return check_files(paths)[1]


def load_valid_rules(paths: Sequence[str | Path]) -> list[LoadedRule]:
    """Rules that ``validate`` accepts, for the commands that act on them (``run``, ``demo``).

    Raises :class:`~jobs.rules.files.RuleFileError` listing every error ``validate`` would report
    (a document the model refuses, a template naming an unknown variable, an empty file, ...);
    warnings pass.
    """
    rules, findings = check_files(paths)
    errors = [
        RuleProblem(finding.source, finding.field, finding.message)
        for finding in findings
        if finding.severity == "error"
    ]
    if errors:
        raise RuleFileError(errors)
    return rules


class NotOneRule(Exception):
    """A file given to a command that takes one rule holds none or several."""


def load_one_valid_rule(path: Path, command: str) -> PRReconciliationRule:
    """The one rule of ``path`` that ``validate`` accepts, for a one-rule ``command``.

    Raises :class:`~jobs.rules.files.RuleFileError` (as :func:`load_valid_rules`), or
    :class:`NotOneRule` when the file holds none or several.
    """
    rules = [loaded.rule for loaded in load_valid_rules([path])]
    if len(rules) != 1:
        raise NotOneRule(f"{path} holds {len(rules)} rules: {command} one rule at a time")
    return rules[0]


def _check_file(path: str) -> list[CheckedRule | Finding] | Finding:
    """Every document of one file checked, or the one error that stops reading it."""
    try:
        found: list[CheckedRule | Finding] = [
            _from_problem(item)
            if isinstance(item, RuleProblem)
            else check_document(item[1], item[0])
            for item in read_documents(path)
        ]
    except RecursionError:
        return Finding(RuleSource(path), "", _TOO_DEEP, "error")
    except Exception as exc:  # one line per file, never a traceback
        message = f"could not be read as rules: {one_line(exc)}"
        return Finding(RuleSource(path), "", message, "error")
    if not found:
        shown = STDIN_NAME if path == STDIN else path
        return Finding(RuleSource(shown), "", f"no {KIND} in the file (it is empty)", "error")
    return found


def _beside_model_errors(
    document: object, source: RuleSource, refused: set[str]
) -> Iterator[Finding]:
    """What the model leaves unchecked while a field is invalid: checks across fields, templates.

    Only fields the model did not refuse are checked, so that each mistake is said once.
    """
    spec = document.get("spec") if isinstance(document, dict) else None
    if not isinstance(spec, dict):
        return
    if spec.get("schedule") is not None and spec.get("reconciliationInterval") is not None:
        yield Finding(source, "spec", ONE_SCHEDULE, "error")
    for name in ("instruction", "argocdAppNamePattern"):
        field, template = f"spec.{name}", spec.get(name)
        if isinstance(template, str) and template.strip() and field not in refused:
            yield from _template_findings(source, field, template)


def check_rule(loaded: LoadedRule) -> list[Finding]:
    """Return the semantic findings on one rule that the model accepted.

    Never raises: whatever goes wrong while checking (a template too deep for Python's parser,
    an error of a library) is one error finding, with a one-line reason.
    """
    try:
        return _checked(loaded)
    except RecursionError:
        message = "the rule is nested too deeply to be checked"
    except Exception as exc:  # any failure to check is the rule's error, never a traceback
        message = f"the rule could not be checked: {one_line(exc)}"
    return [Finding(loaded.source, "spec", message, "error")]


def one_line(exc: BaseException, limit: int = 200) -> str:
    """``Type: message`` on one line, cut to ``limit`` characters."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _checked(loaded: LoadedRule) -> list[Finding]:
    spec = loaded.rule.spec
    found = list(_template_findings(loaded.source, "spec.instruction", spec.instruction))
    if spec.argocdAppNamePattern is not None:
        found += _template_findings(
            loaded.source, "spec.argocdAppNamePattern", spec.argocdAppNamePattern
        )
    found += _schedule_findings(loaded.source, spec)
    found += _fallback_findings(loaded.source, spec)
    found += _argocd_findings(loaded.source, spec)
    return found


def _from_problem(problem: RuleProblem) -> Finding:
    return Finding(problem.source, problem.field, problem.message, "error")


def _template_findings(source: RuleSource, field: str, template: str) -> Iterator[Finding]:
    problem = size_problem(template)
    if problem is not None:
        yield Finding(source, field, problem, "error")
        return
    env = make_environment()
    try:
        tree = env.parse(template)
        env.compile(tree)  # finds unknown filters and tests, which parsing alone does not
    except jinja2.TemplateSyntaxError as exc:
        message = f"line {exc.lineno} of the template: not valid Jinja: {exc.message}"
        yield Finding(source, field, message, "error")
        return
    first_use: dict[str, int] = {}
    for line, name in _unknown_variables(tree):
        first_use[name] = min(line, first_use.get(name, line))
    for name, line in sorted(first_use.items(), key=lambda item: (item[1], item[0])):
        message = (
            f"line {line} of the template: unknown variable {name!r}, rendering would fail"
            f"{_hint(name)}"
        )
        yield Finding(source, field, message, "error")
    for line, message in _unsafe_uses(tree):
        yield Finding(source, field, f"line {line} of the template: {message}", "error")
    for line, message in _huge_ranges(tree):
        yield Finding(source, field, f"line {line} of the template: {message}", "error")


def _huge_ranges(tree: nodes.Template) -> Iterator[tuple[int, str]]:
    """``range(...)`` of constants longer than the sandbox allows."""
    for call in tree.find_all(nodes.Call):
        if not (isinstance(call.node, nodes.Name) and call.node.name == "range"):
            continue
        values = [_constant(arg) for arg in call.args]
        if not values or any(value is None for value in values):
            continue
        try:
            size = len(range(*values))  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            size = MAX_RANGE + 1
        if size > MAX_RANGE:
            refused = f"range(...) of more than {MAX_RANGE} items is refused by the sandbox"
            yield call.lineno, f"{refused}, rendering would fail"


def _constant(node: nodes.Node) -> int | None:
    """The value of an integer made of constants (``10**9``, ``-5``), else None; never huge."""
    if isinstance(node, nodes.Const) and isinstance(node.value, int):
        return int(node.value)
    if isinstance(node, nodes.Neg):
        inner = _constant(node.node)
        return -inner if inner is not None else None
    if isinstance(node, nodes.Pow | nodes.Mul | nodes.Add | nodes.Sub):
        left, right = _constant(node.left), _constant(node.right)
        if left is None or right is None:
            return None
        if isinstance(node, nodes.Pow):
            if right < 0:
                return 0
            huge = abs(left) > 1 and right * abs(left).bit_length() > _HUGE.bit_length()
            return _HUGE if huge else _clamped(left**right)
        if isinstance(node, nodes.Mul):
            return _clamped(left * right)
        return _clamped(left + right if isinstance(node, nodes.Add) else left - right)
    return None


_HUGE = 10**12


def _clamped(value: int) -> int:
    return max(-_HUGE, min(_HUGE, value))


def _unknown_variables(tree: nodes.Template) -> Iterator[tuple[int, str]]:
    """``(line, name)`` for each variable the prompt does not provide."""
    free = meta.find_undeclared_variables(tree)
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name in free and node.name not in _KNOWN:
            yield node.lineno, node.name
    for use, attribute in _attribute_uses(tree):
        root = use.node
        if not (isinstance(root, nodes.Name) and root.name in free and _KNOWN.get(root.name)):
            continue
        if attribute not in _KNOWN[root.name] and not attribute.startswith("_"):
            yield use.lineno, f"{root.name}.{attribute}"


def _unsafe_uses(tree: nodes.Template) -> Iterator[tuple[int, str]]:
    """Internals the sandbox refuses, and attributes a variable's value does not have."""
    free = meta.find_undeclared_variables(tree)
    for use, attribute in _attribute_uses(tree):
        if attribute.startswith("_") or attribute in _INTERNALS:
            yield (
                use.lineno,
                (f"{attribute!r} is refused by the template sandbox, rendering would fail"),
            )
            continue
        variable = _variable_path(use.node, free)
        kind = VARIABLE_TYPES.get(variable) if variable else None
        if kind is not None and not hasattr(kind, attribute):
            yield (
                use.lineno,
                (
                    f"{variable} is {_kind_name(kind)} and has no attribute {attribute!r}, "
                    "rendering would fail"
                ),
            )


def _variable_path(node: nodes.Node, free: set[str]) -> str | None:
    """``pr.title`` for the expression ``pr.title`` (or ``pr['title']``), else None."""
    if isinstance(node, nodes.Name):
        return node.name if node.name in free else None
    if isinstance(node, nodes.Getattr):
        parent = _variable_path(node.node, free)
        return f"{parent}.{node.attr}" if parent else None
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
    ):
        parent = _variable_path(node.node, free)
        return f"{parent}.{node.arg.value}" if parent else None
    return None


def _kind_name(kind: type) -> str:
    return {str: "text", int: "a number", bool: "true or false", list: "a list"}.get(
        kind, kind.__name__
    )


def _attribute_uses(tree: nodes.Template) -> Iterator[tuple[nodes.Getattr | nodes.Getitem, str]]:
    """``x.attr`` and ``x['attr']`` in the template."""
    for getattr_node in tree.find_all(nodes.Getattr):
        yield getattr_node, getattr_node.attr
    for getitem in tree.find_all(nodes.Getitem):
        if isinstance(getitem.arg, nodes.Const) and isinstance(getitem.arg.value, str):
            yield getitem, getitem.arg.value
    for filtered in tree.find_all(nodes.Filter):  # x|attr('name') is x.name
        first = filtered.args[0] if filtered.args else None
        named = isinstance(first, nodes.Const) and isinstance(first.value, str)
        if filtered.name == "attr" and named and filtered.node is not None:
            attribute = str(first.value)  # type: ignore[union-attr]
            use = nodes.Getattr(filtered.node, attribute, "load", lineno=filtered.lineno)
            yield use, attribute


def _hint(name: str) -> str:
    """Suggest a known name at the same level (``pr.ciStatu`` -> ``pr.ciStatus``)."""
    root, dot, _ = name.partition(".")
    candidates = [v for v in VARIABLES if v.startswith(f"{root}.")] if dot else list(_KNOWN)
    close = difflib.get_close_matches(name, candidates, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _schedule_findings(source: RuleSource, spec: RuleSpec) -> list[Finding]:
    if spec.reconciliationInterval is None:
        return []
    note = resolve(None, spec.reconciliationInterval).note
    if note is None:
        return []
    return [Finding(source, "spec.reconciliationInterval", note, "warning")]


def _fallback_findings(source: RuleSource, spec: RuleSpec) -> list[Finding]:
    if spec.fallbackAction != FallbackAction.ESCALATE or spec.safe_fallback != Action.WAIT:
        return []
    which = "" if "fallbackAction" in spec.model_fields_set else " (the default)"
    message = (
        f"fallbackAction is escalate{which} but allowedActions does not include escalate: "
        "an invalid or missing AI answer will wait instead"
    )
    return [Finding(source, "spec.fallbackAction", message, "warning")]


def _argocd_findings(source: RuleSource, spec: RuleSpec) -> list[Finding]:
    if spec.argocdEnabled and not spec.argocdAppNamePattern:
        message = (
            "no argocdAppNamePattern names the application: argocd.health is reported as "
            f"{ARGOCD_UNKNOWN!r}"
        )
        return [Finding(source, "spec.argocdEnabled", message, "warning")]
    if spec.argocdAppNamePattern is not None and not spec.argocdEnabled:
        message = "ignored while argocdEnabled is false"
        return [Finding(source, "spec.argocdAppNamePattern", message, "warning")]
    return []


def _duplicates(rules: Iterable[LoadedRule]) -> Iterator[Finding]:
    first: dict[str, RuleSource] = {}
    for loaded in rules:
        name = loaded.rule.qualified_name
        if name in first:
            message = f"rule {name} is also defined in {first[name]}; one would replace the other"
            yield Finding(loaded.source, "metadata.name", message, "error")
        else:
            first[name] = loaded.source
