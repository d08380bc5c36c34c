"""``compile`` refuses names Kubernetes would refuse; ``--help`` reads like a CLI, not like Python."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer

from ai_operator.jobs.cli import readable_help, run_app
from ai_operator.jobs.rules.model import PRReconciliationRule
from ai_operator.pipelines.cli import app
from ai_operator.pipelines.compile import compile_rule
from ai_operator.pipelines.names import label_problems, manifest_name_problems, namespace_problem
from ai_operator.pipelines.options import CompileError, CompileOptions
from tests.conftest import run_cli
from tests.factories import make_rule

COMMANDS = [
    [],
    ["validate"],
    ["run"],
    ["demo"],
    ["test"],
    ["compile"],
    ["controller"],
    ["step"],
    ["step", "fetch"],
    ["step", "decide"],
    ["step", "act"],
    ["step", "tally"],
    ["step", "report"],
]
PYTHON_IN_HELP = re.compile(
    r"<(bool|str|int|float|path|list\[[^\]]*\]|int range|[a-z_]+\|[a-z_|]+)>"
    r"|\{[a-z_]+\}"  # typer's {files}
    r"|``|:(func|class|mod|data):`"
    r"|\[x>=|<=x<="
)


@pytest.mark.parametrize("command", [pytest.param(c, id=" ".join(c) or "top") for c in COMMANDS])
def test_help_reads_like_a_cli(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """No Python types, no typer braces, no reStructuredText: metavars such as FILE... and N."""
    assert run_app(app, [*command, "--help"]) == 0
    shown = capsys.readouterr().out
    assert "Usage: ai-operator" in shown
    assert PYTHON_IN_HELP.findall(shown) == []


def test_compile_help_names_its_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    """The usage line and the options say what to type."""
    run_app(app, ["compile", "--help"])
    shown = capsys.readouterr().out
    assert "Usage: ai-operator compile [OPTIONS] FILE..." in shown
    assert re.search(r"--parallelism\s+N\s+Decide pods at once \(1 to 100\)\.", shown)
    assert re.search(r"--target\s+argo\|cronjob", shown)


def test_every_option_says_what_it_is_for() -> None:
    """No option of any command is listed without a line of help."""
    command = readable_help(typer.main.get_command(app))
    silent = []
    pending = [("ai-operator", command)]
    while pending:
        path, current = pending.pop()
        silent += [f"{path} {p.opts[0]}" for p in current.params if not getattr(p, "help", None)]
        pending += [(f"{path} {n}", c) for n, c in getattr(current, "commands", {}).items()]
    assert silent == []


@pytest.mark.parametrize(
    ("namespace", "refused"),
    [
        pytest.param("team-a", False, id="dns-label"),
        pytest.param("a" * 63, False, id="63-chars"),
        pytest.param("Bad_NS", True, id="upper-and-underscore"),
        pytest.param("team.a", True, id="dot"),
        pytest.param("-team", True, id="leading-dash"),
        pytest.param("a" * 64, True, id="64-chars"),
        pytest.param("", True, id="empty"),
    ],
)
def test_namespaces_kubernetes_accepts(namespace: str, refused: bool) -> None:
    """A namespace is a DNS label: lowercase letters, digits, '-', at most 63."""
    assert (namespace_problem(namespace) is not None) == refused


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        pytest.param({"aioperator.io/rule": "staging"}, [], id="valid"),
        pytest.param({"app": ""}, [], id="empty-value"),
        pytest.param(
            {"app": "a" * 64},
            ["label app='" + "a" * 64 + "' is not a valid label value"],
            id="value-too-long",
        ),
        pytest.param({"app": "has space"}, ["label app='has space' is not"], id="space"),
        pytest.param({"Bad Key": "x"}, ["label key 'Bad Key' is not"], id="key"),
    ],
)
def test_label_values_kubernetes_accepts(labels: dict[str, str], expected: list[str]) -> None:
    """Label keys and values follow Kubernetes' syntax."""
    problems = label_problems(labels)
    assert len(problems) == len(expected)
    assert all(p.startswith(e) for p, e in zip(problems, expected, strict=True))


def rule_in(namespace: str) -> PRReconciliationRule:
    rule = make_rule()
    metadata = rule.metadata.model_copy(update={"namespace": namespace})
    return rule.model_copy(update={"metadata": metadata})


@pytest.mark.parametrize("target", ["argo", "cronjob"])
@pytest.mark.parametrize(
    ("rule", "options", "fragment"),
    [
        pytest.param(
            make_rule(), {"namespace": "Bad_NS"}, "namespace 'Bad_NS'", id="option-namespace"
        ),
        pytest.param(rule_in("Team_A"), {}, "namespace 'Team_A'", id="rule-namespace"),
        pytest.param(
            make_rule(), {"service_account": "Workflow SA"}, "serviceAccountName", id="sa"
        ),
        pytest.param(make_rule(), {"secret_name": "my_secret"}, "'my_secret'", id="secret"),
        pytest.param(make_rule(), {"config_map": "x" * 254}, "configMapRef.name", id="cm"),
    ],
)
def test_compile_refuses_names_kubernetes_would_refuse(
    target: Any, rule: PRReconciliationRule, options: dict[str, Any], fragment: str
) -> None:
    """Every name of the compiled object is checked before it is written: one line says which."""
    with pytest.raises(CompileError) as raised:
        compile_rule(rule, target, CompileOptions(**options))
    message = str(raised.value)
    assert fragment in message and "\n" not in message
    assert message.startswith(rule.qualified_name)


@pytest.mark.parametrize("target", ["argo", "cronjob"])
def test_compiled_examples_have_only_valid_names(target: Any) -> None:
    """What compile writes for an ordinary rule passes the same check."""
    manifest = compile_rule(make_rule(name="a." + "b" * 80), target, CompileOptions())
    assert manifest_name_problems(manifest.document) == []


def test_compile_namespace_option_is_a_one_line_error() -> None:
    """`compile --namespace Bad_NS` exits 1 with one line naming the option; nothing written."""
    result = run_cli(["compile", "examples/staging-automerge.yaml", "--namespace", "Bad_NS"], {})
    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: --namespace 'Bad_NS' is not a valid Kubernetes namespace: at most 63 lowercase "
        "letters, digits and '-', starting and ending with a letter or digit"
    ]
