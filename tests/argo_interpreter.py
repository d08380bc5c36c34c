"""Run one scheduled run of a compiled CronWorkflow on this machine, the way Argo Workflows v4 would.

Tests use it to run the DAG that ``ai-operator compile`` writes, step by step, against the fakes:
each pod becomes a subprocess, and everything Argo does between pods (dependency logic, parameter
substitution, fan-out and aggregation, memoization, retries, the exit handler) is done here, as
Argo v4.1.2's controller does it (read from its code; see the notes at each rule).

It interprets exactly the features below and raises :class:`UnsupportedFeature`, naming the field
or variable, for anything else it meets; it never guesses.

- ``spec.workflowSpec``: ``entrypoint`` (a DAG template), ``onExit`` (a container template),
  ``templates``, ``volumes`` (``emptyDir`` only), ``parallelism``, ``activeDeadlineSeconds``,
  ``synchronization``; accepted without effect: ``podGC``, ``podMetadata``, ``securityContext``,
  ``serviceAccountName``, ``ttlStrategy``. CronWorkflow scheduling fields have no effect on a run.
- DAG templates: ``tasks`` with ``template``, ``arguments.parameters`` (``name``/``value``),
  ``depends`` (``X``, ``X.Succeeded|Failed|Errored|Skipped|Omitted|Daemoned|AnySucceeded|AllFailed``,
  ``&&``, ``||``, ``!``, parentheses) or ``dependencies``, ``withParam``; ``parallelism``;
  ``failFast`` must be ``false`` (the stop-scheduling rule of ``failFast: true`` is not modelled).
- Container templates: ``command`` (+ ``args``), ``env`` (``value``, ``valueFrom.secretKeyRef``),
  ``envFrom`` ConfigMap refs, ``volumeMounts`` of ``emptyDir`` volumes, ``inputs.parameters``
  (``default``), ``outputs.parameters`` (``valueFrom.path``/``default``, ``globalName``),
  ``memoize``, ``retryStrategy``, ``synchronization``; accepted without effect: ``image``,
  ``imagePullPolicy``, ``resources``, ``securityContext``, ``metadata``.
- Variables: ``inputs.parameters.X``, ``tasks.T.outputs.parameters.P``, ``item``, ``item.KEY``,
  ``workflow.name``, ``workflow.status`` and ``workflow.failures`` (exit handler only),
  ``workflow.outputs.parameters.G``.

Where a local run must differ from a cluster, on purpose:

- A pod is ``command + args`` run as a subprocess; a first element ``ai-operator`` becomes
  ``command_prefix``. Its environment is ``env`` (standing for the ``envFrom`` ConfigMap) plus the
  container's ``env``; a ``secretKeyRef`` is looked up in ``secrets[(name, key)]``.
- Each ``emptyDir`` mount gets a fresh temporary directory per pod. A ``command``/``args`` element
  that is the mount path or lies under it *as written in the template* (before substitution), and
  each output's ``valueFrom.path``, are rewritten into that directory.
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

import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUCCEEDED, FAILED, ERROR, SKIPPED, OMITTED = "Succeeded", "Failed", "Error", "Skipped", "Omitted"
FAILED_OR_ERROR = frozenset({FAILED, ERROR})
POD_TIMEOUT_SECONDS = 300.0
MEMO_KEY = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")  # Argo's cacheKeyRegex
_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)  # fasttemplate: "{{", then the next "}}"


class InterpreterError(Exception):
    """Base of the interpreter's errors."""


class UnsupportedFeature(InterpreterError):
    """The document uses a field or variable this interpreter does not interpret."""


class InvalidWorkflow(InterpreterError):
    """The document is one Argo's validation would reject."""


class WorkflowStuck(InterpreterError):
    """Argo would wait forever: a reference can never resolve and no deadline ends the run."""


@dataclass
class MemoCache:
    """Stands for the memoization ConfigMaps: ``{configmap: {key: (saved_at, outputs)}}``."""

    entries: dict[str, dict[str, tuple[float, dict[str, str]]]] = field(default_factory=dict)


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


def run_cron_workflow(
    document: Mapping[str, Any],
    *,
    env: Mapping[str, str],
    secrets: Mapping[tuple[str, str], str],
    memo: MemoCache | None = None,
    now: float | None = None,
    command_prefix: Sequence[str] = (sys.executable, "-m", "pipelines"),
    workers: int = 4,
) -> WorkflowRun:
    """Run one scheduled run of the CronWorkflow ``document``; see the module docstring."""
    spec = check_cron_workflow(document)
    name = f"{document['metadata']['name']}-{int(now if now is not None else time.time())}"
    run = _Run(
        spec,
        name=name,
        env=dict(env),
        secrets=dict(secrets),
        memo=memo,
        now=now,
        command_prefix=tuple(command_prefix),
        workers=workers,
    )
    return run.execute()


