"""The Argo interpreter's own specification: how it wires a DAG, and what it refuses to guess.

Its pods here are tiny Python commands; their outputs go to an emptyDir mounted at ``/out``.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.argo_interpreter import (
    CONFIG_MAP_DATA_LIMIT,
    MAX_ARG_STRLEN,
    ForkedPods,
    InvalidWorkflow,
    MemoCache,
    UnsupportedFeature,
    WorkflowRun,
    WorkflowStuck,
    depends_holds,
    parse_go_duration,
    run_cron_workflow,
    run_workflow,
)

SECRETS = {("creds", "token"): "s3cret-value"}
# Writes each "PATH=TEXT" argument's TEXT to PATH.
WRITE = (
    "import pathlib, sys\n"
    "for spec in sys.argv[1:]:\n"
    "    path, _, text = spec.partition('=')\n"
    "    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)\n"
    "    pathlib.Path(path).write_text(text)\n"
)
# Exits with the next code listed in the file $CODES (one attempt per code).
EXIT_CODES = (
    "import os, pathlib, sys\n"
    "f = pathlib.Path(os.environ['CODES'])\n"
    "codes = f.read_text().split()\n"
    "f.write_text(' '.join(codes[1:]))\n"
    "sys.exit(int(codes[0]))\n"
)


def pod(
    name: str,
    *args: str,
    code: str = WRITE,
    inputs: dict[str, str | None] | None = None,
    outputs: dict[str, str | None] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A container template running ``python -c code args``; ``None`` means no default."""
    template: dict[str, Any] = {
        "name": name,
        "container": {
            "image": "python:3",
            "command": [sys.executable, "-c", code, *args],
            "volumeMounts": [{"name": "out", "mountPath": "/out"}],
        },
    }
    if inputs:
        template["inputs"] = {
            "parameters": [
                {"name": k} if v is None else {"name": k, "default": v} for k, v in inputs.items()
            ]
        }
    if outputs:
        template["outputs"] = {
            "parameters": [
                {
                    "name": k,
                    "valueFrom": {"path": f"/out/{k}"} | ({} if d is None else {"default": d}),
                }
                for k, d in outputs.items()
            ]
        }
    return template | fields


def task(
    name: str,
    template: str | None = None,
    *,
    depends: str | None = None,
    with_param: str | None = None,
    **arguments: str,
) -> dict[str, Any]:
    found: dict[str, Any] = {"name": name, "template": template or name}
    if depends:
        found["depends"] = depends
    if with_param:
        found["withParam"] = with_param
    if arguments:
        found["arguments"] = {"parameters": [{"name": k, "value": v} for k, v in arguments.items()]}
    return found


def dag(*tasks: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"name": "main", "dag": {"failFast": False, "tasks": list(tasks)}} | fields


def cron(*templates: dict[str, Any], on_exit: str | None = None, **spec: Any) -> dict[str, Any]:
    workflow_spec: dict[str, Any] = {
        "entrypoint": "main",
        "templates": list(templates),
        "volumes": [{"name": "out", "emptyDir": {}}],
        "activeDeadlineSeconds": 600,
    } | spec
    if on_exit:
        workflow_spec["onExit"] = on_exit
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {"name": "spec"},
        "spec": {"schedules": ["* * * * *"], "workflowSpec": workflow_spec},
    }


def run(document: dict[str, Any], **options: Any) -> WorkflowRun:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/")}
    return run_cron_workflow(document, env=env, secrets=SECRETS, **options)


def emit(name: str, text: str, **fields: Any) -> dict[str, Any]:
    """A pod whose output ``value`` is ``text`` (after substitution)."""
    return pod(name, f"/out/value={text}", outputs={"value": None}, **fields)


def consumer(name: str = "collect", default: str | None = None) -> dict[str, Any]:
    """A pod that echoes its input ``in`` as its output ``value``."""
    return pod(
        name, "/out/value={{inputs.parameters.in}}", inputs={"in": default}, outputs={"value": None}
    )


FAN_OUT = "{{tasks.produce.outputs.parameters.value}}"


def fan_out(
    items: str, each: dict[str, Any], collect: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """produce -> each (one pod per item) -> collect (reads the aggregated ``value``)."""
    return cron(
        dag(
            task("produce"),
            task("each", depends="produce", with_param=FAN_OUT, item="{{item}}"),
            task(
                "collect",
                depends="each.Succeeded || each.Failed || each.Skipped",
                **{"in": "{{tasks.each.outputs.parameters.value}}"},
            ),
        ),
        emit("produce", items),
        each,
        collect or consumer(),
        **extra,
    )


# --- fan-out and aggregation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "aggregated"),
    [
        pytest.param(
            '{"n": {{inputs.parameters.item}}}', '[{"n":1},{"n":2},{"n":3}]', id="objects"
        ),
        pytest.param("[{{inputs.parameters.item}}]", "[[1],[2],[3]]", id="lists"),
        pytest.param("{{inputs.parameters.item}}", '["1","2","3"]', id="numbers-as-strings"),
        pytest.param("v{{inputs.parameters.item}}", '["v1","v2","v3"]', id="strings"),
    ],
)
def test_a_fan_out_aggregates_its_values_in_item_order(written: str, aggregated: str) -> None:
    """One pod per item; a list of JSON values only when each is an object or list."""
    each = emit("each", written, inputs={"item": None})
    result = run(fan_out("[1, 2, 3]", each))

    assert result.phase == "Succeeded"
    assert [n.name for n in result.nodes_named("each(")] == ["each(0:1)", "each(1:2)", "each(2:3)"]
    assert result.node("collect").inputs == {"in": aggregated}
    assert result.node("each").kind == "TaskGroup" and result.pods_of("each") == 3


def test_object_items_name_nodes_by_sorted_pairs_and_keep_json_escapes() -> None:
    """`{{item}}` is the compact object, `{{item.k}}` a member's raw JSON (escapes kept)."""
    items = '[{"title": "Use \\u007b\\u007bpr.number}} <b>", "key": "k-1"}]'
    each = emit("each", "{{inputs.parameters.t}}", inputs={"item": None, "t": None})
    document = fan_out(items, each)
    document["spec"]["workflowSpec"]["templates"][0]["dag"]["tasks"][1]["arguments"][
        "parameters"
    ].append({"name": "t", "value": "{{item.title}}"})
    result = run(document)

    child = result.node("each(")
    assert child.name == "each(0:key:k-1,title:Use \\u007b\\u007bpr.number}} \\u003cb\\u003e)"
    assert child.inputs == {
        "item": '{"key":"k-1","title":"Use \\u007b\\u007bpr.number}} \\u003cb\\u003e"}',
        "t": "Use \\u007b\\u007bpr.number}} \\u003cb\\u003e",
    }


def test_failed_iterations_contribute_nothing_to_the_aggregate() -> None:
    """Only succeeded children are aggregated; the group fails; a `.Failed` dependent runs."""
    each = pod(
        "each",
        "/out/value={{inputs.parameters.item}}",
        code=WRITE + "sys.exit(1 if sys.argv[1].endswith('=2') else 0)\n",
        inputs={"item": None},
        outputs={"value": None},
    )
    result = run(fan_out('["1", "2", "3"]', each))

    assert result.node("each").phase == "Failed"
    assert [n.phase for n in result.nodes_named("each(")] == ["Succeeded", "Failed", "Succeeded"]
    assert result.node("collect").inputs == {"in": '["1","3"]'}
    assert result.phase == "Succeeded"  # the failure is handled: the leaf ran and succeeded


def test_when_no_iteration_succeeds_argo_waits_for_the_aggregate_until_the_deadline() -> None:
    """No succeeded child sets no aggregate: the reference never resolves (Argo v4 requeues)."""
    each = pod(
        "each", code="import sys; sys.exit(3)", inputs={"item": None}, outputs={"value": "[]"}
    )
    document = fan_out('["1"]', each, on_exit="report")
    document["spec"]["workflowSpec"]["templates"].append(emit("report", "{{workflow.status}}"))

    result = run(document)

    assert result.phase == "Failed" and "can never resolve" in result.message
    assert [n.name for n in result.nodes if n.name.startswith("collect")] == []
    assert result.node(f"{result.name}.onExit").outputs == {"value": "Failed"}
    del document["spec"]["workflowSpec"]["activeDeadlineSeconds"]
    with pytest.raises(WorkflowStuck, match=r"tasks\.each\.outputs\.parameters\.value"):
        run(document)


@pytest.mark.parametrize(
    ("producer_default", "consumer_default", "received"),
    [
        pytest.param("[]", None, "[]", id="producer-default"),
        pytest.param(None, "none", "none", id="consumer-default"),
        pytest.param("[]", "none", "[]", id="producer-default-first"),
        pytest.param(None, None, None, id="neither-fails-the-consumer"),
    ],
)
def test_an_empty_fan_out_is_skipped_and_falls_back_to_defaults(
    producer_default: str | None, consumer_default: str | None, received: str | None
) -> None:
    """`[]` skips the task; its output reference takes the producer's, else the input's default."""
    each = pod("each", inputs={"item": None}, outputs={"value": producer_default})
    result = run(fan_out("[]", each, consumer(default=consumer_default)))

    assert result.node("each").phase == "Skipped" and result.pods_of("each") == 0
    if received is None:
        assert result.node("collect").phase == "Error" and result.phase == "Error"
    else:
        assert result.node("collect").inputs == {"in": received} and result.phase == "Succeeded"


@pytest.mark.parametrize(
    ("items", "message"),
    [
        pytest.param('{"not": "a list"}', "could not be parsed as a JSON list", id="object"),
        pytest.param("[1, null]", "withParam[1] expected", id="null-item"),
    ],
)
def test_a_bad_withparam_errors_the_task(items: str, message: str) -> None:
    """Argo errors a task whose withParam is not a list of items; no pod starts."""
    result = run(fan_out(items, pod("each", inputs={"item": None}, outputs={"value": "[]"})))
    assert result.node("each").phase == "Error" and message in result.node("each").message
    assert result.pods_of("each") == 0


def test_an_unresolvable_item_tag_errors_the_whole_task() -> None:
    """Expansion is strict: `{{item.missing}}` errors the task before any pod."""
    document = fan_out('[{"a": 1}]', pod("each", inputs={"item": None}, outputs={"value": "[]"}))
    document["spec"]["workflowSpec"]["templates"][0]["dag"]["tasks"][1]["arguments"] = {
        "parameters": [{"name": "item", "value": "{{item.missing}}"}]
    }
    result = run(document)
    assert result.node("each").phase == "Error" and "item.missing" in result.node("each").message
    assert result.pods_of("each") == 0


# --- memoization --------------------------------------------------------------------------------


def memoized(max_age: str = "1h") -> dict[str, Any]:
    template = emit("work", "done-{{inputs.parameters.k}}", inputs={"k": None})
    template["memoize"] = {
        "key": "{{inputs.parameters.k}}",
        "maxAge": max_age,
        "cache": {"configMap": {"name": "memo"}},
    }
    return cron(dag(task("work", k="key-1")), template)


@pytest.mark.parametrize(
    ("seconds_later", "cached"),
    [
        pytest.param(60, True, id="young-entry-hits"),
        pytest.param(3599, True, id="just-before-max-age"),
        pytest.param(3601, False, id="older-than-max-age-misses"),
    ],
)
def test_a_memo_hit_starts_no_pod_until_max_age(seconds_later: int, cached: bool) -> None:
    """A hit younger than maxAge succeeds with the saved outputs and no pod."""
    memo = MemoCache()
    first = run(memoized(), memo=memo, now=1_000.0)
    assert first.pods_started == 1
    assert memo.entries == {"memo": {"key-1": (1_000.0, {"value": "done-key-1"})}}

    again = run(memoized(), memo=memo, now=1_000.0 + seconds_later)

    assert again.node("work").memoized is cached
    assert again.pods_started == (0 if cached else 1)
    assert again.node("work").outputs == {"value": "done-key-1"}


def test_another_key_misses_and_failures_are_not_saved() -> None:
    """Outputs are saved only when the node succeeded; another key is another entry."""
    memo = MemoCache()
    failing = memoized()
    failing["spec"]["workflowSpec"]["templates"][1]["container"]["command"][2] = (
        "raise SystemExit(1)"
    )
    assert run(failing, memo=memo).node("work").phase == "Failed"
    assert memo.entries == {}

    other = memoized()
    other["spec"]["workflowSpec"]["templates"][0]["dag"]["tasks"][0]["arguments"]["parameters"][0][
        "value"
    ] = "key-2"
    run(memoized(), memo=memo)
    assert run(other, memo=memo).pods_started == 1
    assert sorted(memo.entries["memo"]) == ["key-1", "key-2"]


def test_an_invalid_memo_key_errors_the_node() -> None:
    """A key outside `^[a-zA-Z0-9][-a-zA-Z0-9]*$` is Argo's error, not a cache entry."""
    document = memoized()
    document["spec"]["workflowSpec"]["templates"][0]["dag"]["tasks"][0]["arguments"]["parameters"][
        0
    ]["value"] = "acme/web#1"
    memo = MemoCache()
    result = run(document, memo=memo)
    assert (
        result.node("work").phase == "Error"
        and "invalid memoization key" in result.node("work").message
    )
    assert result.pods_started == 0 and memo.entries == {}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("24h", 86_400.0),
        ("15m", 900.0),
        ("1h30m", 5_400.0),
        ("1.5s", 1.5),
        ("300ms", 0.3),
        ("0", 0.0),
    ],
)
def test_memo_max_age_is_a_go_duration(text: str, seconds: float) -> None:
    """maxAge reads like Go's time.ParseDuration."""
    assert parse_go_duration(text) == pytest.approx(seconds)


# --- retries ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "phase", "attempts"),
    [
        pytest.param("75 75 0", "Succeeded", 3, id="transient-then-ok"),
        pytest.param("1 0", "Failed", 1, id="other-codes-are-not-retried"),
        pytest.param("75 75 75 75 75", "Failed", 4, id="limit-3-means-4-attempts"),
        pytest.param("75 2 0", "Failed", 2, id="stops-at-a-non-transient-code"),
    ],
)
def test_retries_only_on_exit_75_up_to_the_limit(
    tmp_path: Path, codes: str, phase: str, attempts: int
) -> None:
    """retryStrategy: OnFailure, `asInt(lastRetry.exitCode) == 75`, limit 3; backoff not slept."""
    (tmp_path / "codes").write_text(codes)
    template = pod("flaky", code=EXIT_CODES)
    template["container"]["env"] = [{"name": "CODES", "value": str(tmp_path / "codes")}]
    template["retryStrategy"] = {
        "limit": 3,
        "retryPolicy": "OnFailure",
        "expression": "asInt(lastRetry.exitCode) == 75",
        "backoff": {"duration": "15s", "factor": 2, "maxDuration": "2m"},
    }
    node = run(cron(dag(task("flaky")), template)).node("flaky")
    assert (node.phase, node.attempts) == (phase, attempts)


# --- dependencies and the workflow's phase -------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "phases", "holds"),
    [
        pytest.param("a", {"a": "Succeeded"}, True, id="bare-name-succeeded"),
        pytest.param("a", {"a": "Skipped"}, True, id="bare-name-skipped"),
        pytest.param("a", {"a": "Failed"}, False, id="bare-name-failed"),
        pytest.param("a.Failed || a.Errored", {"a": "Error"}, True, id="errored"),
        pytest.param(
            "a.Succeeded && b.Skipped", {"a": "Succeeded", "b": "Omitted"}, False, id="and"
        ),
        pytest.param(
            "!(a.Succeeded) && (b || c.Failed)",
            {"a": "Failed", "b": "Failed", "c": "Failed"},
            True,
            id="not-parens",
        ),
        pytest.param("my-task.Omitted", {"my-task": "Omitted"}, True, id="dashed-name"),
    ],
)
def test_depends_reads_like_argo(expression: str, phases: dict[str, str], holds: bool) -> None:
    """`X` means X.Succeeded || X.Skipped || X.Daemoned; &&, ||, ! and parentheses as usual."""
    assert depends_holds(expression, phases) is holds


@pytest.mark.parametrize(
    ("depends", "a_exit", "phase"),
    [
        pytest.param("a.Failed", 1, "Succeeded", id="handled-failure"),
        pytest.param("a.Failed", 0, "Succeeded", id="omitted-after-success"),
        pytest.param("a", 1, "Failed", id="omitted-after-failure"),
        pytest.param("a", 0, "Succeeded", id="all-succeeded"),
    ],
)
def test_the_dag_fails_when_a_leafs_branch_failed(depends: str, a_exit: int, phase: str) -> None:
    """Argo's rule: leaves decide; an omitted leaf inherits its branch's phase, failures first."""
    document = cron(
        dag(task("a"), task("b", depends=depends)),
        pod("a", code=f"raise SystemExit({a_exit})"),
        pod("b"),
    )
    assert run(document).phase == phase


def test_dependencies_lists_run_in_order() -> None:
    """`dependencies: [a]` waits for a and reads its outputs."""
    document = cron(
        dag(
            task("a"),
            {
                "name": "b",
                "template": "collect",
                "dependencies": ["a"],
                "arguments": {
                    "parameters": [{"name": "in", "value": "{{tasks.a.outputs.parameters.value}}"}]
                },
            },
        ),
        emit("a", "from-a"),
        consumer(),
    )
    result = run(document)
    assert [n.name for n in result.nodes] == ["a", "b"] and result.node("b").outputs == {
        "value": "from-a"
    }


# --- exit handler, globals, pods -------------------------------------------------------------------


@pytest.mark.parametrize(("a_exit", "status"), [(0, "Succeeded"), (1, "Failed")])
def test_the_exit_handler_always_runs_and_sees_the_status(a_exit: int, status: str) -> None:
    """`{{workflow.status}}` is the DAG's outcome; an unset global output stays literal text."""
    report = emit("report", "{{workflow.status}} {{workflow.outputs.parameters.g}}")
    a = pod("a", "/out/value=x", code=WRITE + f"raise SystemExit({a_exit})\n")
    a["outputs"] = {
        "parameters": [{"name": "value", "globalName": "g", "valueFrom": {"path": "/out/value"}}]
    }
    result = run(cron(dag(task("a")), a, report, on_exit="report"))

    shown = "x" if a_exit == 0 else "{{workflow.outputs.parameters.g}}"
    assert result.node(f"{result.name}.onExit").outputs == {"value": f"{status} {shown}"}
    assert result.phase == status


def test_a_failing_exit_handler_fails_a_successful_run() -> None:
    """Argo marks a run whose DAG succeeded as Failed when its exit handler fails."""
    result = run(
        cron(dag(task("a")), pod("a"), pod("report", code="raise SystemExit(1)"), on_exit="report")
    )
    assert result.phase == "Failed" and "exit handler" in result.message


def test_secrets_come_only_from_secret_key_refs() -> None:
    """A secretKeyRef gives the value; a missing key is CreateContainerConfigError, no process."""
    reader = pod(
        "a",
        code=WRITE
        + "import os; pathlib.Path(sys.argv[1].split('=')[0]).write_text(os.environ['TOKEN'])",
        outputs={"value": None},
    )
    reader["container"]["command"].append("/out/value=")
    reader["container"]["env"] = [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}
    ]
    assert run(cron(dag(task("a")), reader)).node("a").outputs == {"value": "s3cret-value"}

    reader["container"]["env"][0]["valueFrom"]["secretKeyRef"]["key"] = "other"
    node = run(cron(dag(task("a")), reader)).node("a")
    assert node.phase == "Error" and "CreateContainerConfigError" in node.message
    assert "s3cret" not in node.message


def test_each_pod_gets_its_own_empty_dir_and_outputs_read_from_it() -> None:
    """Paths under the mount are rewritten per pod; a missing output takes its default or errors."""
    document = cron(
        dag(task("a"), task("b", depends="a"), task("c", depends="a")),
        emit("a", "first"),
        pod("b", outputs={"value": "fallback"}),
        pod("c", outputs={"value": None}),
    )
    result = run(document)
    assert result.node("a").outputs == {"value": "first"}
    assert result.node("b").outputs == {"value": "fallback"}
    assert (
        result.node("c").phase == "Error"
        and "/out/value does not exist" in result.node("c").message
    )


def test_the_first_word_ai_operator_becomes_the_command_prefix() -> None:
    """`ai-operator step ...` runs as `command_prefix step ...`."""
    template = pod("a", outputs={"value": None})
    template["container"]["command"] = ["ai-operator", "/out/value=hello"]
    result = run(cron(dag(task("a")), template), command_prefix=(sys.executable, "-c", WRITE))
    assert result.node("a").outputs == {"value": "hello"}


# --- refusals -----------------------------------------------------------------------------------


def base() -> dict[str, Any]:
    return cron(dag(task("a")), pod("a"), pod("report"), on_exit="report")


def templates(document: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = document["spec"]["workflowSpec"]["templates"]
    return found


def first_task(document: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = templates(document)[0]["dag"]["tasks"][0]
    return found


Mutation = Callable[[dict[str, Any]], object]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        pytest.param(
            lambda d: templates(d).append({"name": "s", "steps": []}), "steps", id="steps"
        ),
        pytest.param(
            lambda d: templates(d).append({"name": "s", "script": {}}), "script", id="script"
        ),
        pytest.param(
            lambda d: templates(d).append({"name": "s", "resource": {}}), "resource", id="resource"
        ),
        pytest.param(
            lambda d: templates(d).append({"name": "s", "suspend": {}}), "suspend", id="suspend"
        ),
        pytest.param(lambda d: templates(d).append({"name": "s", "http": {}}), "http", id="http"),
        pytest.param(
            lambda d: templates(d).append({"name": "s", "plugin": {}}), "plugin", id="plugin"
        ),
        pytest.param(lambda d: first_task(d).update(when="true"), "when", id="when"),
        pytest.param(lambda d: first_task(d).update(withItems=[1]), "withItems", id="withItems"),
        pytest.param(
            lambda d: first_task(d).update(withSequence={"count": "2"}),
            "withSequence",
            id="withSequence",
        ),
        pytest.param(
            lambda d: first_task(d).update(continueOn={"failed": True}),
            "continueOn",
            id="continueOn",
        ),
        pytest.param(lambda d: first_task(d).update(hooks={}), "hooks", id="hooks"),
        pytest.param(
            lambda d: templates(d)[1].update(outputs={"artifacts": []}), "artifacts", id="artifacts"
        ),
        pytest.param(
            lambda d: templates(d)[1].update(podSpecPatch="{}"), "podSpecPatch", id="podSpecPatch"
        ),
        pytest.param(lambda d: templates(d)[1].update(sidecars=[]), "sidecars", id="sidecars"),
        pytest.param(
            lambda d: templates(d)[1].update(initContainers=[]),
            "initContainers",
            id="initContainers",
        ),
        pytest.param(
            lambda d: templates(d)[1]["container"]["command"].append("{{pr.number}}"),
            "pr.number",
            id="unknown-variable",
        ),
        pytest.param(
            lambda d: templates(d)[1]["container"]["command"].append("{{=1+1}}"),
            "expression",
            id="expression-tag",
        ),
        pytest.param(
            lambda d: templates(d)[1]["container"]["command"].append("{{workflow.status}}"),
            "workflow.status",
            id="status-outside-exit-handler",
        ),
        pytest.param(lambda d: templates(d)[0]["dag"].pop("failFast"), "failFast", id="fail-fast"),
        pytest.param(
            lambda d: templates(d)[1].update(
                retryStrategy={"limit": 1, "expression": "lastRetry.status == 'Error'"}
            ),
            "expression",
            id="retry-expression",
        ),
        pytest.param(
            lambda d: templates(d)[1].update(
                retryStrategy={"limit": 1, "retryPolicy": "OnTransientError"}
            ),
            "OnTransientError",
            id="retry-policy",
        ),
        pytest.param(
            lambda d: templates(d)[1].update(retryStrategy={}), "without limit", id="retry-forever"
        ),
        pytest.param(
            lambda d: templates(d)[1]["container"].update(envFrom=[{"secretRef": {"name": "x"}}]),
            "secretRef",
            id="env-from-secret",
        ),
        pytest.param(
            lambda d: templates(d)[1]["container"].update(workingDir="/src"),
            "workingDir",
            id="working-dir",
        ),
        pytest.param(
            lambda d: d["spec"]["workflowSpec"]["volumes"].append({"name": "h", "hostPath": {}}),
            "hostPath",
            id="host-path",
        ),
        pytest.param(
            lambda d: d["spec"]["workflowSpec"].update(arguments={"artifacts": []}),
            "artifacts",
            id="workflow-artifacts",
        ),
        pytest.param(lambda d: d["spec"].update(when="true"), "when", id="cron-when"),
        pytest.param(lambda d: d.update(kind="Workflow"), "Workflow", id="not-a-cron-workflow"),
    ],
)
def test_features_it_does_not_interpret_are_refused(mutate: Mutation, field: str) -> None:
    """Anything outside the interpreted subset raises UnsupportedFeature naming it."""
    document = copy.deepcopy(base())
    mutate(document)
    with pytest.raises(UnsupportedFeature, match=field):
        run(document)


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        pytest.param(
            lambda d: first_task(d).update(depends="ghost"), "unknown task", id="unknown-dependency"
        ),
        pytest.param(
            lambda d: templates(d)[0]["dag"]["tasks"].append(task("b", "a", depends="b")),
            "cycle",
            id="cycle",
        ),
        pytest.param(
            lambda d: templates(d)[1].update(
                memoize={"key": "k", "cache": {"configMap": {"name": "m"}}}
            ),
            "maxAge",
            id="memo-without-max-age",
        ),
        pytest.param(
            lambda d: first_task(d).update(arguments={"parameters": [{"name": "x", "value": "1"}]}),
            "not an input",
            id="undeclared-argument",
        ),
        pytest.param(
            lambda d: templates(d)[1]["container"]["command"].append(
                "{{tasks.a.outputs.parameters.v}}"
            ),
            None,
            id="task-reference-in-a-pod",
        ),
    ],
)
def test_documents_argo_would_reject_are_invalid(mutate: Mutation, problem: str | None) -> None:
    """A document Argo's validation rejects raises InvalidWorkflow (or is refused outright)."""
    document = copy.deepcopy(base())
    mutate(document)
    with pytest.raises((InvalidWorkflow, UnsupportedFeature), match=problem):
        run(document)


# --- a task calling a DAG template: inputs, outputs, memoization of the whole branch ------------


def branch_document(cache: str = "memo-{{inputs.parameters.shard}}") -> dict[str, Any]:
    """main fans out over two items into `branch` (a DAG: first -> second), memoized per key."""
    first = emit("first", "got-{{inputs.parameters.x}}", inputs={"x": None})
    second = emit("second", "{{inputs.parameters.y}}-done", inputs={"y": None})
    branch = {
        "name": "branch",
        "inputs": {"parameters": [{"name": "x"}, {"name": "key"}, {"name": "shard"}]},
        "outputs": {
            "parameters": [
                {"name": "out", "valueFrom": {"parameter": "{{tasks.second.outputs.parameters.value}}"}}
            ]
        },
        "memoize": {"key": "{{inputs.parameters.key}}", "maxAge": "1h", "cache": {"configMap": {"name": cache}}},
        "dag": {
            "failFast": False,
            "tasks": [
                task("first", x="{{inputs.parameters.x}}"),
                task("second", depends="first", y="{{tasks.first.outputs.parameters.value}}"),
            ],
        },
    }  # fmt: skip
    items = '[{"x": "a", "key": "k-a", "shard": "1"}, {"x": "b", "key": "k-b", "shard": "2"}]'
    main = dag(
        task("list", "items"),
        task("each", "branch", depends="list",
             with_param="{{tasks.list.outputs.parameters.value}}",
             x="{{item.x}}", key="{{item.key}}", shard="{{item.shard}}"),
        task("sum", "collect", depends="each", all="{{tasks.each.outputs.parameters.out}}"),
    )  # fmt: skip
    listing = pod("items", f"/out/value={items}", outputs={"value": None})
    collect = emit("collect", "{{inputs.parameters.all}}", inputs={"all": None})
    return cron(main, listing, branch, first, second, collect)


def test_a_task_may_call_a_dag_template_with_inputs_and_outputs() -> None:
    """A branch's tasks run as `<node>.<task>`, see its inputs, and its output comes from them."""
    result = run(branch_document())
    assert result.phase == "Succeeded"
    names = sorted(n.name for n in result.nodes if n.template in {"first", "second"})
    assert names == [
        "each(0:key:k-a,shard:1,x:a).first",
        "each(0:key:k-a,shard:1,x:a).second",
        "each(1:key:k-b,shard:2,x:b).first",
        "each(1:key:k-b,shard:2,x:b).second",
    ]
    assert result.node("sum").outputs["value"] == '["got-a-done","got-b-done"]'
    assert {n.kind for n in result.nodes if n.template == "branch"} == {"DAG", "TaskGroup"}


def test_a_memoized_branch_saves_argos_entries_in_the_configmap_its_inputs_name() -> None:
    """Entries go to `memo-<shard>` as Argo's cache.Entry; a hit replays the branch, no pod."""
    memo = MemoCache()
    run(branch_document(), memo=memo, now=1_000.0)
    assert sorted(memo.config_maps) == ["memo-1", "memo-2"]
    entry = json.loads(memo.config_maps["memo-1"]["k-a"])
    assert list(entry) == ["nodeID", "outputs", "creationTimestamp", "lastHitTimestamp"]
    assert entry["outputs"]["parameters"][0]["name"] == "out"
    assert entry["outputs"]["parameters"][0]["value"] == "got-a-done"
    assert entry["creationTimestamp"] == "1970-01-01T00:16:40Z"

    again = run(branch_document(), memo=memo, now=1_060.0)

    assert again.pods_of("first") == again.pods_of("second") == 0
    assert [n.memoized for n in again.nodes if n.template == "branch" and n.kind == "DAG"] == [
        True,
        True,
    ]
    assert again.node("sum").outputs["value"] == '["got-a-done","got-b-done"]'
    renewed = json.loads(memo.config_maps["memo-1"]["k-a"])
    assert renewed["lastHitTimestamp"] == "1970-01-01T00:17:40Z"


def test_a_memo_configmap_past_one_mebibyte_errors_the_node() -> None:
    """Kubernetes refuses a ConfigMap over 1 MiB: Argo cannot save, and the node errors."""
    memo = MemoCache(config_maps={"memo-1": {"filler": "x" * CONFIG_MAP_DATA_LIMIT}})
    result = run(branch_document(), memo=memo)
    failed = [n for n in result.nodes if n.template == "branch" and n.kind == "DAG"]
    assert [n.phase for n in failed] == ["Error", "Succeeded"]
    assert "too long" in failed[0].message


def test_a_configmap_name_its_inputs_cannot_make_valid_errors_the_node() -> None:
    """A cache name that is no ConfigMap name (after substitution) is Argo's error."""
    result = run(branch_document(cache="Memo_{{inputs.parameters.shard}}"), memo=MemoCache())
    assert {n.phase for n in result.nodes if n.template == "branch" and n.kind == "DAG"} == {
        "Error"
    }


def test_a_dag_template_calling_itself_is_refused() -> None:
    """Recursion is outside the interpreted subset."""
    document = branch_document()
    templates(document)[2]["dag"]["tasks"].append(
        task("again", "branch", x="1", key="k", shard="1")
    )
    with pytest.raises(UnsupportedFeature, match="recursion"):
        run(document)


# --- the platform's limits and the workflow's namespace ----------------------------------------


def test_an_argument_of_128_kib_fails_the_pod_before_it_starts() -> None:
    """Linux refuses to exec a command whose argument reaches MAX_ARG_STRLEN (E2BIG)."""
    document = cron(dag(task("a", v="x" * MAX_ARG_STRLEN)), emit("a", "{{inputs.parameters.v}}",
                    inputs={"v": None}))  # fmt: skip
    result = run(document)
    assert result.node("a").phase == "Failed" and "E2BIG" in result.node("a").message
    assert result.pods_of("a") == 1


def test_the_workflow_namespace_is_the_cron_workflows() -> None:
    """`{{workflow.namespace}}` is where the CronWorkflow lives."""
    document = cron(dag(task("a")), emit("a", "{{workflow.namespace}}"))
    document["metadata"]["namespace"] = "team-a"
    assert run(document).node("a").outputs["value"] == "team-a"


SLEEP_AND_LOG = (
    "import os, pathlib, sys, time\n"
    "log = pathlib.Path(os.environ['LOG'])\n"
    "with log.open('a') as f: f.write(f'start {time.monotonic()}\\n')\n"
    "time.sleep(0.2)\n"
    "with log.open('a') as f: f.write(f'end {time.monotonic()}\\n')\n"
)


def test_a_semaphore_lets_one_pod_at_a_time_hold_it(tmp_path: Path) -> None:
    """Pods whose template holds a semaphore of limit 1 never overlap, even fanned out."""
    locked = pod("each", code=SLEEP_AND_LOG, inputs={"item": None}, outputs={"value": "[]"})
    locked["synchronization"] = {"semaphores": [{"configMapKeyRef": {"name": "sync", "key": "t"}}]}
    document = fan_out('["a", "b", "c"]', locked)
    log = tmp_path / "log"
    env = {"PATH": os.environ.get("PATH", ""), "LOG": str(log)}
    result = run_cron_workflow(document, env=env, secrets=SECRETS, workers=3)
    assert result.phase == "Succeeded"
    events = [line.split()[0] for line in log.read_text().splitlines()]
    assert events == ["start", "end"] * 3


def test_forked_pods_run_the_same_command_with_exactly_the_pods_environment(tmp_path: Path) -> None:
    """An `ai-operator` pod forked from the server: its exit code and its log, its env alone."""
    env = {"PATH": os.environ.get("PATH", ""), "LOG_FORMAT": "json"}
    with ForkedPods() as pods:
        code, stderr = pods(
            ["ai-operator", "step", "fetch", "--output", "x"], env, str(tmp_path), 60
        )
        plain, _ = pods([sys.executable, "-c", "raise SystemExit(3)"], env, str(tmp_path), 60)
    assert code == 1 and "AI_OPERATOR_RULE_FILE is set" in stderr
    assert plain == 3


# --- WorkflowTemplates and submitted Workflows ---------------------------------------------------


def template_of(document: dict[str, Any]) -> dict[str, Any]:
    """``document``'s workflow spec as a WorkflowTemplate named ``pipeline``, with arguments."""
    spec = document["spec"]["workflowSpec"] | {
        "arguments": {"parameters": [{"name": "who", "value": "schedule"}]}
    }
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": "pipeline"},
        "spec": spec,
    }


def greeting() -> dict[str, Any]:
    return cron(
        dag(task("hello")),
        pod("hello", WRITE, "/out/said={{workflow.parameters.who}} in {{workflow.name}}",
            outputs={"said": None}),
    )  # fmt: skip


def test_a_cron_workflow_and_a_workflow_run_the_template_they_reference() -> None:
    """The template's arguments are the run's; a submitted Workflow's own override them."""
    template = template_of(greeting())
    by_ref = {"workflowTemplateRef": {"name": "pipeline"}}
    scheduled = greeting() | {"spec": {"schedules": ["* * * * *"], "workflowSpec": by_ref}}
    result = run(scheduled, workflow_templates=[template])
    assert result.node("hello").outputs["said"].startswith("schedule in spec-")
    submitted = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "pipeline-e-7"},
        "spec": by_ref | {"arguments": {"parameters": [{"name": "who", "value": "event"}]}},
    }
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/")}
    result = run_workflow(submitted, workflow_templates=[template], env=env, secrets=SECRETS)
    assert result.phase == "Succeeded"
    assert result.node("hello").outputs["said"] == "event in pipeline-e-7"


def test_a_reference_to_a_missing_template_or_an_unknown_parameter_is_refused() -> None:
    """Argo refuses both before anything runs."""
    by_ref = {"workflowTemplateRef": {"name": "absent"}}
    scheduled = greeting() | {"spec": {"schedules": ["* * * * *"], "workflowSpec": by_ref}}
    with pytest.raises(InvalidWorkflow, match="no WorkflowTemplate named 'absent'"):
        run(scheduled, workflow_templates=[template_of(greeting())])
    with pytest.raises(UnsupportedFeature, match=r"workflow\.parameters\.who"):
        run(greeting())  # the inline spec declares no argument ``who``
