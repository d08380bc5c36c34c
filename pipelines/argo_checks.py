"""Argo's own checks of a CronWorkflow that its CRD schema cannot express.

The CRD schema checks shapes; Argo's controller and ``argo lint`` also refuse (or, worse, accept
and then hang on) documents whose names, schedules or ``{{...}}`` references do not fit. This
module repeats those rules for what the compiler emits:

- the name is a DNS-1123 subdomain of at most 52 characters; ``spec.schedules`` is a non-empty
  list of five-field cron lines (``spec.schedule`` was removed in Argo 4); the timezone exists;
- the entrypoint and the exit handler name existing templates;
- DAG tasks: unique names, existing templates, ``depends`` naming existing tasks with valid
  results, no cycle, every input of the called template supplied, ``withParam`` taken from a
  task's output;
- every ``{{tasks.X.outputs...}}`` names an ancestor task and an output its template declares,
  every ``{{inputs.parameters.Y}}`` a declared input, every ``{{workflow.outputs.parameters.Z}}``
  a declared ``globalName``, ``{{item}}`` appears only in fanned-out tasks, and
  ``{{workflow.status}}`` only in the exit handler; any other tag is unknown (a rule's
  ``{{pr.number}}`` leaking into the manifest is caught here);
- a DAG template's outputs take ``valueFrom.parameter`` from one of its own tasks' declared
  outputs (or its inputs);
- memoization: a key whose template yields ``^[a-zA-Z0-9][-a-zA-Z0-9]*$``, a ``maxAge``
  duration (required since Argo 4) and a cache ConfigMap name (which may use the template's
  inputs, as its key does).

Every function is pure and returns problems as ``"<path>: <what is wrong>"`` strings (empty when
the document is clean); nothing here raises on a malformed document.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ai_operator.jobs.rules.schedule import check_cron, check_timezone

MAX_NAME = 52
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_MEMO_KEY = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")
_GO_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")
_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_DEPENDS_TOKEN = re.compile(
    r"\s+|&&|\|\||!|\(|\)|(?P<ref>[a-zA-Z0-9][-a-zA-Z0-9]*(?:\.(?P<result>[A-Za-z]+))?)"
)
_TASK_RESULTS = frozenset(
    {"Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned"}
    | {"AnySucceeded", "AllFailed"}
)
_TASK_FIELDS = frozenset({"id", "ip", "status", "exitCode", "startedAt", "finishedAt"})
_WORKFLOW_VARIABLES = frozenset(
    {"name", "namespace", "uid", "serviceAccountName", "mainEntrypoint", "creationTimestamp"}
    | {"priority", "duration", "scheduledTime", "parameters", "parameters.json"}
    | {"labels.json", "annotations.json"}
)
_EXIT_ONLY_VARIABLES = frozenset({"status", "failures"})
_POD_VARIABLES = frozenset({"pod.name", "node.name", "retries", "inputs.parameters"})
_CONCURRENCY_POLICIES = frozenset({"Allow", "Forbid", "Replace"})
_POD_TEMPLATE_KINDS = ("container", "script", "containerSet")
_ITERATORS = ("withParam", "withItems", "withSequence")


@dataclass(frozen=True)
class _Workflow:
    """What every reference check needs to know about the whole workflow."""

    templates: Mapping[str, Mapping[str, Any]]
    global_outputs: frozenset[str]
    parameters: frozenset[str]
    exit_templates: frozenset[str]


def check_cron_workflow(document: Mapping[str, Any]) -> list[str]:
    """Every problem Argo would find in a CronWorkflow document (empty when clean).

    A CronWorkflow that submits a WorkflowTemplate (``workflowTemplateRef``) is checked for its
    own fields; its template is checked by :func:`check_workflow_template`.
    """
    spec = _mapping(document.get("spec"))
    workflow_spec = _mapping(spec.get("workflowSpec"))
    problems = [
        *_name_problems(_mapping(document.get("metadata")).get("name")),
        *_schedule_problems(spec),
    ]
    if "workflowTemplateRef" in workflow_spec:
        if not _mapping(workflow_spec["workflowTemplateRef"]).get("name"):
            problems.append("spec.workflowSpec.workflowTemplateRef.name: missing")
        return problems
    return problems + check_workflow_spec(workflow_spec, "spec.workflowSpec")


def check_workflow_template(document: Mapping[str, Any]) -> list[str]:
    """Every problem Argo would find in a WorkflowTemplate document (empty when clean)."""
    return [
        *_name_problems(_mapping(document.get("metadata")).get("name")),
        *check_workflow_spec(_mapping(document.get("spec")), "spec"),
    ]


def check_workflow_spec(spec: Mapping[str, Any], where: str = "spec") -> list[str]:
    """Every problem in a workflow spec: entrypoints, DAGs, references, memoization."""
    templates = [_mapping(t) for t in _list(spec.get("templates"))]
    by_name = {str(t.get("name")): t for t in templates}
    problems = [
        f"{where}.templates: template {name!r} is defined more than once"
        for name in sorted(by_name)
        if sum(1 for t in templates if t.get("name") == name) > 1
    ]
    for field in ("entrypoint", "onExit"):
        name = spec.get(field)
        if (field == "entrypoint" or name is not None) and name not in by_name:
            problems.append(f"{where}.{field}: no template named {name!r}")
    workflow = _Workflow(
        templates=by_name,
        global_outputs=_global_outputs(templates),
        parameters=_names(_mapping(spec.get("arguments")).get("parameters")),
        exit_templates=_reachable(by_name, spec.get("onExit")),
    )
    for index, template in enumerate(templates):
        problems += _template_problems(template, f"{where}.templates[{index}]", workflow)
    return problems


# --- the CronWorkflow's own fields -----------------------------------------------------------


def _name_problems(name: object) -> list[str]:
    if not isinstance(name, str) or not name:
        return ["metadata.name: missing"]
    problems = []
    if len(name) > MAX_NAME:
        problems.append(f"metadata.name: {len(name)} characters; Argo allows at most {MAX_NAME}")
    if not _SUBDOMAIN.match(name):
        problems.append(f"metadata.name: {name!r} is not a DNS-1123 subdomain")
    return problems


def _schedule_problems(spec: Mapping[str, Any]) -> list[str]:
    problems = []
    if "schedule" in spec:
        problems.append("spec.schedule: removed in Argo 4; use spec.schedules (a list)")
    schedules = spec.get("schedules")
    if not isinstance(schedules, list) or not schedules:
        problems.append("spec.schedules: at least one cron schedule is needed")
    for index, line in enumerate(_list(schedules)):
        try:
            check_cron(str(line))
        except ValueError as exc:
            problems.append(f"spec.schedules[{index}]: {exc}")
    if spec.get("timezone"):
        try:
            check_timezone(str(spec["timezone"]))
        except ValueError as exc:
            problems.append(f"spec.timezone: {exc}")
    policy = spec.get("concurrencyPolicy")
    if policy is not None and policy not in _CONCURRENCY_POLICIES:
        problems.append(f"spec.concurrencyPolicy: {policy!r} is not Allow, Forbid or Replace")
    return problems


# --- templates -------------------------------------------------------------------------------


def _template_problems(template: Mapping[str, Any], where: str, workflow: _Workflow) -> list[str]:
    name = str(template.get("name"))
    scope = _TemplateScope(
        inputs=_names(_mapping(template.get("inputs")).get("parameters")),
        outputs=_names(_mapping(template.get("outputs")).get("parameters")),
        in_exit_handler=name in workflow.exit_templates,
        dag_outputs=_dag_task_outputs(template, workflow),
    )
    own_fields = {k: v for k, v in template.items() if k not in {"dag", "name"}}
    problems = [
        f"{where}.{path}: {problem}"
        for path, text in _strings(own_fields)
        for problem in _tag_problems(text, lambda tag: scope.problem(tag, workflow))
    ]
    if "memoize" in template:
        problems += _memoize_problems(_mapping(template["memoize"]), f"{where}.memoize")
    if "dag" in template:
        problems += _dag_problems(_mapping(template["dag"]), f"{where}.dag", scope, workflow)
    return problems


@dataclass(frozen=True)
class _TemplateScope:
    """The references a template may use besides workflow-wide ones."""

    inputs: frozenset[str]
    outputs: frozenset[str]
    in_exit_handler: bool
    dag_outputs: Mapping[str, frozenset[str]]
    """A DAG template's own tasks and their outputs, which its ``outputs`` may name."""

    def problem(self, tag: str, workflow: _Workflow) -> str | None:
        """Why ``tag`` cannot resolve inside this template, or None."""
        if tag.startswith("tasks.") and ".outputs.parameters." in tag:
            task, _, output = tag.removeprefix("tasks.").partition(".outputs.parameters.")
            if output in self.dag_outputs.get(task, frozenset()):
                return None
            return f"{{{{{tag}}}}}: no task {task!r} of this DAG declares that output"
        if tag.startswith("inputs.parameters."):
            name = tag.removeprefix("inputs.parameters.")
            return None if name in self.inputs else f"{{{{{tag}}}}}: no input parameter {name!r}"
        if tag.startswith("outputs.parameters.") and tag.endswith(".path"):
            name = tag.removeprefix("outputs.parameters.").removesuffix(".path")
            return None if name in self.outputs else f"{{{{{tag}}}}}: no output {name!r}"
        if tag in _POD_VARIABLES:
            return None
        if tag.startswith("workflow."):
            return _workflow_tag_problem(tag, workflow, in_exit_handler=self.in_exit_handler)
        return f"{{{{{tag}}}}}: unknown reference; Argo cannot resolve it"


def _dag_task_outputs(
    template: Mapping[str, Any], workflow: _Workflow
) -> dict[str, frozenset[str]]:
    """For a DAG template, each task's declared outputs (what its own outputs may reference)."""
    tasks = [_mapping(t) for t in _list(_mapping(template.get("dag")).get("tasks"))]
    return {
        str(task.get("name")): _names(
            _mapping(workflow.templates.get(str(task.get("template")), {}).get("outputs")).get(
                "parameters"
            )
        )
        for task in tasks
    }


def _workflow_tag_problem(tag: str, workflow: _Workflow, *, in_exit_handler: bool) -> str | None:
    name = tag.removeprefix("workflow.")
    if name in _EXIT_ONLY_VARIABLES:
        return None if in_exit_handler else f"{{{{{tag}}}}}: only set in the exit handler"
    if name.startswith("outputs.parameters."):
        output = name.removeprefix("outputs.parameters.")
        if output in workflow.global_outputs:
            return None
        return f"{{{{{tag}}}}}: no template output has globalName {output!r}"
    if name.startswith("parameters.") and name != "parameters.json":
        parameter = name.removeprefix("parameters.")
        if parameter in workflow.parameters:
            return None
        return f"{{{{{tag}}}}}: no workflow parameter {parameter!r}"
    if name in _WORKFLOW_VARIABLES or name.startswith(("labels.", "annotations.")):
        return None
    return f"{{{{{tag}}}}}: unknown workflow variable"


def _memoize_problems(memoize: Mapping[str, Any], where: str) -> list[str]:
    problems = []
    key = memoize.get("key")
    if not isinstance(key, str) or not key:
        problems.append(f"{where}.key: missing")
    elif not _MEMO_KEY.match(_TAG.sub("x", key)):
        problems.append(f"{where}.key: {key!r} cannot yield a key matching {_MEMO_KEY.pattern}")
    max_age = memoize.get("maxAge")
    if not isinstance(max_age, str) or not _GO_DURATION.match(max_age):
        problems.append(f"{where}.maxAge: {max_age!r} is not a duration such as '24h' (required)")
    cache_name = _mapping(_mapping(memoize.get("cache")).get("configMap")).get("name")
    yielded = _TAG.sub("x", cache_name) if isinstance(cache_name, str) else None
    if yielded is None or not _SUBDOMAIN.match(yielded) or len(yielded) > 253:
        problems.append(f"{where}.cache.configMap.name: {cache_name!r} is not a ConfigMap name")
    return problems


# --- DAGs ------------------------------------------------------------------------------------


def _dag_problems(
    dag: Mapping[str, Any], where: str, scope: _TemplateScope, workflow: _Workflow
) -> list[str]:
    tasks = [_mapping(t) for t in _list(dag.get("tasks"))]
    names = [str(t.get("name")) for t in tasks]
    problems = [
        f"{where}.tasks: task {name!r} is defined more than once"
        for name in sorted(set(names))
        if names.count(name) > 1
    ]
    graph: dict[str, set[str]] = {}
    for index, task in enumerate(tasks):
        depends, depends_problems = _task_dependencies(task, set(names))
        graph[names[index]] = depends
        problems += [f"{where}.tasks[{index}]: {p}" for p in depends_problems]
    cycle = _cycle(graph)
    if cycle:
        problems.append(f"{where}.tasks: dependency cycle {' -> '.join(cycle)}")
        return problems
    templates_of = {str(t.get("name")): str(t.get("template")) for t in tasks}
    for index, task in enumerate(tasks):
        context = _TaskContext(
            ancestors=_ancestors(names[index], graph),
            templates_of=templates_of,
            fanned_out=any(key in task for key in _ITERATORS),
            scope=scope,
        )
        problems += _task_problems(task, f"{where}.tasks[{index}]", context, workflow)
    return problems


def _task_dependencies(task: Mapping[str, Any], known: set[str]) -> tuple[set[str], list[str]]:
    """The tasks ``task`` depends on, and what is wrong with how it says so."""
    problems: list[str] = []
    depends: set[str] = {str(d) for d in _list(task.get("dependencies"))}
    expression = task.get("depends")
    if isinstance(expression, str):
        position = 0
        for match in _DEPENDS_TOKEN.finditer(expression):
            if match.start() != position:
                break
            position = match.end()
            if match.group("ref"):
                task_name, _, result = match.group("ref").partition(".")
                depends.add(task_name)
                if result and result not in _TASK_RESULTS:
                    problems.append(f"depends: {result!r} is not a task result")
        if position != len(expression):
            problems.append(f"depends: cannot parse {expression[position:]!r}")
    problems += [f"depends on unknown task {name!r}" for name in sorted(depends - known)]
    return depends & known, problems


@dataclass(frozen=True)
class _TaskContext:
    """Where a task stands in its DAG."""

    ancestors: frozenset[str]
    templates_of: Mapping[str, str]
    fanned_out: bool
    scope: _TemplateScope


def _task_problems(
    task: Mapping[str, Any], where: str, context: _TaskContext, workflow: _Workflow
) -> list[str]:
    template = workflow.templates.get(str(task.get("template")))
    if template is None:
        return [f"{where}.template: no template named {task.get('template')!r}"]
    problems = _argument_problems(task, template, where)
    with_param = task.get("withParam")
    if with_param is not None and not _is_output_reference(with_param):
        problems.append(f"{where}.withParam: {with_param!r} must be one task output reference")
    checked = {k: v for k, v in task.items() if k in {"arguments", "when", "withParam"}}
    problems += [
        f"{where}.{path}: {problem}"
        for path, text in _strings(checked)
        for problem in _tag_problems(text, lambda tag: _task_tag_problem(tag, context, workflow))
    ]
    return problems


def _argument_problems(
    task: Mapping[str, Any], template: Mapping[str, Any], where: str
) -> list[str]:
    supplied = _names(_mapping(task.get("arguments")).get("parameters"))
    inputs = [_mapping(p) for p in _list(_mapping(template.get("inputs")).get("parameters"))]
    return [
        f"{where}.arguments: input parameter {p.get('name')!r} of template "
        f"{template.get('name')!r} is not supplied"
        for p in inputs
        if p.get("name") not in supplied and "default" not in p and "value" not in p
    ]


def _task_tag_problem(tag: str, context: _TaskContext, workflow: _Workflow) -> str | None:
    if tag == "item" or tag.startswith("item."):
        return None if context.fanned_out else f"{{{{{tag}}}}}: the task is not fanned out"
    if not tag.startswith("tasks."):
        return context.scope.problem(tag, workflow)
    task_name, _, rest = tag.removeprefix("tasks.").partition(".")
    if task_name not in context.ancestors:
        return f"{{{{{tag}}}}}: task {task_name!r} is not one this task depends on"
    template = workflow.templates.get(context.templates_of.get(task_name, ""), {})
    if rest in _TASK_FIELDS:
        return None
    if rest == "outputs.result":
        if any(kind in template for kind in _POD_TEMPLATE_KINDS):
            return None
        return f"{{{{{tag}}}}}: template {template.get('name')!r} has no result"
    output = rest.removeprefix("outputs.parameters.")
    declared = _names(_mapping(template.get("outputs")).get("parameters"))
    if rest.startswith("outputs.parameters.") and output in declared:
        return None
    return f"{{{{{tag}}}}}: template {template.get('name')!r} declares no such output"


def _is_output_reference(value: object) -> bool:
    if not isinstance(value, str):
        return False
    match = _TAG.fullmatch(value.strip())
    return bool(match and re.fullmatch(r"\s*tasks\.[-\w]+\.outputs\.\S+\s*", match.group(1)))


# --- references and graphs -------------------------------------------------------------------


def _tag_problems(text: str, problem_of: Callable[[str], str | None]) -> Iterator[str]:
    """Each problem of the ``{{...}}`` tags in ``text``; ``{{=...}}`` expressions are trusted."""
    for match in _TAG.finditer(text):
        tag = match.group(1).strip()
        if tag.startswith("="):
            continue
        problem = problem_of(tag)
        if problem:
            yield problem
    if "{{" in _TAG.sub("", text):
        yield f"{text[:40]!r}: '{{{{' without a matching '}}}}'"


def _strings(value: object, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string leaf of a document, with its dotted path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def _cycle(graph: Mapping[str, set[str]]) -> list[str]:
    """One dependency cycle of ``graph`` (task -> the tasks it depends on), or []."""
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> list[str]:
        if state.get(node) == "active":
            return [*trail[trail.index(node) :], node]
        if state.get(node) == "done":
            return []
        state[node] = "active"
        for parent in sorted(graph.get(node, ())):
            found = visit(parent, [*trail, node])
            if found:
                return found
        state[node] = "done"
        return []

    for node in sorted(graph):
        found = visit(node, [])
        if found:
            return found
    return []


def _ancestors(task: str, graph: Mapping[str, set[str]]) -> frozenset[str]:
    seen: set[str] = set()
    pending = list(graph.get(task, ()))
    while pending:
        node = pending.pop()
        if node not in seen:
            seen.add(node)
            pending += graph.get(node, ())
    return frozenset(seen)


def _reachable(templates: Mapping[str, Mapping[str, Any]], start: object) -> frozenset[str]:
    """The templates run by ``start`` (the exit handler), itself included."""
    seen: set[str] = set()
    pending = [start] if isinstance(start, str) else []
    while pending:
        name = pending.pop()
        if name in seen or name not in templates:
            continue
        seen.add(name)
        template = templates[name]
        pending += [str(_mapping(t).get("template")) for t in _called(template)]
    return frozenset(seen)


def _called(template: Mapping[str, Any]) -> list[object]:
    steps = [step for group in _list(template.get("steps")) for step in _list(group)]
    return _list(_mapping(template.get("dag")).get("tasks")) + steps


def _global_outputs(templates: list[Mapping[str, Any]]) -> frozenset[str]:
    return frozenset(
        str(_mapping(p)["globalName"])
        for t in templates
        for p in _list(_mapping(t.get("outputs")).get("parameters"))
        if _mapping(p).get("globalName")
    )


def _names(parameters: object) -> frozenset[str]:
    return frozenset(str(_mapping(p).get("name")) for p in _list(parameters))


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
