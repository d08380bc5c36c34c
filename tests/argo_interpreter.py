"""Run one scheduled run of a compiled CronWorkflow on this machine, the way Argo Workflows v4 would.

Tests use it to run the DAG that ``ai-operator compile`` writes, step by step, against the fakes:
each pod becomes a subprocess, and everything Argo does between pods (dependency logic, parameter
substitution, fan-out and aggregation, memoization, retries, the exit handler) is done here, as
Argo v4.1.2's controller does it (read from its code; see the notes at each rule).

It interprets exactly the features below and raises :class:`UnsupportedFeature`, naming the field
or variable, for anything else it meets; it never guesses.

- ``spec.workflowSpec``: ``entrypoint`` (a DAG template), ``onExit`` (a container template),
  ``templates``, ``volumes`` (``emptyDir``, and ``configMap`` with ``name``/``optional``),
  ``parallelism``, ``activeDeadlineSeconds``, ``synchronization``, ``podMetadata`` (its
  annotations are what a pod's ``fieldRef`` reads); accepted without effect: ``podGC``,
  ``securityContext``, ``serviceAccountName``, ``ttlStrategy``, ``workflowMetadata``. CronWorkflow scheduling fields have no effect on a run.
- ``spec.workflowSpec.workflowTemplateRef`` (a CronWorkflow) or ``spec.workflowTemplateRef``
  with ``spec.arguments`` (a submitted Workflow, :func:`run_workflow`): the named
  WorkflowTemplate's spec runs, its ``arguments.parameters`` overridden by the Workflow's.
- DAG templates: ``tasks`` calling a container or another DAG template, ``arguments.parameters``
  (``name``/``value``),
  ``depends`` (``X``, ``X.Succeeded|Failed|Errored|Skipped|Omitted|Daemoned|AnySucceeded|AllFailed``,
  ``&&``, ``||``, ``!``, parentheses) or ``dependencies``, ``withParam``; ``parallelism``;
  ``failFast`` must be ``false`` (the stop-scheduling rule of ``failFast: true`` is not modelled).
  A DAG template called by a task may have ``inputs.parameters``, ``outputs.parameters``
  (``valueFrom.parameter``/``default``, from any of its tasks: ``getTemplateOutputsFromScope``)
  and ``memoize``; its tasks' nodes are named ``<its node>.<task>``.
- Container templates: ``command`` (+ ``args``), ``env`` (``value``, ``valueFrom.secretKeyRef``,
  ``valueFrom.fieldRef`` of ``metadata.annotations['KEY']``), ``envFrom`` ConfigMap refs,
  ``volumeMounts`` of ``emptyDir`` and ``configMap`` volumes, ``inputs.parameters``
  (``default``), ``outputs.parameters`` (``valueFrom.path``/``default``, ``globalName``),
  ``memoize``, ``retryStrategy``, ``synchronization`` (semaphores and mutexes held around the
  pod; a semaphore's limit comes from ``semaphore_limits``, else 1); accepted without effect: ``image``,
  ``imagePullPolicy``, ``resources``, ``securityContext``, ``metadata``.
- Variables: ``inputs.parameters.X``, ``tasks.T.outputs.parameters.P``, ``item``, ``item.KEY``,
  ``workflow.name``, ``workflow.namespace``, ``workflow.parameters.P``, ``workflow.status``, ``workflow.failures`` and ``workflow.duration`` (exit
  handler only),
  ``workflow.outputs.parameters.G``.

Substitution follows Argo's stages; each is one pass (a value put in is not scanned again by the
same pass), but a later stage scans what an earlier one put in, as Argo does:

1. A task's arguments and ``withParam`` (``resolveDependencyReferences``): ancestors' outputs and
   workflow globals; ``item`` tags wait for stage 2. A reference with no value makes Argo v4
   requeue the task forever. A skipped or omitted producer offers its output's
   ``valueFrom.default``; without one, an argument that is exactly that tag is dropped so the
   consumer's input default applies, and anything else errors the task.
2. A fanned-out task, once per item (``expandTask``), strictly: ``item``, ``item.KEY`` and
   globals; any other tag, even one inside a value stage 1 put in, errors the whole task.
3. The pod's template (``SubstituteParams``): globals over the whole template, the inputs' values
   included, then ``inputs.parameters.*``. Unknown tags stay as literal text.

Memoization keeps Argo's ConfigMaps (:class:`MemoCache`): per ConfigMap (its name may use the
template's inputs), per key, Argo's entry ``{"nodeID", "outputs", "creationTimestamp",
"lastHitTimestamp"}``; a hit younger than ``maxAge`` replays the outputs (and renews
``lastHitTimestamp``); a save that would take a ConfigMap's data past 1 MiB errors the node, as
the API server's refusal does.

A fan-out's output, referenced later, aggregates the succeeded children only, in item order
(``processAggregateNodeOutputs``): a JSON list of the values when each is a JSON object or list,
else a JSON list of strings, re-marshalled as Go does (keys sorted, ``<>&`` escaped).

Where a local run must differ from a cluster, on purpose:

- A pod is ``command + args`` run as a subprocess; a first element ``ai-operator`` becomes
  ``command_prefix``. With ``pods=ForkedPods()``, an ``ai-operator`` pod is instead a process
  forked from one that imported the product once (the same command, environment and exit code,
  a fraction of the start-up). An argument of 128 KiB or more fails the pod before it starts,
  as Linux's ``execve`` does (E2BIG).
- The Kubernetes API a pod's service account would reach is, for the memo ConfigMaps and the
  run's own Workflow (its ``status.nodes``: each node's name, type, template, phase and message,
  as the run stands when the pod asks), a read-only server on loopback whose URL pods get as
  ``AI_OPERATOR_KUBERNETES_API``. Its environment is ``env`` (standing for the ``envFrom`` ConfigMap) plus the
  container's ``env``; a ``secretKeyRef`` is looked up in ``secrets[(name, key)]``. A
  ``configMap`` volume's files are the data of the ConfigMap of that name in ``config_maps``
  (documents, as ``compile`` writes them); a missing one leaves an optional volume empty and
  errors the pod otherwise, as the kubelet's failed mount does.
- A container's termination log (``/dev/termination-log``) is a file in the pod's temporary
  directory named by ``AI_OPERATOR_TERMINATION_LOG``; a failed pod's node message is Argo's
  ``Error (exit code N)`` followed by what the container left there.
- Each mount gets a fresh temporary directory per pod. A ``command``/``args`` element or an
  ``env`` value that is the mount path or lies under it *as written in the template* (before
  substitution), and each output's ``valueFrom.path``, are rewritten into that directory.
- Time does not pass: retry backoff is recorded, not slept; when Argo would wait forever for a
  reference that can never resolve, the run ends as ``activeDeadlineSeconds`` would end it
  (Failed, then the exit handler), or raises :class:`WorkflowStuck` when no deadline is set.
- Independent DAG tasks run one after another in dependency order (declaration order breaks
  ties); a fanned-out task's pods run in a small thread pool bounded by ``parallelism``.

Errors: :class:`InterpreterError` > :class:`UnsupportedFeature` (a feature outside the list),
:class:`InvalidWorkflow` (a document Argo's validation would reject), :class:`WorkflowStuck`.
A failing pod is no exception: it is a node's phase, as in Argo.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

from tests.forks import ForkServer

SUCCEEDED, FAILED, ERROR, SKIPPED, OMITTED = "Succeeded", "Failed", "Error", "Skipped", "Omitted"
FAILED_OR_ERROR = frozenset({FAILED, ERROR})
POD_TIMEOUT_SECONDS = 300.0
MEMO_KEY = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")  # Argo's cacheKeyRegex
MAX_ARG_STRLEN = 128 * 1024  # Linux: one argument or environment string, terminator included
CONFIG_MAP_DATA_LIMIT = 1024 * 1024  # Kubernetes refuses a ConfigMap whose data exceeds 1 MiB
KUBERNETES_API_VARIABLE = "AI_OPERATOR_KUBERNETES_API"
TERMINATION_LOG_VARIABLE = "AI_OPERATOR_TERMINATION_LOG"  # stands for /dev/termination-log
TERMINATION_MESSAGE_BYTES = 4096
CACHE_LABEL = ("workflows.argoproj.io/configmap-type", "Cache")
_CONFIG_MAP_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)  # fasttemplate: "{{", then the next "}}"


class InterpreterError(Exception):
    """Base of the interpreter's errors."""


class UnsupportedFeature(InterpreterError):
    """The document uses a field or variable this interpreter does not interpret."""


class InvalidWorkflow(InterpreterError):
    """The document is one Argo's validation would reject."""


class WorkflowStuck(InterpreterError):
    """Argo would wait forever: a reference can never resolve and no deadline ends the run."""


class MemoCacheFull(InterpreterError):
    """Saving an entry would take a memo ConfigMap's data past 1 MiB (Argo then errors the node)."""


def _rfc3339(seconds: float) -> str:
    """A ``metav1.Time`` as Go marshals it: UTC, whole seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _seconds(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


@dataclass
class MemoCache:
    """Stands for the memoization ConfigMaps: ``config_maps[name][key]`` is Argo's entry JSON.

    An entry is Argo's ``cache.Entry``: ``{"nodeID", "outputs", "creationTimestamp",
    "lastHitTimestamp"}``, ``outputs`` holding the template's output parameters (name, value,
    valueFrom) and, for a pod, its ``exitCode``. Sizes measured here are what the cluster stores.
    """

    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    leases: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``coordination.k8s.io/v1`` Leases by name, as the API server keeps them."""
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    """ConfigMaps the steps create and update themselves (whole objects, by name)."""
    troubles: list[tuple[str, int]] = field(default_factory=list)
    """Answers the API gives first, in order: ``(method, status)``, each once, to the next request
    of that method (a Status whose message quotes the request's ``Authorization`` header, as a
    careless proxy might)."""
    requests: list[tuple[str, str]] = field(default_factory=list)
    """Every request the API received: ``(method, path)``."""
    namespace_annotations: dict[str, str] | None = None
    """The annotations of the run's Namespace, served at ``/api/v1/namespaces/NAME`` (None: the
    Namespace is not served, 404)."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def entries(self) -> dict[str, dict[str, tuple[float, dict[str, str]]]]:
        """A readable view: per ConfigMap, per key, (creation time, outputs by name)."""
        with self.lock:
            return {
                name: {key: _readable(raw) for key, raw in data.items()}
                for name, data in self.config_maps.items()
            }

    def data_bytes(self, name: str) -> int:
        """The size of ConfigMap ``name``'s data (keys and values), which Kubernetes caps at 1 MiB."""
        with self.lock:
            data = self.config_maps.get(name, {})
            return sum(len(key.encode()) + len(raw.encode()) for key, raw in data.items())

    def load(self, name: str, key: str, max_age: float, now: float) -> dict[str, str] | None:
        """The outputs saved under ``key`` when younger than ``max_age``; renews the hit time."""
        with self.lock:
            raw = self.config_maps.get(name, {}).get(key)
            if raw is None:
                return None
            entry = json.loads(raw)
            entry["lastHitTimestamp"] = _rfc3339(now)  # Argo renews it on every load
            self.config_maps[name][key] = _go_json_struct(entry)
        if now - _seconds(entry["creationTimestamp"]) > max_age:  # Argo: older than maxAge misses
            return None
        return {str(p["name"]): str(p.get("value", "")) for p in entry["outputs"]["parameters"]}

    def save(
        self,
        name: str,
        key: str,
        node_id: str,
        template: Mapping[str, Any],
        node: NodeRun,
        now: float,
    ) -> None:
        """Save ``node``'s outputs under ``key`` as Argo's ``configMapCache.Save`` does."""
        parameters = []
        for parameter in _parameters(template.get("outputs"), "outputs"):
            if parameter["name"] in node.outputs:
                saved = {"name": parameter["name"], "value": node.outputs[parameter["name"]]}
                saved |= {k: parameter[k] for k in ("valueFrom", "globalName") if k in parameter}
                parameters.append(saved)
        outputs: dict[str, Any] = {"parameters": parameters}
        if node.kind == "Pod":
            outputs["exitCode"] = str(node.exit_code if node.exit_code is not None else 0)
        entry = {
            "nodeID": node_id,
            "outputs": outputs,
            "creationTimestamp": _rfc3339(now),
            "lastHitTimestamp": _rfc3339(now),
        }
        raw = _go_json_struct(entry)
        with self.lock:
            data = dict(self.config_maps.get(name, {}))
            data[key] = raw
            size = sum(len(k.encode()) + len(v.encode()) for k, v in data.items())
            if size > CONFIG_MAP_DATA_LIMIT:
                raise MemoCacheFull(
                    f"error creating cache entry: ConfigMap {name!r} is too long: "
                    f"its data would be {size} bytes, over {CONFIG_MAP_DATA_LIMIT}"
                )
            self.config_maps[name] = data

    @contextlib.contextmanager
    def serve(self, namespace: str, workflows: WorkflowSource | None = None) -> Iterator[str]:
        """A Kubernetes API on loopback serving these ConfigMaps (and Leases, and the ConfigMaps the
        steps write themselves, :attr:`objects`) in ``namespace``.

        With ``workflows``, it also serves the Workflows of ``namespace`` that it knows by name.
        """
        handler = _config_map_handler(self, namespace, workflows or (lambda _: None))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


def _readable(raw: str) -> tuple[float, dict[str, str]]:
    entry = json.loads(raw)
    outputs = {str(p["name"]): str(p.get("value", "")) for p in entry["outputs"]["parameters"]}
    return _seconds(entry["creationTimestamp"]), outputs


def _go_json_struct(value: object) -> str:
    """Go's ``json.Marshal`` of a struct: fields in declaration order, compact, HTML escaped."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).translate(_GO_HTML_TABLE)


WorkflowSource = Callable[[str], Mapping[str, Any] | None]
"""The Workflow object named so, as the API would return it; None when there is none."""


def _config_map_handler(
    memo: MemoCache, namespace: str, workflows: WorkflowSource
) -> type[BaseHTTPRequestHandler]:
    prefix = f"/api/v1/namespaces/{namespace}/configmaps/"
    workflow_prefix = f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/workflows/"
    leases = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
    not_found = {"kind": "Status", "status": "Failure", "reason": "NotFound"}
    conflict = {"kind": "Status", "status": "Failure", "reason": "Conflict"}

    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("content-length") or 0)
            return json.loads(self.rfile.read(length)) if length else {}

        def _kind(self) -> tuple[str, dict[str, dict[str, Any]]]:
            """The collection a write goes to: Leases, or the steps' own ConfigMaps."""
            if self.path.startswith(prefix.rstrip("/")):
                return prefix.rstrip("/"), memo.objects
            return leases, memo.leases

        def _troubled(self) -> bool:
            """Answer the next trouble queued for this method, if any (True when answered)."""
            with memo.lock:
                memo.requests.append((self.command, self.path))
                queued = [i for i, (verb, _) in enumerate(memo.troubles) if verb == self.command]
                status = memo.troubles.pop(queued[0])[1] if queued else None
            if status is None:
                return False
            self._body()
            message = f"overloaded (asked with {self.headers.get('Authorization', 'nothing')})"
            self._reply(status, {"kind": "Status", "status": "Failure", "message": message})
            return True

        def do_POST(self) -> None:
            """Create a Lease or a ConfigMap (409 when it exists)."""
            if self._troubled():
                return
            collection, store = self._kind()
            if self.path != collection:
                self._reply(404, not_found)
                return
            lease = self._body()
            name = lease["metadata"]["name"]
            with memo.lock:
                if name in store or name in memo.config_maps:
                    self._reply(409, conflict)
                    return
                lease["metadata"] |= {"namespace": namespace, "resourceVersion": "1"}
                store[name] = lease
            self._reply(201, lease)

        def do_PUT(self) -> None:
            """Update a Lease or a ConfigMap; 409 when its resourceVersion is not the stored one."""
            if self._troubled():
                return
            collection, store = self._kind()
            name = self.path.removeprefix(collection + "/")
            lease = self._body()
            with memo.lock:
                stored = store.get(name)
                if stored is None:
                    self._reply(404, not_found)
                    return
                version = stored["metadata"]["resourceVersion"]
                if lease.get("metadata", {}).get("resourceVersion") != version:
                    self._reply(409, conflict)
                    return
                lease["metadata"] |= {
                    "namespace": namespace,
                    "resourceVersion": str(int(version) + 1),
                }
                store[name] = lease
            self._reply(200, lease)

        def do_GET(self) -> None:
            if self._troubled():
                return
            if self.path == f"/api/v1/namespaces/{namespace}":
                found = memo.namespace_annotations
                metadata = {"name": namespace, "annotations": found}
                body = {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}
                self._reply(200, body) if found is not None else self._reply(404, not_found)
                return
            if self.path.startswith(workflow_prefix):
                workflow = workflows(self.path.removeprefix(workflow_prefix))
                if workflow is None:
                    self._reply(404, {"kind": "Status", "status": "Failure", "reason": "NotFound"})
                else:
                    self._reply(200, workflow)
                return
            if self.path.startswith(leases + "/"):
                with memo.lock:
                    found = memo.leases.get(self.path.removeprefix(leases + "/"))
                self._reply(200, found) if found else self._reply(404, not_found)
                return
            name = self.path.removeprefix(prefix) if self.path.startswith(prefix) else None
            with memo.lock:
                own = memo.objects.get(name) if name else None
            if own is not None:
                self._reply(200, own)
                return
            with memo.lock:
                data = dict(memo.config_maps[name]) if name in memo.config_maps else None
            if name is None or data is None:
                self._reply(404, {"kind": "Status", "status": "Failure", "reason": "NotFound"})
                return
            label, value = CACHE_LABEL
            metadata = {"name": name, "namespace": namespace, "labels": {label: value}}
            document = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}
            self._reply(200, document | {"data": data})

        def _reply(self, status: int, body: Mapping[str, Any]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    return Handler


class PodRunner(Protocol):
    """Runs one pod's command: ``(exit code, stderr)``; raises FileNotFoundError, TimeoutExpired."""

    runs_ai_operator: bool
    """Whether it runs an ``ai-operator ...`` command itself (else it gets ``command_prefix``)."""

    def __call__(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: str, timeout: float
    ) -> tuple[int, str]:
        """Run ``argv`` with exactly ``env`` in ``cwd``."""
        ...


class SubprocessPods:
    """Each pod a subprocess: the most faithful, about two seconds of start-up per pod."""

    runs_ai_operator = False

    def __call__(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: str, timeout: float
    ) -> tuple[int, str]:
        """Run ``argv`` as a subprocess."""
        process = subprocess.run(
            list(argv),
            env=dict(env),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return process.returncode, process.stderr


class ForkedPods:
    """Each ``ai-operator`` pod a child forked from a server that imported the product once.

    See :mod:`tests.forks`: the child takes exactly the pod's environment, working directory and
    arguments; its exit code and stderr (the pod's log) are the pod's. Any other command runs as
    a subprocess. ``server``: a running :class:`~tests.forks.ForkServer` to share (else one of
    its own, stopped by :meth:`close`; use as a context manager).
    """

    runs_ai_operator = True

    def __init__(self, server: ForkServer | None = None) -> None:
        self._owned = server is None
        self._server = server if server is not None else ForkServer()

    def __enter__(self) -> ForkedPods:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the server, when it is this runner's own."""
        if self._owned:
            self._server.close()

    def __call__(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: str, timeout: float
    ) -> tuple[int, str]:
        """Run ``ai-operator ARGS`` in a forked child, anything else as a subprocess."""
        if not argv or argv[0] != "ai-operator":
            return SubprocessPods()(argv, env, cwd, timeout)
        done = self._server.run(argv[1:], env, cwd, timeout=timeout, keep_stdout=False)
        return done.code, done.stderr


@dataclass
class NodeRun:
    """One node of the run, named like Argo's display names (``decide(0:display:acme/web#1,...)``)."""

    name: str
    template: str
    phase: str
    outputs: dict[str, str] = field(default_factory=dict)
    memoized: bool = False  # a cache hit: no pod was started
    exit_code: int | None = None
    attempts: int = 0  # pods started for this node (retries included)
    stderr: str = ""
    message: str = ""
    inputs: dict[str, str] = field(default_factory=dict)
    kind: str = "Pod"  # Pod, TaskGroup or Skipped (Argo's node types)


@dataclass
class WorkflowRun:
    """What one run did: its phase, every node in the order they finished, the global outputs."""

    phase: str
    nodes: list[NodeRun]
    global_outputs: dict[str, str]
    message: str = ""
    name: str = ""

    def node(self, name: str) -> NodeRun:
        """The node called ``name``, else the first whose name starts with it (KeyError if none)."""
        exact = [n for n in self.nodes if n.name == name]
        found = exact or self.nodes_named(name)
        if not found:
            raise KeyError(f"no node named {name!r} in {[n.name for n in self.nodes]}")
        return found[0]

    def nodes_named(self, prefix: str) -> list[NodeRun]:
        """Every node whose name starts with ``prefix``."""
        return [n for n in self.nodes if n.name.startswith(prefix)]

    @property
    def pods_started(self) -> int:
        """Pods started by the whole run (memo hits start none)."""
        return sum(n.attempts for n in self.nodes)

    def pods_of(self, template: str) -> int:
        """Pods started for ``template``."""
        return sum(n.attempts for n in self.nodes if n.template == template)


DEFAULT_PODS: PodRunner | None = None
"""The pod runner of a run given none (the tests' session sets one fork server for all)."""


def run_cron_workflow(
    document: Mapping[str, Any],
    *,
    env: Mapping[str, str],
    secrets: Mapping[tuple[str, str], str],
    memo: MemoCache | None = None,
    now: float | None = None,
    command_prefix: Sequence[str] = (sys.executable, "-m", "ai_operator.pipelines"),
    workers: int = 4,
    pods: PodRunner | None = None,
    semaphore_limits: Mapping[tuple[str, str], int] | None = None,
    config_maps: Sequence[Mapping[str, Any] | None] = (),
    workflow_templates: Sequence[Mapping[str, Any] | None] = (),
    arguments: Mapping[str, str] | None = None,
    name: str | None = None,
) -> WorkflowRun:
    """Run one scheduled run of the CronWorkflow ``document``; see the module docstring.

    ``config_maps``: the ConfigMaps its volumes mount (``compile``'s ``config_map`` of the rule).
    ``workflow_templates``: the WorkflowTemplates a ``workflowTemplateRef`` may name; the run's
    arguments are the template's, overridden by ``arguments`` (as a submitted Workflow's are).

    Pods reach a read-only API (their ``AI_OPERATOR_KUBERNETES_API``) as a service account allowed
    to ``get`` ConfigMaps and Workflows can: it serves the run's own Workflow and, with ``memo``,
    the memo's ConfigMaps.
    """
    spec = check_cron_workflow(document)
    if "workflowTemplateRef" in spec:
        spec = _referenced(spec, workflow_templates)
    name = name or f"{document['metadata']['name']}-{int(now if now is not None else time.time())}"
    namespace = str(document["metadata"].get("namespace") or "default")
    with contextlib.ExitStack() as stack:
        pod_env = dict(env)
        run = _Run(
            spec,
            name=name,
            namespace=namespace,
            env=pod_env,
            secrets=dict(secrets),
            memo=memo,
            now=now,
            command_prefix=tuple(command_prefix),
            workers=workers,
            pods=pods or DEFAULT_PODS or SubprocessPods(),
            semaphore_limits=dict(semaphore_limits or {}),
            config_maps={
                str(found["metadata"]["name"]): dict(found.get("data") or {})
                for found in config_maps
                if found is not None
            },
            arguments=dict(arguments or {}),
        )
        # As in a cluster, every pod can reach the API (the run's env is the pods': they learn
        # where it is); without ``memo`` it serves no ConfigMap and nothing is memoized.
        served = memo if memo is not None else MemoCache()
        api = stack.enter_context(served.serve(namespace, run.workflow_document))
        pod_env[KUBERNETES_API_VARIABLE] = api
        return run.execute()


def run_workflow(
    document: Mapping[str, Any],
    *,
    workflow_templates: Sequence[Mapping[str, Any] | None],
    **options: Any,
) -> WorkflowRun:
    """Run a submitted Workflow that references a WorkflowTemplate (as a Sensor creates one).

    Its ``spec`` may hold only ``workflowTemplateRef`` and ``arguments.parameters``; it runs as
    :func:`run_cron_workflow` runs a scheduled run, under the Workflow's own name.
    """
    if document.get("kind") != "Workflow":
        raise UnsupportedFeature(f"kind {document.get('kind')!r}: a Workflow is expected")
    spec = _only(document.get("spec"), {"workflowTemplateRef", "arguments"}, "spec")
    metadata = document.get("metadata") or {}
    if not metadata.get("name"):
        raise InvalidWorkflow("metadata.name is required (generateName is the API server's)")
    arguments = {
        str(p["name"]): _text(p.get("value", ""))
        for p in _parameters(spec.get("arguments"), "spec.arguments")
    }
    cron = {
        "apiVersion": document.get("apiVersion"),
        "kind": "CronWorkflow",
        "metadata": {"name": metadata["name"], "namespace": metadata.get("namespace")},
        "spec": {"workflowSpec": {"workflowTemplateRef": spec["workflowTemplateRef"]}},
    }
    return run_cron_workflow(
        cron,
        workflow_templates=workflow_templates,
        arguments=arguments,
        name=str(metadata["name"]),
        **options,
    )


def _referenced(
    ref: Mapping[str, Any], workflow_templates: Sequence[Mapping[str, Any] | None]
) -> Mapping[str, Any]:
    """The checked spec of the WorkflowTemplate ``ref`` names."""
    wanted = _only(ref["workflowTemplateRef"], {"name"}, "workflowTemplateRef")["name"]
    for template in workflow_templates:
        if template is None:
            continue
        if template.get("kind") != "WorkflowTemplate":
            raise UnsupportedFeature(f"kind {template.get('kind')!r} is not a WorkflowTemplate")
        _only(template, {"apiVersion", "kind", "metadata", "spec"}, "WorkflowTemplate")
        if template["metadata"]["name"] == wanted:
            return check_workflow_spec(template.get("spec"), "WorkflowTemplate.spec")
    raise InvalidWorkflow(f"workflowTemplateRef: no WorkflowTemplate named {wanted!r}")


# --- the document: every field is checked before anything runs ---------------------------------

_CRON_SPEC_KEYS = {
    "schedules", "timezone", "concurrencyPolicy", "startingDeadlineSeconds", "suspend",
    "successfulJobsHistoryLimit", "failedJobsHistoryLimit", "workflowMetadata", "workflowSpec",
}  # fmt: skip
_WORKFLOW_SPEC_KEYS = {
    "entrypoint", "onExit", "templates", "volumes", "parallelism", "activeDeadlineSeconds",
    "synchronization", "podGC", "podMetadata", "securityContext", "serviceAccountName",
    "ttlStrategy", "arguments", "workflowMetadata",
}  # fmt: skip
_TEMPLATE_KEYS = {
    "name", "dag", "container", "inputs", "outputs", "memoize", "retryStrategy",
    "synchronization", "failFast", "parallelism", "metadata",
}  # fmt: skip
_CONTAINER_KEYS = {
    "name", "image", "imagePullPolicy", "command", "args", "env", "envFrom", "resources",
    "securityContext", "volumeMounts",
}  # fmt: skip
_TASK_KEYS = {"name", "template", "arguments", "depends", "dependencies", "withParam"}
_SYNCHRONIZATION_KEYS = {"semaphores", "mutexes", "semaphore", "mutex"}
_RESULTS = {
    "Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned", "AnySucceeded", "AllFailed",
}  # fmt: skip
_ANNOTATION_FIELD = re.compile(r"^metadata\.annotations\['(?P<key>[^']+)'\]$")
_RETRY_EXPRESSION = re.compile(r"^\s*asInt\(lastRetry\.exitCode\)\s*==\s*(-?\d+)\s*$")
_RETRY_POLICIES = {"OnFailure": {FAILED}, "OnError": {ERROR}, "Always": {FAILED, ERROR}}


def _only(obj: object, allowed: set[str], where: str) -> Mapping[str, Any]:
    """``obj`` as a mapping, after refusing any key outside ``allowed``."""
    if not isinstance(obj, Mapping):
        raise InvalidWorkflow(f"{where} must be an object")
    for key in obj:
        if key not in allowed:
            raise UnsupportedFeature(f"{where}.{key} is not interpreted")
    return obj


def _parameters(section: object, where: str) -> list[Mapping[str, Any]]:
    """The ``parameters`` list of an inputs/outputs/arguments section (artifacts are refused)."""
    found = _only(section if section is not None else {}, {"parameters"}, where)
    parameters = found.get("parameters", [])
    if not isinstance(parameters, list):
        raise InvalidWorkflow(f"{where}.parameters must be a list")
    return parameters


def check_cron_workflow(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``workflowSpec`` of ``document``, once every field and variable in it is interpreted.

    A ``workflowSpec`` that is only a ``workflowTemplateRef`` is returned as it is.
    """
    if document.get("kind") != "CronWorkflow":
        raise UnsupportedFeature(f"kind {document.get('kind')!r}: only CronWorkflow is interpreted")
    _only(document, {"apiVersion", "kind", "metadata", "spec"}, "document")
    if not document.get("metadata", {}).get("name"):
        raise InvalidWorkflow("metadata.name is required")
    cron = _only(document.get("spec"), _CRON_SPEC_KEYS, "spec")
    if "workflowTemplateRef" in (cron.get("workflowSpec") or {}):
        return _only(cron["workflowSpec"], {"workflowTemplateRef"}, "spec.workflowSpec")
    return check_workflow_spec(cron.get("workflowSpec"), "spec.workflowSpec")


def check_workflow_spec(found: object, where: str = "spec") -> Mapping[str, Any]:
    """``found``, a workflow spec, once every field and variable in it is interpreted."""
    spec = _only(found, _WORKFLOW_SPEC_KEYS, where)
    templates = _templates(spec)
    mounts = _volumes(spec.get("volumes", []))
    declared_globals = {
        str(p["globalName"])
        for template in templates.values()
        for p in _parameters(template.get("outputs"), f"templates[{template['name']}].outputs")
        if "globalName" in p
    }
    entry, on_exit = str(spec.get("entrypoint")), spec.get("onExit")
    if "dag" not in templates.get(entry, {}):
        raise UnsupportedFeature(f"{where}.entrypoint must name a DAG template")
    if on_exit is not None and "container" not in templates.get(str(on_exit), {}):
        raise UnsupportedFeature(f"{where}.onExit must name a container template")
    _only(spec.get("synchronization", {}), _SYNCHRONIZATION_KEYS, f"{where}.synchronization")
    parameters = frozenset(_names(spec.get("arguments"), f"{where}.arguments"))
    for parameter in _parameters(spec.get("arguments"), f"{where}.arguments"):
        _only(parameter, {"name", "value"}, f"{where}.arguments.parameters[{parameter['name']}]")
    for name, template in templates.items():
        where = f"templates[{name}]"
        _only(template, _TEMPLATE_KEYS, where)
        if "dag" in template:
            _check_dag(template, templates, where, declared_globals, entry=name == entry)
        elif "container" in template:
            scope = _Scope(
                inputs=frozenset(_names(template.get("inputs"), f"{where}.inputs")),
                declared_globals=frozenset(declared_globals),
                exit_handler=name == on_exit,
                parameters=parameters,
            )
            _check_container_template(template, mounts, where, scope)
        else:
            raise UnsupportedFeature(f"{where}: only dag and container templates are interpreted")
    _check_no_recursion(templates)
    return spec


def _check_no_recursion(templates: Mapping[str, Mapping[str, Any]]) -> None:
    """DAG templates may call DAG templates, but never (through others) themselves."""
    calls = {
        name: {str(task.get("template")) for task in template["dag"].get("tasks", [])}
        for name, template in templates.items()
        if "dag" in template
    }
    for start, callees in calls.items():
        pending, seen = list(callees), set()
        while pending:
            callee = pending.pop()
            if callee == start:
                raise UnsupportedFeature(f"templates[{start}] calls itself: recursion")
            if callee not in seen:
                seen.add(callee)
                pending += calls.get(callee, set())


def _templates(spec: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    listed = spec.get("templates", [])
    templates = {str(t.get("name")): t for t in listed}
    if len(templates) != len(listed):
        raise InvalidWorkflow("template names must be unique")
    return templates


def _names(section: object, where: str) -> list[str]:
    return [str(p["name"]) for p in _parameters(section, where)]


def _volumes(volumes: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Each volume's name and kind (``emptyDir`` or ``configMap``)."""
    kinds = {}
    for i, volume in enumerate(volumes):
        where = f"spec.workflowSpec.volumes[{i}]"
        _only(volume, {"name", "emptyDir", "configMap"}, where)
        if "configMap" in volume:
            _only(volume["configMap"], {"name", "optional"}, f"{where}.configMap")
            kinds[str(volume["name"])] = "configMap"
        elif "emptyDir" in volume:
            kinds[str(volume["name"])] = "emptyDir"
        else:
            raise UnsupportedFeature(
                f"{where}: only emptyDir and configMap volumes are interpreted"
            )
    return kinds


def _check_dag(
    template: Mapping[str, Any],
    templates: Mapping[str, Mapping[str, Any]],
    where: str,
    declared_globals: set[str],
    *,
    entry: bool,
) -> None:
    dag = _only(template["dag"], {"tasks", "failFast"}, f"{where}.dag")
    if dag.get("failFast", True) is not False or template.get("failFast", False) is not False:
        raise UnsupportedFeature(f"{where}.dag.failFast: only failFast: false is interpreted")
    if "retryStrategy" in template:
        raise UnsupportedFeature(f"{where}.retryStrategy on a DAG template is not interpreted")
    if entry and "inputs" in template:
        raise UnsupportedFeature(f"{where}.inputs on the entrypoint (workflow arguments)")
    inputs = frozenset(_names(template.get("inputs"), f"{where}.inputs"))
    for parameter in _parameters(template.get("inputs"), f"{where}.inputs"):
        _only(parameter, {"name", "default", "description"}, f"{where}.inputs.parameters")
    if "memoize" in template:
        _check_memoize(template["memoize"], f"{where}.memoize")
        _check_variables(template["memoize"], _Scope(inputs=inputs), f"{where}.memoize")
    tasks = _dag_tasks(template)
    graph = _dependency_graph(tasks, where)
    task_outputs = {
        name: frozenset(_names(templates.get(str(task.get("template")), {}).get("outputs"), name))
        for name, task in tasks.items()
    }
    for parameter in _parameters(template.get("outputs"), f"{where}.outputs"):
        _only(parameter, {"name", "valueFrom", "globalName", "description"}, f"{where}.outputs")
        found = _only(parameter.get("valueFrom"), {"parameter", "default"}, f"{where}.outputs")
        if "parameter" not in found:
            raise UnsupportedFeature(f"{where}.outputs: a DAG's output needs valueFrom.parameter")
        scope = _Scope(inputs=inputs, tasks=task_outputs, declared_globals=frozenset())
        _check_variables(found, scope, f"{where}.outputs")
    for name, task in tasks.items():
        task_where = f"{where}.tasks[{name}]"
        _only(task, _TASK_KEYS, task_where)
        target = templates.get(str(task.get("template")))
        if target is None:
            raise InvalidWorkflow(f"{task_where}.template {task.get('template')!r} does not exist")
        if "container" not in target and "dag" not in target:
            raise UnsupportedFeature(f"{task_where}: a task must call a container or DAG template")
        _check_arguments(task, target, task_where)
        ancestors = _ancestors(name, graph)
        outputs = {a: task_outputs[a] for a in ancestors}
        scope = _Scope(inputs=inputs, tasks=outputs, declared_globals=frozenset(declared_globals))
        _check_variables(
            task.get("arguments", {}), scope.with_items("withParam" in task), task_where
        )
        _check_variables(task.get("withParam", ""), scope, f"{task_where}.withParam")


def _check_arguments(task: Mapping[str, Any], target: Mapping[str, Any], where: str) -> None:
    declared = set(_names(target.get("inputs"), f"{where}: inputs"))
    seen: set[str] = set()
    for parameter in _parameters(task.get("arguments"), f"{where}.arguments"):
        _only(parameter, {"name", "value"}, f"{where}.arguments.parameters")
        name = str(parameter.get("name"))
        if name not in declared:
            raise InvalidWorkflow(f"{where}: argument {name!r} is not an input of its template")
        if name in seen or "value" not in parameter:
            raise InvalidWorkflow(f"{where}: argument {name!r} is repeated or has no value")
        seen.add(name)


def _check_container_template(
    template: Mapping[str, Any], mounts: Mapping[str, str], where: str, scope: _Scope
) -> None:
    for key in ("failFast", "parallelism"):
        if key in template:
            raise UnsupportedFeature(f"{where}.{key} on a container template is not interpreted")
    container = _only(template["container"], _CONTAINER_KEYS, f"{where}.container")
    if not container.get("command"):
        raise UnsupportedFeature(f"{where}.container.command is required (no image entrypoint)")
    mount_paths = _check_mounts(container, mounts, f"{where}.container")
    _check_env(container, f"{where}.container")
    for parameter in _parameters(template.get("inputs"), f"{where}.inputs"):
        _only(parameter, {"name", "default", "description"}, f"{where}.inputs.parameters")
    for parameter in _parameters(template.get("outputs"), f"{where}.outputs"):
        _check_output(parameter, mount_paths, f"{where}.outputs.parameters")
    if "memoize" in template:
        _check_memoize(template["memoize"], f"{where}.memoize")
    if "retryStrategy" in template:
        _check_retry(template["retryStrategy"], f"{where}.retryStrategy")
    _only(template.get("synchronization", {}), _SYNCHRONIZATION_KEYS, f"{where}.synchronization")
    _check_variables({k: v for k, v in template.items() if k != "name"}, scope, where)


def _check_mounts(
    container: Mapping[str, Any], volumes: Mapping[str, str], where: str
) -> list[str]:
    """The container's emptyDir mount paths (the only places outputs can be written)."""
    paths = []
    for mount in container.get("volumeMounts", []):
        _only(mount, {"name", "mountPath", "readOnly"}, f"{where}.volumeMounts")
        kind = volumes.get(str(mount.get("name")))
        if kind is None:
            raise UnsupportedFeature(f"{where}.volumeMounts: {mount.get('name')!r} is no volume")
        if kind == "emptyDir":
            paths.append(str(mount["mountPath"]))
    return paths


def _check_env(container: Mapping[str, Any], where: str) -> None:
    for variable in container.get("env", []):
        _only(variable, {"name", "value", "valueFrom"}, f"{where}.env")
        if "valueFrom" in variable:
            allowed = {"secretKeyRef", "fieldRef"}
            source = _only(variable["valueFrom"], allowed, f"{where}.env.valueFrom")
            if "fieldRef" in source:
                field_ref = _only(source["fieldRef"], {"fieldPath"}, f"{where}.env.fieldRef")
                if not _ANNOTATION_FIELD.match(str(field_ref.get("fieldPath"))):
                    raise UnsupportedFeature(
                        f"{where}.env.fieldRef: only metadata.annotations['KEY'] is interpreted"
                    )
                continue
            _only(source["secretKeyRef"], {"name", "key", "optional"}, f"{where}.env.secretKeyRef")
    for source in container.get("envFrom", []):
        ref = _only(source, {"configMapRef"}, f"{where}.envFrom")["configMapRef"]
        _only(ref, {"name", "optional"}, f"{where}.envFrom.configMapRef")


def _check_output(parameter: Mapping[str, Any], mount_paths: list[str], where: str) -> None:
    _only(parameter, {"name", "valueFrom", "globalName", "description"}, where)
    value_from = _only(parameter.get("valueFrom"), {"path", "default"}, f"{where}.valueFrom")
    path = str(value_from.get("path", ""))
    if not any(_under(path, mount) for mount in mount_paths):
        raise UnsupportedFeature(f"{where}: output path {path!r} is not in an emptyDir mount")


def _check_memoize(memoize: object, where: str) -> None:
    found = _only(memoize, {"key", "maxAge", "cache"}, where)
    if "maxAge" not in found or "key" not in found:
        raise InvalidWorkflow(f"{where}: key and maxAge are required (Argo v4)")
    parse_go_duration(str(found["maxAge"]), f"{where}.maxAge")
    config_map = _only(_only(found.get("cache"), {"configMap"}, f"{where}.cache")["configMap"],
                       {"name", "key"}, f"{where}.cache.configMap")  # fmt: skip
    if not config_map.get("name"):
        raise InvalidWorkflow(f"{where}.cache.configMap.name is required")


def _check_retry(strategy: object, where: str) -> None:
    found = _only(strategy, {"limit", "retryPolicy", "expression", "backoff"}, where)
    if "limit" not in found:
        raise UnsupportedFeature(f"{where}: a retryStrategy without limit (retries forever)")
    if not re.fullmatch(r"\d+", str(found["limit"])):
        raise InvalidWorkflow(f"{where}.limit must be a number, not {found['limit']!r}")
    if found.get("retryPolicy", "OnFailure") not in _RETRY_POLICIES:
        raise UnsupportedFeature(f"{where}.retryPolicy {found.get('retryPolicy')!r}")
    if "expression" in found and not _RETRY_EXPRESSION.match(str(found["expression"])):
        raise UnsupportedFeature(f"{where}.expression {found['expression']!r}")
    backoff = _only(
        found.get("backoff", {}), {"duration", "factor", "maxDuration"}, f"{where}.backoff"
    )
    for key in ("duration", "maxDuration"):
        if key in backoff:
            text = str(backoff[key])
            _ = float(text) if text.isdigit() else parse_go_duration(text, f"{where}.backoff.{key}")


_GO_DURATION = re.compile(r"^[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$")
_GO_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_go_duration(text: str, where: str = "duration") -> float:
    """Seconds in a Go duration such as ``24h``, ``1h30m`` or ``15s`` (Go's ``time.ParseDuration``)."""
    if text in {"0", "+0", "-0"}:
        return 0.0
    if not _GO_DURATION.match(text):
        raise InvalidWorkflow(f"{where}: {text!r} is not a Go duration")
    seconds = sum(float(n) * _GO_UNITS[unit] for n, unit in _GO_DURATION_PART.findall(text))
    return -seconds if text.startswith("-") else seconds


# --- variables ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scope:
    """The variables a string may use where it stands."""

    inputs: frozenset[str] = frozenset()
    tasks: Mapping[str, frozenset[str]] = field(default_factory=dict)
    items: bool = False
    exit_handler: bool = False
    declared_globals: frozenset[str] = frozenset()
    parameters: frozenset[str] = frozenset()

    def with_items(self, items: bool) -> _Scope:
        """The same scope, with or without ``item`` variables."""
        return _Scope(
            self.inputs,
            self.tasks,
            items,
            self.exit_handler,
            self.declared_globals,
            self.parameters,
        )


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _check_variables(value: object, scope: _Scope, where: str) -> None:
    for text in _strings(value):
        for match in _TAG.finditer(text):
            _check_tag(match.group(1).strip(), scope, where)


_EXIT_HANDLER_GLOBALS = frozenset({"workflow.status", "workflow.failures", "workflow.duration"})


def _check_tag(tag: str, scope: _Scope, where: str) -> None:
    parts = tag.split(".")
    if tag.startswith("="):
        raise UnsupportedFeature(f"{where}: expression tag {{{{{tag}}}}} is not interpreted")
    if parts[0] == "tasks" and len(parts) == 5 and parts[2:4] == ["outputs", "parameters"]:
        if parts[4] not in scope.tasks.get(parts[1], frozenset()):
            raise InvalidWorkflow(f"{where}: {{{{{tag}}}}} names no output of an ancestor task")
        return
    known = (
        (parts[:2] == ["inputs", "parameters"] and len(parts) == 3 and parts[2] in scope.inputs)
        or (parts[0] == "item" and len(parts) <= 2 and scope.items)
        or tag in {"workflow.name", "workflow.namespace"}
        or (
            parts[:2] == ["workflow", "parameters"]
            and len(parts) == 3
            and parts[2] in scope.parameters
        )
        or (tag in _EXIT_HANDLER_GLOBALS and scope.exit_handler)
        or (
            parts[:3] == ["workflow", "outputs", "parameters"]
            and len(parts) == 4
            and parts[3] in scope.declared_globals
        )
    )
    if not known:
        raise UnsupportedFeature(f"{where}: variable {{{{{tag}}}}} is not interpreted here")


class _Unresolved(Exception):
    """A tag that has no value where it stands."""

    def __init__(self, tag: str) -> None:
        super().__init__(f"failed to resolve {{{{{tag}}}}}")
        self.tag = tag


def _substitute(text: str, lookup: Callable[[str], str | None]) -> str:
    """One pass of Argo's substitution: each tag once, values never scanned again.

    ``lookup`` returns the value, None to leave the tag as it is, or raises :class:`_Unresolved`.
    """
    pieces, position = [], 0
    for match in _TAG.finditer(text):
        value = lookup(match.group(1).strip())
        pieces += [text[position : match.start()], match.group(0) if value is None else value]
        position = match.end()
    return "".join([*pieces, text[position:]])


def _strict(lookup: Callable[[str], str | None]) -> Callable[[str], str]:
    def strict(tag: str) -> str:
        value = lookup(tag)
        if value is None:
            raise _Unresolved(tag)
        return value

    return strict


def _text(value: object) -> str:
    """A YAML scalar as Argo's AnyString holds it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- depends -----------------------------------------------------------------------------------

_DEPENDS_TOKEN = re.compile(r"\s*(&&|\|\||!|\(|\)|[A-Za-z0-9_][-A-Za-z0-9_]*(?:\.[A-Za-z]+)?)")
_Expression = tuple[Any, ...]


def _tokens(text: str, where: str) -> list[str]:
    tokens, position, text = [], 0, text.strip()
    while position < len(text):
        match = _DEPENDS_TOKEN.match(text, position)
        if match is None:
            raise InvalidWorkflow(f"{where}: cannot parse depends {text!r}")
        tokens.append(match.group(1))
        position = match.end()
    return tokens


def parse_depends(text: str, where: str = "depends") -> _Expression:
    """``depends`` as a tree of ("or"|"and", a, b), ("not", a), ("atom", task, result|None)."""
    tokens = _tokens(text, where)
    expression, rest = _parse_or(tokens, where)
    if rest:
        raise InvalidWorkflow(f"{where}: unexpected {rest[0]!r} in depends {text!r}")
    return expression


def _parse_or(tokens: list[str], where: str) -> tuple[_Expression, list[str]]:
    left, tokens = _parse_and(tokens, where)
    while tokens[:1] == ["||"]:
        right, tokens = _parse_and(tokens[1:], where)
        left = ("or", left, right)
    return left, tokens


def _parse_and(tokens: list[str], where: str) -> tuple[_Expression, list[str]]:
    left, tokens = _parse_unary(tokens, where)
    while tokens[:1] == ["&&"]:
        right, tokens = _parse_unary(tokens[1:], where)
        left = ("and", left, right)
    return left, tokens


def _parse_unary(tokens: list[str], where: str) -> tuple[_Expression, list[str]]:
    if not tokens:
        raise InvalidWorkflow(f"{where}: depends ends early")
    head, rest = tokens[0], tokens[1:]
    if head == "!":
        inner, rest = _parse_unary(rest, where)
        return ("not", inner), rest
    if head == "(":
        inner, rest = _parse_or(rest, where)
        if rest[:1] != [")"]:
            raise InvalidWorkflow(f"{where}: unbalanced parentheses in depends")
        return inner, rest[1:]
    if head in {"&&", "||", ")"}:
        raise InvalidWorkflow(f"{where}: unexpected {head!r} in depends")
    task, _, result = head.partition(".")
    if result and result not in _RESULTS:
        raise InvalidWorkflow(f"{where}: unknown task result {result!r} in depends")
    return ("atom", task, result or None), rest


def _atoms(expression: _Expression) -> Iterator[str]:
    if expression[0] == "atom":
        yield expression[1]
    else:
        for part in expression[1:]:
            yield from _atoms(part)


def _evaluate(expression: _Expression, results: Mapping[str, Mapping[str, bool]]) -> bool:
    kind = expression[0]
    if kind == "atom":
        flags = results[expression[1]]
        if expression[2] is None:  # a bare name: Argo's (X.Succeeded || X.Skipped || X.Daemoned)
            return flags["Succeeded"] or flags["Skipped"] or flags["Daemoned"]
        return flags[expression[2]]
    if kind == "not":
        return not _evaluate(expression[1], results)
    left = _evaluate(expression[1], results)
    if kind == "and":
        return left and _evaluate(expression[2], results)
    return left or _evaluate(expression[2], results)


def depends_holds(expression: str, phases: Mapping[str, str]) -> bool:
    """Whether ``depends: expression`` lets a task run once its dependencies ended in ``phases``."""
    results = {name: _TaskState(phase, {}).results() for name, phase in phases.items()}
    return _evaluate(parse_depends(expression), results)


def _task_depends(task: Mapping[str, Any], where: str) -> _Expression | None:
    if "depends" in task and "dependencies" in task:
        raise InvalidWorkflow(f"{where}: depends and dependencies cannot both be set")
    if "depends" in task:
        return parse_depends(str(task["depends"]), where)
    dependencies = [str(d) for d in task.get("dependencies", [])]
    if not dependencies:
        return None
    expression: _Expression = ("atom", dependencies[0], None)
    for name in dependencies[1:]:
        expression = ("and", expression, ("atom", name, None))
    return expression


def _dag_tasks(template: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    listed = template["dag"].get("tasks", [])
    tasks = {str(t.get("name")): t for t in listed}
    if len(tasks) != len(listed):
        raise InvalidWorkflow(f"templates[{template['name']}]: task names must be unique")
    return tasks


def _dependency_graph(tasks: Mapping[str, Mapping[str, Any]], where: str) -> dict[str, list[str]]:
    graph = {}
    for name, task in tasks.items():
        expression = _task_depends(task, f"{where}.tasks[{name}]")
        parents = sorted(set(_atoms(expression))) if expression else []
        for parent in parents:
            if parent not in tasks:
                raise InvalidWorkflow(f"{where}.tasks[{name}] depends on unknown task {parent!r}")
        graph[name] = parents
    _topological_order(graph, where)
    return graph


def _topological_order(graph: Mapping[str, list[str]], where: str) -> list[str]:
    """Tasks in dependency order; declaration order breaks ties."""
    order: list[str] = []
    while len(order) < len(graph):
        ready = [n for n in graph if n not in order and all(p in order for p in graph[n])]
        if not ready:
            raise InvalidWorkflow(f"{where}: the tasks' dependencies form a cycle")
        order.append(ready[0])
    return order


def _ancestors(name: str, graph: Mapping[str, list[str]]) -> set[str]:
    found: set[str] = set()
    pending = list(graph[name])
    while pending:
        parent = pending.pop()
        if parent not in found:
            found.add(parent)
            pending += graph[parent]
    return found


def _under(path: str, mount: str) -> bool:
    return path == mount or path.startswith(mount.rstrip("/") + "/")


# --- withParam items, formatted as Go formats them ---------------------------------------------

_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_GO_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}  # fmt: skip
_GO_HTML_TABLE = str.maketrans(_GO_HTML_ESCAPES)


@dataclass(frozen=True)
class _Item:
    """One withParam item: its raw JSON text and, for an object, each member's raw text."""

    raw: str
    members: dict[str, str] | None

    def text(self) -> str:
        """``{{item}}``: Go's ``json.Marshal`` of the item (keys sorted) or a scalar's String()."""
        if self.members is None:
            return _go_item_string(self.raw)
        pairs = [f"{_go_string(k)}:{_go_compact(self.members[k])}" for k in sorted(self.members)]
        return "{" + ",".join(pairs) + "}"

    def lookup(self, tag: str) -> str | None:
        """``item`` or ``item.KEY`` (a string member keeps its JSON escapes, as in Argo)."""
        if tag == "item":
            return self.text()
        key = tag.removeprefix("item.")
        if tag.startswith("item.") and self.members is not None and key in self.members:
            return _go_item_string(self.members[key])
        return None

    def describe(self) -> str:
        """The node name's part after the index: ``key:value`` pairs sorted, no parentheses."""
        if self.members is None:
            text = _go_item_string(self.raw)
        else:
            text = ",".join(sorted(f"{k}:{_go_item_string(v)}" for k, v in self.members.items()))
        return text.replace("(", "").replace(")", "")


def _go_compact(raw: str) -> str:
    """Go's ``json.Compact`` with HTML escaping, as ``json.Marshal`` applies it to raw JSON."""
    out, in_string, escaped = [], False, False
    for char in raw:
        if in_string:
            out.append(_GO_HTML_ESCAPES.get(char, char))
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char not in " \t\n\r":
            in_string = char == '"'
            out.append(char)
    return "".join(out)


def _go_item_string(raw: str) -> str:
    """Argo's ``Item.String()``: the marshalled JSON, a string's quotes taken off (escapes kept)."""
    compact = _go_compact(raw)
    return compact[1:-1] if compact.startswith('"') else compact


def _go_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False).translate(_GO_HTML_TABLE)


def _go_json(value: object) -> str:
    """Go's ``json.Marshal`` of decoded JSON: compact, keys sorted, HTML escaped, float64 numbers."""
    text = json.dumps(_go_numbers(value), ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return text.translate(_GO_HTML_TABLE)


def _go_numbers(value: object) -> object:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        number = float(value)
        return int(number) if number.is_integer() and abs(number) < 1e21 else number
    if isinstance(value, list):
        return [_go_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: _go_numbers(v) for k, v in value.items()}
    return value


def _skip(text: str, position: int) -> int:
    match = _WHITESPACE.match(text, position)
    return match.end() if match else position


def parse_items(text: str) -> list[_Item]:
    """A withParam value's items with their raw text (ValueError if it is not a JSON list)."""
    if not isinstance(json.loads(text), list):
        raise ValueError(f"withParam value could not be parsed as a JSON list: {text.strip()}")
    items: list[_Item] = []
    position = _skip(text, _skip(text, 0) + 1)
    while text[position] != "]":
        value, end = _DECODER.raw_decode(text, position)
        if value is None:
            raise ValueError(f"withParam[{len(items)}] expected string, number, list, or map")
        if isinstance(value, list):
            raise UnsupportedFeature("withParam items that are JSON lists")
        raw = text[position:end]
        items.append(_Item(raw, _members(text, position) if isinstance(value, dict) else None))
        position = _skip(text, end)
        if text[position] == ",":
            position = _skip(text, position + 1)
    return items


def _members(text: str, position: int) -> dict[str, str]:
    members: dict[str, str] = {}
    position = _skip(text, position + 1)
    while text[position] != "}":
        key, position = _DECODER.raw_decode(text, position)
        position = _skip(text, _skip(text, position) + 1)  # past the colon
        _, end = _DECODER.raw_decode(text, position)
        members[str(key)] = text[position:end]
        position = _skip(text, end)
        if text[position] == ",":
            position = _skip(text, position + 1)
    return members


def _aggregate(children: Sequence[NodeRun]) -> dict[str, str]:
    """Argo's aggregated outputs of a fan-out: per output, the succeeded children's values.

    In item order; a JSON list of the parsed values when every value is a JSON object or list,
    else a JSON list of the strings. Children that did not succeed contribute nothing, and an
    output no succeeded child has is not set at all (Argo v4 ``processAggregateNodeOutputs``).
    """
    values: dict[str, list[str]] = {}
    for child in children:
        if child.phase == SUCCEEDED:
            for name, value in child.outputs.items():
                values.setdefault(name, []).append(value)
    return {name: _aggregated_list(found) for name, found in values.items()}


def _aggregated_list(values: list[str]) -> str:
    parsed = []
    for value in values:
        try:
            decoded = json.loads(value)
        except ValueError:
            return _go_json(values)
        if not isinstance(decoded, dict | list):
            return _go_json(values)
        parsed.append(decoded)
    return _go_json(parsed)


# --- running -----------------------------------------------------------------------------------


class _Stuck(Exception):
    """Argo would requeue the task forever: a reference that can never resolve."""


class _Absent(Exception):
    """A skipped or omitted producer's output that declares no default (absent, not empty)."""

    def __init__(self, tag: str) -> None:
        super().__init__(tag)
        self.tag = tag


class _PodError(Exception):
    """The pod cannot start (Kubernetes' CreateContainerConfigError and the like)."""


@dataclass
class _TaskState:
    phase: str
    template: Mapping[str, Any]
    outputs: dict[str, str] = field(default_factory=dict)
    children: list[NodeRun] | None = None

    def results(self) -> dict[str, bool]:
        """The flags a ``depends`` expression reads (Argo's TaskResults)."""
        children = self.children or []
        return {
            "Succeeded": self.phase == SUCCEEDED,
            "Failed": self.phase == FAILED,
            "Errored": self.phase == ERROR,
            "Skipped": self.phase == SKIPPED,
            "Omitted": self.phase == OMITTED,
            "Daemoned": False,
            "AnySucceeded": any(c.phase == SUCCEEDED for c in children),
            "AllFailed": bool(children) and all(c.phase == FAILED for c in children),
        }


@dataclass
class _PodResult:
    phase: str
    outputs: dict[str, str] = field(default_factory=dict)
    exit_code: int | None = None
    stderr: str = ""
    message: str = ""


class _Run:
    """One run of a checked workflow spec."""

    def __init__(
        self,
        spec: Mapping[str, Any],
        *,
        name: str,
        namespace: str,
        env: dict[str, str],
        secrets: dict[tuple[str, str], str],
        memo: MemoCache | None,
        now: float | None,
        command_prefix: tuple[str, ...],
        workers: int,
        pods: PodRunner,
        semaphore_limits: Mapping[tuple[str, str], int],
        config_maps: Mapping[str, Mapping[str, str]],
        arguments: Mapping[str, str] = {},
    ) -> None:
        self.spec = spec
        self.parameters = {
            str(p["name"]): _text(p.get("value", ""))
            for p in _parameters(spec.get("arguments"), "arguments")
        } | dict(arguments)
        self.config_maps = config_maps
        self.volumes = {str(v["name"]): v for v in spec.get("volumes", [])}
        self.annotations = {
            str(k): str(v)
            for k, v in (spec.get("podMetadata", {}).get("annotations") or {}).items()
        }
        self.templates = _templates(spec)
        self.name = name
        self.namespace = namespace
        self.env = env
        self.secrets = secrets
        self.memo = memo
        self.now = now
        self.command_prefix = command_prefix
        self.workers = workers
        self.pods = pods
        self.semaphore_limits = semaphore_limits
        self.semaphores: dict[tuple[str, str], threading.Semaphore] = {}
        self.nodes: list[NodeRun] = []
        self.global_outputs: dict[str, str] = {}
        self.exit_globals: dict[str, str] = {}
        self.stuck: str | None = None
        self.lock = threading.Lock()
        self.started = self.clock()

    def clock(self) -> float:
        return self.now if self.now is not None else time.time()

    def execute(self) -> WorkflowRun:
        phase, _ = self._run_dag(self.templates[str(self.spec["entrypoint"])], {}, "")
        message = ""
        if self.stuck is not None:
            deadline = self.spec.get("activeDeadlineSeconds")
            if deadline is None:
                raise WorkflowStuck(self.stuck)
            phase = FAILED
            message = (
                f"{self.stuck}: Argo waits until activeDeadlineSeconds ({deadline}) fails the run"
            )
        on_exit = self.spec.get("onExit")
        if on_exit is not None:
            handler = self._run_exit(str(on_exit), phase)
            if phase == SUCCEEDED and handler.phase in FAILED_OR_ERROR:
                phase, message = handler.phase, f"exit handler: {handler.message}"
        return WorkflowRun(phase, list(self.nodes), dict(self.global_outputs), message, self.name)

    def _record(self, *nodes: NodeRun) -> None:
        with self.lock:
            self.nodes.extend(nodes)

    def workflow_document(self, name: str) -> dict[str, Any] | None:
        """This run's Workflow as the API returns it, its nodes as they stand; else None.

        Each finished node becomes one entry of ``status.nodes`` (Argo's ``NodeStatus`` fields
        ``id``, ``name``, ``displayName``, ``type``, ``templateName``, ``phase``, ``message``).
        """
        if name != self.name:
            return None
        with self.lock:
            finished = list(self.nodes)
        nodes = {
            f"{self.name}-{index}": {
                "id": f"{self.name}-{index}",
                "name": node.name,
                "displayName": node.name,
                "type": node.kind,
                "templateName": node.template,
                "phase": node.phase,
                "message": node.message,
            }
            for index, node in enumerate(finished)
        }
        metadata = {"name": self.name, "namespace": self.namespace}
        kind = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow"}
        return kind | {"metadata": metadata, "status": {"phase": "Running", "nodes": nodes}}

    # the DAG

    def _run_dag(
        self, template: Mapping[str, Any], inputs: Mapping[str, str], prefix: str
    ) -> tuple[str, dict[str, _TaskState]]:
        """Run a DAG's tasks; ``prefix`` names its nodes (``settle(0:...).decide``)."""
        where = f"templates[{template['name']}]"
        tasks = _dag_tasks(template)
        graph = _dependency_graph(tasks, where)
        order = _topological_order(graph, where)
        states: dict[str, _TaskState] = {}
        for name in order:
            if self.stuck is not None:
                return FAILED, states
            try:
                states[name] = self._run_task(
                    tasks[name], graph, states, self._pool_size(template), inputs, prefix
                )
            except _Stuck as exc:
                self.stuck = f"task {prefix + name}: {exc}"
                return FAILED, states
        return _dag_phase(graph, order, states), states

    def _pool_size(self, template: Mapping[str, Any]) -> int:
        sizes = [self.workers]
        for owner in (template, self.spec):
            if "parallelism" in owner:
                sizes.append(int(owner["parallelism"]))
        return max(1, min(sizes))

    def _run_task(
        self,
        task: Mapping[str, Any],
        graph: Mapping[str, list[str]],
        states: Mapping[str, _TaskState],
        pool: int,
        inputs: Mapping[str, str],
        prefix: str,
    ) -> _TaskState:
        name, template = str(task["name"]), self.templates[str(task["template"])]
        node_name = prefix + name
        expression = _task_depends(task, name)
        results = {parent: states[parent].results() for parent in graph[name]}
        if expression is not None and not _evaluate(expression, results):
            return self._task_node(
                node_name, template, OMITTED, "omitted: depends condition not met"
            )
        scope = _task_scope(_ancestors(name, graph), states)
        lookup = self._task_lookup(scope, inputs)
        try:
            arguments = self._task_arguments(task, template, lookup)
            with_param = (
                _substitute(_text(task["withParam"]), lookup) if "withParam" in task else None
            )
        except _Absent as exc:
            message = f"failed to resolve {{{{{exc.tag}}}}}: its task was skipped, no default"
            return self._task_node(node_name, template, ERROR, message)
        if with_param is None:
            node = self._run_node(node_name, template, arguments)
            self._record(node)
            return _TaskState(node.phase, template, node.outputs)
        return self._fan_out(node_name, template, arguments, with_param, pool)

    def _task_node(
        self, name: str, template: Mapping[str, Any], phase: str, message: str
    ) -> _TaskState:
        """A task that starts no pod: omitted, skipped, or errored before its pods."""
        self._record(NodeRun(name, str(template["name"]), phase, message=message, kind="Skipped"))
        return _TaskState(phase, template)

    def _task_arguments(
        self,
        task: Mapping[str, Any],
        template: Mapping[str, Any],
        lookup: Callable[[str], str | None],
    ) -> dict[str, str]:
        """The arguments with task and workflow references resolved (item tags stay for later)."""
        defaulted = {
            str(p["name"]) for p in _parameters(template.get("inputs"), "inputs") if "default" in p
        }
        arguments = {}
        for parameter in _parameters(task.get("arguments"), "arguments"):
            name, value = str(parameter["name"]), _text(parameter["value"])
            try:
                arguments[name] = _substitute(value, lookup)
            except _Absent:
                # Argo v4 drops an argument that is exactly one absent reference, so the
                # consumer's input default applies; anywhere else the consumer fails.
                if not (_TAG.fullmatch(value) and name in defaulted):
                    raise
        return arguments

    def _task_lookup(
        self, scope: Mapping[str, str | None], inputs: Mapping[str, str]
    ) -> Callable[[str], str | None]:
        def lookup(tag: str) -> str | None:
            if tag == "item" or tag.startswith("item."):
                return None  # resolved when the task is expanded
            if tag.startswith("inputs.parameters."):
                return inputs[tag.removeprefix("inputs.parameters.")]  # checked: declared
            if tag.startswith("tasks."):
                if tag not in scope:
                    raise _Stuck(f"{{{{{tag}}}}} can never resolve")
                value = scope[tag]
                if value is None:
                    raise _Absent(tag)
                return value
            value = self._global_lookup(exit_handler=False)(tag)
            if value is None:
                raise UnsupportedFeature(f"an unset {{{{{tag}}}}} in a task's arguments")
            return value

        return lookup

    def _fan_out(
        self,
        name: str,
        template: Mapping[str, Any],
        arguments: Mapping[str, str],
        with_param: str,
        pool: int,
    ) -> _TaskState:
        try:
            items = parse_items(with_param)
        except json.JSONDecodeError:
            message = f"withParam value could not be parsed as a JSON list: {with_param.strip()}"
            return self._task_node(name, template, ERROR, message)
        except ValueError as exc:
            return self._task_node(name, template, ERROR, str(exc))
        if not items:
            return self._task_node(name, template, SKIPPED, "Skipped, empty params")
        try:  # Argo expands strictly: any tag still unresolved errors the whole task
            expanded = [
                (
                    f"{name}({index}:{item.describe()})",
                    {
                        k: _substitute(v, _strict(self._item_lookup(item)))
                        for k, v in arguments.items()
                    },
                )
                for index, item in enumerate(items)
            ]
        except _Unresolved as exc:
            return self._task_node(name, template, ERROR, str(exc))
        with ThreadPoolExecutor(max_workers=pool) as executor:
            children = list(executor.map(lambda c: self._run_node(c[0], template, c[1]), expanded))
        phase = SUCCEEDED
        for child in children:
            phase = child.phase if child.phase in FAILED_OR_ERROR else phase
        outputs = _aggregate(children)
        group = NodeRun(name, str(template["name"]), phase, outputs=outputs, kind="TaskGroup")
        self._record(group, *children)
        return _TaskState(phase, template, outputs, children)

    def _item_lookup(self, item: _Item) -> Callable[[str], str | None]:
        def lookup(tag: str) -> str | None:
            if tag == "item" or tag.startswith("item."):
                return item.lookup(tag)
            return self._global_lookup(exit_handler=False)(tag)

        return lookup

    def _global_lookup(self, *, exit_handler: bool) -> Callable[[str], str | None]:
        def lookup(tag: str) -> str | None:
            if tag == "workflow.name":
                return self.name
            if tag == "workflow.namespace":
                return self.namespace
            if tag.startswith("workflow.parameters."):
                return self.parameters.get(tag.removeprefix("workflow.parameters."))
            if tag.startswith("workflow.outputs.parameters."):
                with self.lock:
                    return self.global_outputs.get(tag.removeprefix("workflow.outputs.parameters."))
            return self.exit_globals.get(tag) if exit_handler else None

        return lookup

    # one node: inputs, memoization, then a pod (with retries) or a nested DAG

    def _run_node(
        self,
        name: str,
        template: Mapping[str, Any],
        arguments: Mapping[str, str],
        *,
        exit_handler: bool = False,
    ) -> NodeRun:
        template_name = str(template["name"])
        inputs: dict[str, str] = {}
        for parameter in _parameters(template.get("inputs"), "inputs"):
            key = str(parameter["name"])
            if key not in arguments and "default" not in parameter:
                message = f"inputs.parameters.{key} was not supplied"
                return NodeRun(name, template_name, ERROR, message=message, inputs=inputs)
            value = arguments[key] if key in arguments else _text(parameter["default"])
            # Argo's first substitution pass (globals) runs over the inputs' values as well.
            inputs[key] = _substitute(value, self._global_lookup(exit_handler=exit_handler))
        memoize = template.get("memoize")
        if memoize is None:
            node = self._run_body(name, template, inputs, exit_handler)
        else:
            node = self._run_memoized(name, template, inputs, exit_handler, memoize)
        if node.phase == SUCCEEDED:
            self._export(template, node)
        return node

    def _run_body(
        self, name: str, template: Mapping[str, Any], inputs: dict[str, str], exit_handler: bool
    ) -> NodeRun:
        with self._synchronized(template):
            if "dag" in template:
                return self._run_nested_dag(name, template, inputs)
            return self._run_attempts(name, template, inputs, exit_handler)

    @contextlib.contextmanager
    def _synchronized(self, template: Mapping[str, Any]) -> Iterator[None]:
        """Hold the template's semaphores (their limit: ``semaphore_limits``, else 1) and mutexes."""
        held: list[threading.Semaphore] = []
        try:
            for lock in self._locks(template.get("synchronization") or {}):
                lock.acquire()
                held.append(lock)
            yield
        finally:
            for lock in reversed(held):
                lock.release()

    def _locks(self, synchronization: Mapping[str, Any]) -> list[threading.Semaphore]:
        names: list[tuple[str, str]] = []
        for ref in [*synchronization.get("semaphores", []), synchronization.get("semaphore")]:
            selector = (ref or {}).get("configMapKeyRef")
            if selector:
                names.append((str(selector["name"]), str(selector["key"])))
        for mutex in [*synchronization.get("mutexes", []), synchronization.get("mutex")]:
            if mutex:
                names.append(("mutex", str(mutex["name"])))
        with self.lock:
            for found in names:
                limit = 1 if found[0] == "mutex" else self.semaphore_limits.get(found, 1)
                self.semaphores.setdefault(found, threading.Semaphore(limit))
            return [self.semaphores[found] for found in sorted(set(names))]

    def _run_nested_dag(
        self, name: str, template: Mapping[str, Any], inputs: dict[str, str]
    ) -> NodeRun:
        """A task calling a DAG template: its tasks run as ``name.task``; then its outputs."""
        template_name = str(template["name"])
        phase, states = self._run_dag(template, inputs, f"{name}.")
        if phase != SUCCEEDED:
            message = "child failed" if phase in FAILED_OR_ERROR else ""
            return NodeRun(name, template_name, phase, message=message, inputs=inputs, kind="DAG")
        try:
            outputs = self._dag_outputs(template, states, inputs)
        except _Unresolved as exc:
            message = f"unable to resolve outputs from scope: {exc}"
            return NodeRun(name, template_name, ERROR, message=message, inputs=inputs, kind="DAG")
        return NodeRun(name, template_name, SUCCEEDED, outputs, inputs=inputs, kind="DAG")

    def _dag_outputs(
        self,
        template: Mapping[str, Any],
        states: Mapping[str, _TaskState],
        inputs: Mapping[str, str],
    ) -> dict[str, str]:
        """Argo's ``getTemplateOutputsFromScope``: each ``valueFrom.parameter`` from the DAG's
        tasks (any of them) and inputs; an output that cannot resolve takes its default."""
        scope = _task_scope(set(states), states)

        def lookup(tag: str) -> str | None:
            if tag.startswith("inputs.parameters."):
                return inputs.get(tag.removeprefix("inputs.parameters."))
            if tag.startswith("tasks."):
                return scope.get(tag)
            return self._global_lookup(exit_handler=False)(tag)

        outputs = {}
        for parameter in _parameters(template.get("outputs"), "outputs"):
            value_from = parameter["valueFrom"]
            try:
                outputs[str(parameter["name"])] = _substitute(
                    _text(value_from["parameter"]), _strict(lookup)
                )
            except _Unresolved:
                if "default" not in value_from:
                    raise
                outputs[str(parameter["name"])] = _text(value_from["default"])
        return outputs

    def _run_memoized(
        self,
        name: str,
        template: Mapping[str, Any],
        inputs: dict[str, str],
        exit_handler: bool,
        memoize: Mapping[str, Any],
    ) -> NodeRun:
        template_name = str(template["name"])
        kind = "DAG" if "dag" in template else "Pod"
        key = self._pod_text(_text(memoize["key"]), inputs, exit_handler)
        config_map = self._pod_text(
            str(memoize["cache"]["configMap"]["name"]), inputs, exit_handler
        )
        problem = None
        if not MEMO_KEY.match(key):
            problem = f"invalid memoization key {key!r}: it must match {MEMO_KEY.pattern}"
        elif not (_CONFIG_MAP_NAME.match(config_map) and len(config_map) <= 253):
            problem = f"memoization cache {config_map!r} is no valid ConfigMap name"
        if problem:
            return NodeRun(name, template_name, ERROR, message=problem, inputs=inputs, kind=kind)
        max_age = parse_go_duration(str(memoize["maxAge"]))
        cached = self.memo.load(config_map, key, max_age, self.clock()) if self.memo else None
        if cached is not None:
            return NodeRun(name, template_name, SUCCEEDED, cached, True, inputs=inputs, kind=kind)
        node = self._run_body(name, template, inputs, exit_handler)
        if node.phase == SUCCEEDED and self.memo is not None:  # outputs are saved on success only
            try:
                self.memo.save(config_map, key, self._node_id(name), template, node, self.clock())
            except MemoCacheFull as exc:  # Argo: "Failed to save node outputs to cache"
                node.phase, node.message = ERROR, str(exc)
        return node

    def _node_id(self, name: str) -> str:
        """A node ID shaped like Argo's: the workflow's name and a 10-digit hash of the node's."""
        return f"{self.name}-{zlib.crc32(name.encode()) % 10**10:010d}"

    def _export(self, template: Mapping[str, Any], node: NodeRun) -> None:
        """Outputs with a ``globalName`` become ``workflow.outputs.parameters.*``."""
        for parameter in _parameters(template.get("outputs"), "outputs"):
            if "globalName" in parameter and parameter["name"] in node.outputs:
                with self.lock:
                    self.global_outputs[str(parameter["globalName"])] = node.outputs[
                        parameter["name"]
                    ]

    def _run_attempts(
        self, name: str, template: Mapping[str, Any], inputs: dict[str, str], exit_handler: bool
    ) -> NodeRun:
        strategy = template.get("retryStrategy") or {}
        limit = int(str(strategy.get("limit", 0)))
        retried = _RETRY_POLICIES[str(strategy.get("retryPolicy", "OnFailure"))]
        expected = _RETRY_EXPRESSION.match(str(strategy.get("expression", "")))
        attempts = 0
        while True:  # backoff is recorded by counting attempts, never slept
            result = self._run_pod(template, inputs, exit_handler)
            attempts += 1
            wanted = expected is None or result.exit_code == int(expected.group(1))
            if result.phase not in retried or attempts > limit or not wanted:
                break
        return NodeRun(
            name,
            str(template["name"]),
            result.phase,
            result.outputs,
            exit_code=result.exit_code,
            attempts=attempts,
            stderr=result.stderr,
            message=result.message,
            inputs=inputs,
        )

    # one pod

    def _run_pod(
        self, template: Mapping[str, Any], inputs: Mapping[str, str], exit_handler: bool
    ) -> _PodResult:
        container = template["container"]
        with tempfile.TemporaryDirectory(prefix="pod-") as root:
            mounts = _mount_dirs(container, Path(root))
            try:
                self._fill_config_maps(container, mounts)
                env = self._pod_env(container, inputs, exit_handler, mounts)
            except _PodError as exc:
                return _PodResult(ERROR, message=str(exc))
            argv = [
                self._pod_text(_rewrite(_text(arg), mounts), inputs, exit_handler)
                for arg in [*container["command"], *container.get("args", [])]
            ]
            if argv[0] == "ai-operator" and not self.pods.runs_ai_operator:
                argv = [*self.command_prefix, *argv[1:]]
            strings = [*argv, *(f"{k}={v}" for k, v in env.items())]
            too_long = [
                len(text.encode()) for text in strings if len(text.encode()) >= MAX_ARG_STRLEN
            ]
            if too_long:  # Linux refuses the exec: the container never starts
                message = f"argument list too long: a string of {too_long[0]} bytes (E2BIG)"
                return _PodResult(FAILED, message=message)
            termination_log = Path(root) / "termination-log"
            env[TERMINATION_LOG_VARIABLE] = str(termination_log)
            try:
                code, stderr = self.pods(argv, env, root, POD_TIMEOUT_SECONDS)
            except FileNotFoundError:
                return _PodResult(ERROR, message=f"executable {argv[0]!r} not found")
            except subprocess.TimeoutExpired:
                return _PodResult(FAILED, message=f"killed after {POD_TIMEOUT_SECONDS} s")
            outputs, problem = _read_outputs(template, mounts, code == 0)
            terminated = _termination_message(termination_log)
        if code != 0:
            message = f"Error (exit code {code})" + (f": {terminated}" if terminated else "")
            return _PodResult(FAILED, outputs, code, stderr, message)
        return _PodResult(ERROR if problem else SUCCEEDED, outputs, code, stderr, problem or "")

    def _fill_config_maps(self, container: Mapping[str, Any], mounts: Mapping[str, Path]) -> None:
        """Write each mounted ConfigMap's data as files, as the kubelet does."""
        for mount in container.get("volumeMounts", []):
            source = self.volumes[str(mount["name"])].get("configMap")
            if source is None:
                continue
            data = self.config_maps.get(str(source["name"]))
            if data is None and not source.get("optional", False):
                raise _PodError(f'FailedMount: configmap "{source["name"]}" not found')
            directory = mounts[str(mount["mountPath"]).rstrip("/") or "/"]
            for key, value in (data or {}).items():
                (directory / key).write_text(value, encoding="utf-8")

    def _pod_env(
        self,
        container: Mapping[str, Any],
        inputs: Mapping[str, str],
        exit_handler: bool,
        mounts: Mapping[str, Path],
    ) -> dict[str, str]:
        env = dict(self.env)  # stands for the envFrom ConfigMap
        for variable in container.get("env", []):
            name = str(variable["name"])
            if "valueFrom" not in variable:
                value = _rewrite(_text(variable.get("value", "")), mounts)
                env[name] = self._pod_text(value, inputs, exit_handler)
                continue
            if "fieldRef" in variable["valueFrom"]:
                path = str(variable["valueFrom"]["fieldRef"]["fieldPath"])
                found = _ANNOTATION_FIELD.match(path)
                env[name] = self.annotations.get(found["key"], "") if found else ""
                continue
            ref = variable["valueFrom"]["secretKeyRef"]
            secret = (str(ref["name"]), str(ref["key"]))
            if secret in self.secrets:
                env[name] = self.secrets[secret]
            elif not ref.get("optional", False):
                raise _PodError(
                    f"CreateContainerConfigError: couldn't find key {secret[1]} in Secret {secret[0]}"
                )
        return env

    def _pod_text(self, text: str, inputs: Mapping[str, str], exit_handler: bool) -> str:
        """Argo's ``substituteParams``: a pass for globals, then one for inputs.

        Unknown tags stay as they are: Argo leaves, for example, the exit handler's
        ``{{workflow.outputs.parameters.G}}`` as literal text when no node set it.
        """
        first = _substitute(text, self._global_lookup(exit_handler=exit_handler))

        def input_value(tag: str) -> str | None:
            prefix = "inputs.parameters."
            return inputs.get(tag.removeprefix(prefix)) if tag.startswith(prefix) else None

        return _substitute(first, input_value)

    def _run_exit(self, template_name: str, phase: str) -> NodeRun:
        failures = [
            {
                "displayName": n.name,
                "message": n.message,
                "templateName": n.template,
                "phase": n.phase,
                "podName": n.name,
                "finishedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock())),
            }
            for n in self.nodes
            if n.phase in FAILED_OR_ERROR
        ]
        marshalled = json.dumps(failures or None, ensure_ascii=False, separators=(",", ":"))
        self.exit_globals = {
            "workflow.duration": f"{max(0.0, self.clock() - self.started):.6f}",
            "workflow.status": phase,
            "workflow.failures": json.dumps(marshalled, ensure_ascii=False),  # strconv.Quote
        }
        node = self._run_node(
            f"{self.name}.onExit", self.templates[template_name], {}, exit_handler=True
        )
        self._record(node)
        return node


def _task_scope(ancestors: set[str], states: Mapping[str, _TaskState]) -> dict[str, str | None]:
    """``tasks.T.outputs.parameters.P`` of the ancestors; None marks an absent output.

    A skipped or omitted producer offers its outputs' ``valueFrom.default`` (Argo v4), a
    fan-out its aggregated outputs, any other node the outputs it has.
    """
    scope: dict[str, str | None] = {}
    for ancestor in sorted(ancestors):
        state = states[ancestor]
        prefix = f"tasks.{ancestor}.outputs.parameters."
        if state.phase in {SKIPPED, OMITTED}:
            for parameter in _parameters(state.template.get("outputs"), "outputs"):
                value_from = parameter.get("valueFrom", {})
                default = _text(value_from["default"]) if "default" in value_from else None
                scope[prefix + str(parameter["name"])] = default
        else:
            scope.update({prefix + k: v for k, v in state.outputs.items()})
    return scope


def _dag_phase(
    graph: Mapping[str, list[str]], order: Sequence[str], states: Mapping[str, _TaskState]
) -> str:
    """Argo's ``assessDAGPhase`` with failFast off: the leaves' branch phases decide.

    A Succeeded, Failed or Errored node sets its branch's phase; a Skipped or Omitted node
    inherits the phases of the branches that led to it, Failed and Error winning. The DAG fails
    when a leaf's branch failed: a failure handled by a dependent that then ran (``X.Failed``)
    does not fail the DAG.
    """
    branches: dict[str, set[str]] = {}
    for name in order:
        phase, parents = states[name].phase, graph[name]
        if phase in {SUCCEEDED, FAILED, ERROR}:
            branches[name] = {phase}
        else:
            branches[name] = (
                set().union(*(branches[p] for p in parents)) if parents else {SUCCEEDED}
            )
    leaves = sorted(n for n in graph if not any(n in parents for parents in graph.values()))
    result = SUCCEEDED
    for leaf in leaves:
        failing = [phase for phase in (FAILED, ERROR) if phase in branches[leaf]]
        result = failing[0] if failing else result
    return result


def _termination_message(path: Path) -> str:
    """What the container left in its termination log (Kubernetes keeps at most 4096 bytes)."""
    try:
        return path.read_bytes()[:TERMINATION_MESSAGE_BYTES].decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _mount_dirs(container: Mapping[str, Any], root: Path) -> dict[str, Path]:
    """A fresh directory for each mount of the pod."""
    mounts = {}
    for index, mount in enumerate(container.get("volumeMounts", [])):
        local = root / f"volume-{index}"
        local.mkdir()
        mounts[str(mount["mountPath"]).rstrip("/") or "/"] = local
    return mounts


def _rewrite(text: str, mounts: Mapping[str, Path]) -> str:
    """``text`` moved into the pod's directories when it is a mount path or under one."""
    for mount in sorted(mounts, key=len, reverse=True):
        if _under(text, mount):
            return str(mounts[mount]) + text[len(mount) :]
    return text


def _read_outputs(
    template: Mapping[str, Any], mounts: Mapping[str, Path], succeeded: bool
) -> tuple[dict[str, str], str | None]:
    """The output parameters; a missing file takes ``valueFrom.default`` or errors the node.

    Like Argo's executor, outputs are read after a failed main container too (a missing file
    then just leaves the output out), and a single trailing newline is trimmed.
    """
    outputs: dict[str, str] = {}
    for parameter in _parameters(template.get("outputs"), "outputs"):
        name, value_from = str(parameter["name"]), parameter["valueFrom"]
        try:
            text = Path(_rewrite(str(value_from["path"]), mounts)).read_text(encoding="utf-8")
        except OSError:
            if "default" in value_from:
                outputs[name] = _text(value_from["default"])
            elif succeeded:
                return outputs, f"output {name}: {value_from['path']} does not exist"
            continue
        outputs[name] = text.removesuffix("\n")
    return outputs, None
