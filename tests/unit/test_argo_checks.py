"""Specification of ai_operator.pipelines.argo_checks: Argo's own rules that the CRD schema cannot express."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from ai_operator.pipelines.argo_checks import check_cron_workflow, check_workflow_spec
from ai_operator.pipelines.compile import compile_rule
from ai_operator.pipelines.options import CompileOptions
from tests.factories import inlined, make_rule

Document = dict[str, Any]


def clean() -> Document:
    return inlined(compile_rule(make_rule(), "argo", CompileOptions()))


def template(document: Document, name: str) -> Document:
    templates = document["spec"]["workflowSpec"]["templates"]
    found: Document = next(t for t in templates if t["name"] == name)
    return found


def task(document: Document, name: str) -> Document:
    """A task of the entrypoint (fetch, settle, tally) or of a PR's branch (decide, act)."""
    tasks = [
        t for dag in ("reconcile", "pull-request") for t in template(document, dag)["dag"]["tasks"]
    ]
    found: Document = next(t for t in tasks if t["name"] == name)
    return found


def set_path(*path: str | int, value: Any) -> Callable[[Document], None]:
    def change(document: Document) -> None:
        target: Any = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def in_template(name: str, key: str, value: Any) -> Callable[[Document], None]:
    def change(document: Document) -> None:
        template(document, name)[key] = value

    return change


def in_task(name: str, key: str, value: Any) -> Callable[[Document], None]:
    def change(document: Document) -> None:
        task(document, name)[key] = value

    return change


def command(name: str, *argv: str) -> Callable[[Document], None]:
    def change(document: Document) -> None:
        template(document, name)["container"]["command"] = list(argv)

    return change


def act_argument(value: str) -> Callable[[Document], None]:
    return in_task("act", "arguments", {"parameters": [{"name": "decision", "value": value}]})


def memoize(**fields: Any) -> Callable[[Document], None]:
    """The branch memoized (as a hand edit could), with ``fields`` changed."""

    def change(document: Document) -> None:
        memo = template(document, "pull-request").setdefault(
            "memoize",
            {"key": "d-{{workflow.name}}", "maxAge": "24h",
             "cache": {"configMap": {"name": "ai-operator-memo-staging-automerge-0"}}},
        )  # fmt: skip
        for key, value in fields.items():
            if value is None:
                memo.pop(key)
            else:
                memo[key] = value

    return change


def duplicate_task(document: Document) -> None:
    tasks = template(document, "reconcile")["dag"]["tasks"]
    tasks.append(copy.deepcopy(tasks[0]))


def fetch_depends_on_tally(document: Document) -> None:
    task(document, "fetch")["depends"] = "tally"


def drop_pr_argument(document: Document) -> None:
    task(document, "settle")["arguments"]["parameters"].pop()


BROKEN = [
    pytest.param(set_path("metadata", "name", value="x" * 53), "at most 52", id="name-too-long"),
    pytest.param(set_path("metadata", "name", value="Staging_Rule"), "DNS-1123", id="name-not-dns"),
    pytest.param(set_path("spec", "schedules", value=[]), "at least one cron", id="no-schedule"),
    pytest.param(set_path("spec", "schedules", value=["0 * * * * *"]), "five are needed", id="six-field-cron"),
    pytest.param(set_path("spec", "schedules", value=["61 * * * *"]), "not valid", id="bad-minute"),
    pytest.param(set_path("spec", "schedule", value="* * * * *"), "removed in Argo 4", id="argo-3-schedule"),
    pytest.param(set_path("spec", "timezone", value="Mars/Olympus"), "unknown timezone", id="bad-timezone"),
    pytest.param(set_path("spec", "concurrencyPolicy", value="Never"), "concurrencyPolicy", id="bad-policy"),
    pytest.param(set_path("spec", "workflowSpec", "entrypoint", value="main"), "entrypoint: no template named 'main'", id="missing-entrypoint"),
    pytest.param(set_path("spec", "workflowSpec", "onExit", value="notify"), "onExit: no template named 'notify'", id="missing-exit-handler"),
    pytest.param(in_task("act", "template", "apply"), "no template named 'apply'", id="task-template-missing"),
    pytest.param(duplicate_task, "task 'fetch' is defined more than once", id="duplicate-task"),
    pytest.param(in_task("act", "depends", "decide && publish"), "unknown task 'publish'", id="depends-unknown-task"),
    pytest.param(in_task("act", "depends", "decide.Finished"), "'Finished' is not a task result", id="depends-bad-result"),
    pytest.param(in_task("act", "depends", "decide ==> fetch"), "cannot parse", id="depends-unparsable"),
    pytest.param(fetch_depends_on_tally, "dependency cycle", id="cycle"),
    pytest.param(act_argument("{{tasks.decide.outputs.parameters.verdict}}"), "declares no such output", id="undeclared-task-output"),
    pytest.param(act_argument("{{tasks.publish.outputs.parameters.decision}}"), "not one this task depends on", id="unknown-task-output"),
    pytest.param(in_task("fetch", "arguments", {"parameters": [{"name": "x", "value": "{{tasks.tally.outputs.parameters.summary}}"}]}), "not one this task depends on", id="reference-to-a-later-task"),
    pytest.param(act_argument("{{item}}"), "not fanned out", id="item-outside-fan-out"),
    pytest.param(drop_pr_argument, "input parameter 'pr' of template 'pull-request' is not supplied", id="unsupplied-input"),
    pytest.param(in_task("settle", "withParam", '["a", "b"]'), "must be one task output reference", id="withparam-literal"),
    pytest.param(in_template("pull-request", "outputs", {"parameters": [{"name": "outcome", "valueFrom": {"parameter": "{{tasks.act.outputs.parameters.verdict}}"}}]}), "no task 'act' of this DAG declares that output", id="branch-output-undeclared"),
    pytest.param(command("decide", "ai-operator", "--pr", "{{inputs.parameters.ref}}"), "no input parameter 'ref'", id="undeclared-input"),
    pytest.param(command("report", "ai-operator", "{{workflow.outputs.parameters.totals}}"), "no template output has globalName 'totals'", id="undeclared-global-output"),
    pytest.param(command("act", "ai-operator", "{{workflow.status}}"), "only set in the exit handler", id="status-outside-exit-handler"),
    pytest.param(command("decide", "ai-operator", "PR #{{pr.number}}"), "{{pr.number}}: unknown reference", id="rule-text-leak"),
    pytest.param(command("fetch", "ai-operator", "{{workflow.parameters.repo}}"), "no workflow parameter 'repo'", id="undeclared-workflow-parameter"),
    pytest.param(command("fetch", "ai-operator", "{{inputs.parameters.x"), "without a matching", id="unterminated-tag"),
    pytest.param(memoize(key="{{inputs.parameters.key}}_v2"), "cannot yield a key", id="memo-key-underscore"),
    pytest.param(memoize(key="-{{inputs.parameters.key}}"), "cannot yield a key", id="memo-key-leading-dash"),
    pytest.param(memoize(key=None), "memoize.key: missing", id="memo-key-missing"),
    pytest.param(memoize(maxAge=None), "maxAge: None is not a duration", id="memo-max-age-missing"),
    pytest.param(memoize(maxAge="1 day"), "is not a duration", id="memo-max-age-not-go-duration"),
    pytest.param(memoize(cache={"configMap": {"name": "Memo_Cache"}}), "not a ConfigMap name", id="memo-bad-config-map"),
    pytest.param(memoize(cache={"configMap": {"name": "memo-{{inputs.parameters.shard}}_"}}), "not a ConfigMap name", id="memo-templated-name-cannot-be-a-name"),
]  # fmt: skip


def test_the_compiled_cron_workflow_is_clean() -> None:
    """The document the compiler emits passes every check."""
    assert check_cron_workflow(clean()) == []


@pytest.mark.parametrize(("break_it", "problem"), BROKEN)
def test_a_broken_cron_workflow_is_reported(
    break_it: Callable[[Document], None], problem: str
) -> None:
    """Each rule Argo enforces beyond the CRD schema is checked, with a message that says why."""
    document = clean()
    break_it(document)
    problems = check_cron_workflow(document)
    assert any(problem in p for p in problems), problems


def test_problems_name_where_they_are() -> None:
    """A problem starts with the path of the offending field."""
    document = clean()
    command("decide", "ai-operator", "{{inputs.parameters.ref}}")(document)
    (problem,) = check_cron_workflow(document)
    assert problem.startswith("spec.workflowSpec.templates[3].container.command[1]: ")


def test_expression_tags_are_not_second_guessed() -> None:
    """``{{=...}}`` expressions are Argo's to evaluate; the checks leave them alone."""
    document = clean()
    command("fetch", "ai-operator", "{{=sprig.upper(workflow.name)}}")(document)
    assert check_cron_workflow(document) == []


def test_a_malformed_document_gives_problems_not_exceptions() -> None:
    """Garbage in, problems out: the checks never raise."""
    assert check_cron_workflow({}) != []
    assert check_cron_workflow({"spec": {"workflowSpec": {"templates": ["x", 3]}}}) != []
    assert check_workflow_spec({"entrypoint": "main", "templates": "nope"}) == [
        "spec.entrypoint: no template named 'main'"
    ]
