"""Checking one rule: within its namespace's limits, valid, compiled; off the event loop, in time.

:func:`evaluate_rule` is what the controller runs for a rule before it applies anything: the
rule's defaults, the one check ``ai-operator validate`` runs
(:func:`jobs.rules.validation.check_document`), the namespace's limits
(:func:`jobs.rules.limits.limit_problems`) and ``ai-operator compile``, with the namespace's
Secret and limits. It is pure and never raises: any exception while checking makes the rule
``Invalid`` with a one-line reason (never a traceback, never a retry).

:class:`Checker` runs it in worker threads with a time limit per rule, so that no rule, however
large or nested, keeps the controller's event loop (and ``/healthz``) from answering: a check
that takes longer than the limit makes its rule ``Invalid`` and the other rules go on.

Errors: none escape; every failure is an :class:`~pipelines.controller.status.Outcome`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ai_operator.jobs.rules.files import RuleSource
from ai_operator.jobs.rules.limits import KIND as LIMITS_KIND
from ai_operator.jobs.rules.limits import LimitsSpec, limit_problems
from ai_operator.jobs.rules.schedule import Schedule, resolve
from ai_operator.jobs.rules.validation import check_document, one_line
from ai_operator.pipelines.compile import CompileError, compile_rule
from ai_operator.pipelines.controller.config import ControllerConfig
from ai_operator.pipelines.controller.objects import RuleObject, RuleRef
from ai_operator.pipelines.controller.status import Outcome, Reason, short
from ai_operator.pipelines.options import CompiledManifest

MANIFEST_HASH_ANNOTATION = "aioperator.io/manifest-hash"
_WORKERS = 2


@dataclass(frozen=True)
class Compiled:
    """A valid rule's object, owned by the rule, and the schedule it runs on."""

    manifest: CompiledManifest
    schedule: Schedule
    triggers: str = "schedule"
    """What starts the rule's passes: ``schedule``, ``schedule+events`` (it has a Sensor),
    ``schedule (events off)`` (it asks for events the installation does not receive),
    ``schedule (events only in namespace NS)`` (its namespace has no EventBus: events are received
    in the installation's namespace only) or
    ``schedule (no events)`` (the CronJob target, which is schedule-only)."""


@dataclass(frozen=True)
class Governing:
    """The limits governing a namespace: an object's (or the built-in ones), or why none apply."""

    spec: LimitsSpec | None
    name: str | None = None
    """The PRReconciliationLimits object; None: no object governs (the built-in limits)."""
    problem: str | None = None
    """Why no limits can be chosen (two objects name the namespace): every rule is refused."""

    @property
    def shown(self) -> str:
        """How a message names these limits."""
        return f"{LIMITS_KIND} {self.name}" if self.name else "the built-in limits"


def evaluate_rule(
    rule: RuleObject, config: ControllerConfig, governing: Governing
) -> Compiled | Outcome:
    """The compiled object for ``rule``, or the ``Invalid`` outcome saying why not; never raises."""
    try:
        return _evaluate(rule, config, governing)
    except RecursionError:
        return Outcome.invalid(Reason.CHECK_FAILED, "the rule is nested too deeply to be checked")
    except Exception as exc:  # any failure to check a rule is that rule's problem, on one line
        message = f"the rule could not be checked: {one_line(exc)}"
        return Outcome.invalid(Reason.CHECK_FAILED, message)


def _evaluate(
    rule: RuleObject, config: ControllerConfig, governing: Governing
) -> Compiled | Outcome:
    document = rule.source()
    document["spec"] = config.rule_defaults.apply(rule.spec)
    source = RuleSource(str(rule.key))
    checked = check_document(document, source)
    if checked.errors or checked.rule is None:
        message = "; ".join(f"{f.field or 'rule'}: {f.message}" for f in checked.errors)
        return Outcome.invalid(Reason.VALIDATION_FAILED, short(message))
    if governing.problem is not None or governing.spec is None:
        return Outcome.invalid(Reason.OUTSIDE_LIMITS, short(governing.problem or "no limits"))
    spec = checked.rule.spec
    problems = limit_problems(
        spec,
        governing.spec,
        repositories=config.installation.rule_repositories(spec.repositories),
        installation_endpoint=config.installation.ai_endpoint,
    )
    if problems:
        message = "; ".join(str(problem) for problem in problems)
        return Outcome.invalid(Reason.OUTSIDE_LIMITS, short(f"{message} ({governing.shown})"))
    options = dataclasses.replace(config.compile, limits=governing.spec)
    if governing.spec.secretName:
        options = dataclasses.replace(
            options, secret_name=governing.spec.secretName, secret_keys={}
        )
    deaf = (
        options.events
        and options.events_namespace is not None
        and checked.rule.metadata.namespace != options.events_namespace
    )
    if deaf:  # a Sensor hears only the EventBus of its own namespace
        options = dataclasses.replace(options, events=False)
    try:
        manifest = compile_rule(checked.rule, config.target, options)
    except CompileError as exc:
        return Outcome.invalid(Reason.COMPILE_FAILED, short(str(exc)))
    if manifest.sensor is not None:
        triggers = "schedule+events"
    elif spec.events is None:
        triggers = "schedule"
    elif deaf:
        triggers = f"schedule (events only in namespace {config.compile.events_namespace})"
    else:  # the CronJob target is schedule-only (docs/pipelines.md)
        triggers = "schedule (events off)" if config.target == "argo" else "schedule (no events)"
    schedule = resolve(spec.schedule, spec.reconciliationInterval)
    return Compiled(owned(manifest, rule.ref), schedule, triggers)


def owned(manifest: CompiledManifest, rule: RuleRef) -> CompiledManifest:
    """The manifest and its other documents, each owned by the rule and with its own hash."""

    def own(document: Mapping[str, Any] | None) -> dict[str, Any] | None:
        return owned_document(document, rule) if document is not None else None

    return CompiledManifest(
        manifest.rule,
        manifest.kind,
        manifest.name,
        owned_document(manifest.document, rule),
        manifest.notes,
        own(manifest.config_map),
        own(manifest.workflow_template),
        own(manifest.sensor),
    )


def owned_document(source: Mapping[str, Any], rule: RuleRef) -> dict[str, Any]:
    """A copy of a compiled document, the rule its controlling owner, with the hash of the whole."""
    document: dict[str, Any] = json.loads(json.dumps(source))  # a deep copy, plain JSON
    metadata = document["metadata"]
    metadata["ownerReferences"] = [rule.owner(controller=True).to_json()]
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    metadata.setdefault("annotations", {})[MANIFEST_HASH_ANNOTATION] = digest
    return document


Evaluate = Callable[[RuleObject, ControllerConfig, Governing], "Compiled | Outcome"]


class Checker:
    """Runs :func:`evaluate_rule` in worker threads, each rule within ``time_limit`` seconds.

    The rule's bounds (:mod:`jobs.rules.model`, :func:`jobs.rules.template.size_problem`) keep
    every check well under a second; the time limit is the last guard. A check that outlives it
    makes its rule ``Invalid``; its thread is left to end on its own, out of a fresh pool, so the
    other rules go on at once.
    """

    def __init__(
        self, time_limit: float, *, workers: int = _WORKERS, evaluate: Evaluate = evaluate_rule
    ) -> None:
        self._time_limit = time_limit
        self._workers = workers
        self._evaluate = evaluate
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    async def check(
        self, rule: RuleObject, config: ControllerConfig, governing: Governing
    ) -> Compiled | Outcome:
        """The outcome of checking ``rule``: compiled, or ``Invalid`` with a one-line reason."""
        own = rule.detached()  # the worker gets its own copy, plain data only
        pool = self._open()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(pool, self._evaluate, own, config, governing)
        try:
            return await asyncio.wait_for(future, self._time_limit)
        except TimeoutError:
            self._abandon(pool)
            message = f"checking the rule took longer than {self._time_limit:g} s"
            return Outcome.invalid(Reason.CHECK_TIMED_OUT, message)

    def close(self) -> None:
        """Stop the workers (a check still running ends on its own)."""
        if self._pool is not None:
            self._abandon(self._pool)

    def _open(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                self._workers, thread_name_prefix="rule-check"
            )
        return self._pool

    def _abandon(self, pool: concurrent.futures.ThreadPoolExecutor) -> None:
        pool.shutdown(wait=False)  # what was queued there still runs, then its threads end
        if self._pool is pool:
            self._pool = None
