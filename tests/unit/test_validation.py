"""What ``validate`` reports: the examples, the broken examples, and each semantic check."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from ai_operator.jobs.rules.files import LoadedRule, RuleSource, parse_rule_document
from ai_operator.jobs.rules.validation import Finding, check_rule, has_errors, validate_files

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SEED = ROOT.parent / "shared" / "seed"
SOURCE = RuleSource("rule.yaml")

RULE: dict[str, Any] = {
    "apiVersion": "aioperator.io/v1alpha1",
    "kind": "PRReconciliationRule",
    "metadata": {"name": "staging", "namespace": "ci"},
    "spec": {
        "selector": {"labels": {"include": ["auto-merge"]}},
        "instruction": "Merge #{{ pr.number }} when CI is {{ pr.ciStatus }}.",
    },
}


def make_rule(**spec: Any) -> LoadedRule:
    """A valid rule whose spec fields are replaced by the keyword arguments."""
    doc = copy.deepcopy(RULE)
    doc["spec"].update(spec)
    loaded = parse_rule_document(doc, SOURCE)
    assert isinstance(loaded, LoadedRule), loaded
    return loaded


def reported(**spec: Any) -> list[tuple[str, str, str]]:
    return [(f.severity, f.field, f.message) for f in check_rule(make_rule(**spec))]


def test_examples_have_no_errors() -> None:
    """The shipped examples validate without a warning."""
    findings = validate_files(sorted(EXAMPLES.glob("*.yaml")))
    assert not has_errors(findings), [str(f) for f in findings]
    assert [(Path(f.source.path).name, f.field) for f in findings] == []


@pytest.mark.parametrize(
    ("name", "field", "fragment"),
    [
        pytest.param(
            "bad-regex.yaml",
            "spec.selector.titlePattern",
            "not a valid regular expression",
            id="regex",
        ),
        pytest.param(
            "bad-template.yaml",
            "spec.instruction",
            "line 2 of the template: not valid Jinja: Unexpected end of template",
            id="template",
        ),
        pytest.param("unknown-field.yaml", "spec.selector.branch", "unknown field", id="unknown"),
        pytest.param("bad-schedule.yaml", "spec.schedule", "has 4 fields", id="schedule"),
        pytest.param(
            "empty-selector.yaml",
            "spec.selector",
            "selects every open pull request",
            id="empty-selector",
        ),
    ],
)
def test_each_broken_example_reports_its_one_mistake(name: str, field: str, fragment: str) -> None:
    """Each file in examples/invalid/ is one error at one exact field."""
    [finding] = validate_files([EXAMPLES / "invalid" / name])
    assert (finding.severity, finding.field) == ("error", field)
    assert fragment in finding.message


@pytest.mark.skipif(
    not SEED.is_dir(), reason="the earlier design's files (../shared/seed) are absent"
)
def test_seed_examples_have_no_errors() -> None:
    """The earlier design's rules still validate (their short intervals only warn)."""
    findings = validate_files(sorted((SEED / "examples").glob("*.yaml")))
    assert not has_errors(findings), [str(f) for f in findings]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        pytest.param(
            "PR {{ pr.number }\n",
            "line 1 of the template: not valid Jinja: unexpected '}'",
            id="unclosed-expression",
        ),
        pytest.param(
            "ok\n{{ pr.title | shout }}",
            "line 2 of the template: not valid Jinja: No filter named 'shout'.",
            id="unknown-filter",
        ),
        pytest.param(
            "CI: {{ pr.ciStatu }}",
            "line 1 of the template: unknown variable 'pr.ciStatu', rendering would fail "
            "(did you mean 'pr.ciStatus'?)",
            id="misspelt-attribute",
        ),
        pytest.param(
            "\n{{ pull.number }}",
            "line 2 of the template: unknown variable 'pull', rendering would fail",
            id="unknown-root",
        ),
        pytest.param(
            "{{ pr['titel'] }}",
            "line 1 of the template: unknown variable 'pr.titel', rendering would fail "
            "(did you mean 'pr.title'?)",
            id="subscript-checked-too",
        ),
        pytest.param(
            "{{ repository.owner }}",
            "line 1 of the template: repository is text and has no attribute 'owner', "
            "rendering would fail",
            id="attribute-a-variable-does-not-have",
        ),
        pytest.param(
            "{{ pr.labels.first }}",
            "line 1 of the template: pr.labels is a list and has no attribute 'first', "
            "rendering would fail",
            id="attribute-of-a-list",
        ),
        pytest.param(
            "{{ pr.title.upper().__globals__ }}",
            "line 1 of the template: '__globals__' is refused by the template sandbox, "
            "rendering would fail",
            id="sandbox-escape-deep-in-an-expression",
        ),
        pytest.param(
            "{{ pr|attr('__class__') }}",
            "line 1 of the template: '__class__' is refused by the template sandbox, "
            "rendering would fail",
            id="sandbox-escape-through-attr",
        ),
    ],
)
def test_instruction_template_errors(template: str, message: str) -> None:
    """The instruction compiles in the prompt's sandbox and uses only provided variables."""
    assert reported(instruction=template) == [("error", "spec.instruction", message)]


def test_a_sandbox_escape_is_refused_at_every_depth() -> None:
    """Each internal attribute of ``''.__class__.__mro__`` is an error, not only the first."""
    findings = reported(instruction="{{ ''.__class__.__mro__ }}")
    assert [message for _, _, message in findings] == [
        f"line 1 of the template: '{name}' is refused by the template sandbox, rendering would fail"
        for name in ("__mro__", "__class__")
    ]


@pytest.mark.parametrize(
    ("spec", "field", "fragment"),
    [
        pytest.param({"instruction": " \n\t"}, "spec.instruction", "blank", id="blank-instruction"),
        pytest.param(
            {"selector": {"titlePattern": "^(?!WIP)"}},
            "spec.selector.titlePattern",
            "RE2",
            id="lookahead-pattern",
        ),
        pytest.param(
            {"selector": {"titlePattern": "(a)\\1"}},
            "spec.selector.titlePattern",
            "RE2",
            id="backreference-pattern",
        ),
        pytest.param(
            {"selector": {"labels": {"include": ['say "hi"']}}},
            "spec.selector.labels.include.0",
            "double quote",
            id="label-the-search-cannot-express",
        ),
        pytest.param(
            {"selector": {"baseBranch": "a\nb"}},
            "spec.selector.baseBranch",
            "line break",
            id="branch-the-search-cannot-express",
        ),
        pytest.param(
            {"selector": {"author": "dependabot bot"}},
            "spec.selector.author",
            "not a GitHub login",
            id="author-not-a-login",
        ),
    ],
)
def test_values_that_would_fail_every_pass_are_errors(
    spec: dict[str, Any], field: str, fragment: str
) -> None:
    """What could only fail on every run is refused when the rule is read."""
    doc = copy.deepcopy(RULE)
    doc["spec"].update(spec)
    problems = parse_rule_document(doc, SOURCE)
    assert isinstance(problems, list)
    assert [(problem.field, fragment in problem.message) for problem in problems] == [(field, True)]


@pytest.mark.parametrize(
    "selector",
    [
        pytest.param({"author": "dependabot[bot]"}, id="bot-as-github-shows-it"),
        pytest.param({"author": "app/dependabot"}, id="bot-as-the-search-writes-it"),
        pytest.param({"titlePattern": "^(a+)+$"}, id="nested-quantifiers-run-in-linear-time"),
    ],
)
def test_documented_selector_forms_are_valid(selector: dict[str, Any]) -> None:
    """Both bot spellings and any RE2 pattern validate (RE2 never backtracks)."""
    assert reported(selector=selector) == []


def test_each_unknown_variable_is_reported_once_in_line_order() -> None:
    """Repeated uses of one unknown name give one finding, at its first line."""
    findings = reported(instruction="{{ pull }}\n{{ pr.titel }} {{ owner }}\n{{ pull }}")
    assert [message.split(",")[0] for _, _, message in findings] == [
        "line 1 of the template: unknown variable 'pull'",
        "line 2 of the template: unknown variable 'pr.titel'",
    ]


@pytest.mark.parametrize(
    "template",
    [
        pytest.param(
            "{% for label in pr.labels %}{{ loop.index }}={{ label }} {% endfor %}", id="loop"
        ),
        pytest.param("{% set n = pr.number %}#{{ n }} in {{ repositoryFullName }}", id="set"),
        pytest.param("{{ pr['title'] }} {{ argocd.health }} {{ environment }}", id="subscript"),
        pytest.param("{% if pr.isDraft %}draft{% endif %} {{ range(2) | list }}", id="globals"),
    ],
)
def test_valid_templates_report_nothing(template: str) -> None:
    """Loops, assignments, globals and the documented variables are fine."""
    assert reported(instruction=template) == []


def test_argocd_app_name_pattern_is_a_template_too() -> None:
    """argocdAppNamePattern is checked like the instruction."""
    findings = reported(argocdEnabled=True, argocdAppNamePattern="{{ repository }-staging")
    assert ("error", "spec.argocdAppNamePattern") in [(s, f) for s, f, _ in findings]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {"reconciliationInterval": 20},
            [
                "reconciliationInterval 20s is shorter than a minute; scheduled passes run "
                "every minute"
            ],
            id="seconds-run-every-minute",
        ),
        pytest.param(
            {"reconciliationInterval": 90},
            [
                "reconciliationInterval 90s is not a period cron can keep exactly; passes run "
                "every minute, the nearest shorter period it keeps"
            ],
            id="inexact-minutes",
        ),
        pytest.param({"reconciliationInterval": 300}, [], id="exact-minutes"),
        pytest.param({"schedule": "*/5 * * * *"}, [], id="cron-schedule"),
        pytest.param({}, [], id="default-interval-not-reported"),
    ],
)
def test_inexact_intervals_warn(spec: dict[str, Any], expected: list[str]) -> None:
    """An interval that whole-minute schedules cannot honour is a warning."""
    assert reported(**spec) == [
        ("warning", "spec.reconciliationInterval", message) for message in expected
    ]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {"allowedActions": ["merge", "wait"]},
            "fallbackAction is escalate (the default) but allowedActions does not include "
            "escalate: an invalid or missing AI answer will wait instead",
            id="default-fallback-not-allowed",
        ),
        pytest.param(
            {"allowedActions": ["merge"], "fallbackAction": "escalate"},
            "fallbackAction is escalate but allowedActions does not include escalate: an invalid "
            "or missing AI answer will wait instead",
            id="explicit-fallback-not-allowed",
        ),
        pytest.param({"allowedActions": ["merge"], "fallbackAction": "wait"}, None, id="wait"),
        pytest.param({"allowedActions": ["escalate"]}, None, id="escalate-allowed"),
    ],
)
def test_fallback_that_becomes_wait_warns(spec: dict[str, Any], expected: str | None) -> None:
    """An escalate fallback that the rule does not allow is a warning: it will wait."""
    assert reported(**spec) == (
        [] if expected is None else [("warning", "spec.fallbackAction", expected)]
    )


def test_merge_method_without_merge_is_fine() -> None:
    """A merge method on a rule that may not merge is accepted silently (earlier rules do it)."""
    assert reported(allowedActions=["wait", "escalate"], mergeMethod="REBASE") == []


@pytest.mark.parametrize(
    ("spec", "field", "fragment"),
    [
        pytest.param(
            {"argocdEnabled": True},
            "spec.argocdEnabled",
            "no argocdAppNamePattern names the application",
            id="enabled-without-pattern",
        ),
        pytest.param(
            {"argocdAppNamePattern": "{{ repository }}-staging"},
            "spec.argocdAppNamePattern",
            "ignored while argocdEnabled is false",
            id="pattern-without-enabled",
        ),
    ],
)
def test_argocd_settings_warn(spec: dict[str, Any], field: str, fragment: str) -> None:
    """Argo CD settings that cannot name an application are warned about, never refused."""
    [(severity, found_field, message)] = reported(**spec)
    assert (severity, found_field) == ("warning", field)
    assert fragment in message


def test_argocd_enabled_with_a_pattern_is_fine() -> None:
    """A rule that names its application per PR asks Argo CD: nothing to warn about."""
    assert reported(argocdEnabled=True, argocdAppNamePattern="{{ repository }}-staging") == []


def test_duplicate_rules_are_errors(tmp_path: Path) -> None:
    """Two files defining the same namespace/name: the second is reported at metadata.name."""
    paths = []
    for name in ("one.yaml", "two.yaml"):
        paths.append(tmp_path / name)
        paths[-1].write_text(yaml.safe_dump(RULE))
    [finding] = validate_files(paths)
    assert (finding.source.path, finding.field, finding.severity) == (
        str(paths[1]),
        "metadata.name",
        "error",
    )
    assert f"also defined in {paths[0]}" in finding.message


def test_loading_problems_are_errors_in_file_order(tmp_path: Path) -> None:
    """Problems and findings come file by file, in the order the files were given."""
    warned = tmp_path / "a.yaml"
    warned.write_text(yaml.safe_dump({**RULE, "spec": {**RULE["spec"], "argocdEnabled": True}}))
    broken = tmp_path / "b.yaml"
    broken.write_text("kind: [\n")
    findings = validate_files([warned, broken])
    assert [(Path(f.source.path).name, f.severity) for f in findings] == [
        ("a.yaml", "warning"),
        ("b.yaml", "error"),
    ]


def test_finding_reads_as_file_field_severity_message() -> None:
    """A finding prints like a compiler message."""
    finding = Finding(SOURCE, "spec.schedule", "bad cron", "error")
    assert str(finding) == "rule.yaml: spec.schedule: error: bad cron"
    assert str(Finding(SOURCE, "", "not valid YAML", "error")) == "rule.yaml: error: not valid YAML"


@pytest.mark.parametrize(
    ("selector", "valid"),
    [
        pytest.param({}, False, id="empty"),
        pytest.param({"labels": {"exclude": ["wip"]}}, False, id="only-excludes"),
        pytest.param({"matchAll": True}, True, id="explicit-match-all"),
        pytest.param({"labels": {"include": ["auto-merge"]}}, True, id="a-label"),
        pytest.param({"baseBranch": "main"}, True, id="a-base"),
        pytest.param({"author": "dependabot[bot]"}, True, id="an-author"),
        pytest.param({"titlePattern": "^Bump "}, True, id="a-title"),
    ],
)
def test_a_selector_that_covers_everything_needs_match_all(selector, valid) -> None:
    """`selector: {}` is rejected with its field path unless the rule opts in."""
    doc = copy.deepcopy(RULE)
    doc["spec"]["selector"] = selector
    problems = parse_rule_document(doc, SOURCE)
    if valid:
        assert not isinstance(problems, list)
    else:
        assert isinstance(problems, list)
        assert [problem.field for problem in problems] == ["spec.selector"]
