"""Reconciling one rule: validate, compile, apply, clean up, report.

:meth:`RuleReconciler.reconcile` takes a rule as the API server returned it (a
:class:`~pipelines.controller.objects.RuleObject`, its spec not yet validated) and:

1. validates it with the code behind ``ai-operator validate`` (the model, then
   :func:`jobs.rules.validation.check_rule`), after filling in the configured rule defaults, and
   checks it against its namespace's PRReconciliationLimits (a refused rule is ``Invalid`` with
   the field and the limit); all in a worker thread with a time limit
   (:mod:`~pipelines.controller.checking`);
2. compiles it with the code behind ``ai-operator compile``
   (:func:`pipelines.compile.compile_rule`), with the namespace's Secret and limits,
   and adds an owner reference to the rule (``controller``, ``blockOwnerDeletion``), so that
   deleting the rule deletes what it generated, and the annotation
   :data:`MANIFEST_HASH_ANNOTATION`, a hash of the whole object;
3. applies the rule's ConfigMap (the rule as readable YAML, which every pod of the object reads),
   then the object, each by server-side apply, unless the live object already carries that
   hash and every field the rule sets (a hand edit is put back at the next resync, with a
   ``DriftRepaired`` event): a restart, or a resync of an unchanged rule, writes nothing; an
   object left by an earlier rule of the same name (deleted and created again) is adopted at
   once;
4. deletes what this rule generated that it no longer wants: the other kind after a switch of
   target, and everything, its ConfigMap included, when the rule is invalid (an invalid rule
   runs nothing), before it writes anything else;
5. reads the runs (the newest, and the finished ones for the status history), writes the
   status when it changed, and posts events.

A rule never stops another: every failure becomes the rule's status (``Invalid`` or
``ApplyFailed``) and a log line. :meth:`RuleReconciler.forget` runs when a rule is deleted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ai_operator.jobs.clients.kube import NAMESPACES
from ai_operator.jobs.clients.outcome_index import INDEX_LABEL
from ai_operator.jobs.clients.pause import PAUSE_ANNOTATION, paused_by
from ai_operator.jobs.log import get_logger
from ai_operator.jobs.rules.model import GeneratedObject
from ai_operator.jobs.rules.names import OUTCOME_INDEX_PREFIX, outcome_index_prefix
from ai_operator.pipelines.controller.checking import (
    MANIFEST_HASH_ANNOTATION,
    Checker,
    Compiled,
    Governing,
    evaluate_rule,
)
from ai_operator.pipelines.controller.config import ControllerConfig
from ai_operator.pipelines.controller.kube import (
    CONFIG_MAPS,
    CRON_JOBS,
    CRON_WORKFLOWS,
    EVENTS,
    JOBS,
    RULES,
    SENSORS,
    WORKFLOW_TEMPLATES,
    WORKFLOWS,
    KubeClient,
    KubeError,
    NotFound,
    Resource,
)
from ai_operator.pipelines.controller.objects import (
    JobObject,
    ListedObject,
    RuleObject,
    RuleRef,
    Unreadable,
    WorkflowObject,
    named,
    runs_of,
)
from ai_operator.pipelines.controller.status import (
    Event,
    EventReason,
    EventType,
    Outcome,
    Reason,
    Runs,
    State,
    event_object,
    events,
    job_runs,
    read_status,
    rule_status,
    same_status,
    short,
    status_patch,
    workflow_runs,
)
from ai_operator.pipelines.options import (
    RULE_LABEL,
    Target,
    rule_label_value,
)

__all__ = ["MANIFEST_HASH_ANNOTATION", "Compiled", "Reconciled", "RuleReconciler"]

FIELD_MANAGER = "ai-operator"
GENERATED_KINDS: dict[Target, Resource] = {"argo": CRON_WORKFLOWS, "cronjob": CRON_JOBS}
GENERATED: tuple[Resource, ...] = (SENSORS, CRON_WORKFLOWS, CRON_JOBS, WORKFLOW_TEMPLATES)
"""Every kind a rule may generate besides its ConfigMap, in the order they are deleted: what
starts runs first (the Sensor, the schedule), what runs refer to last (the WorkflowTemplate)."""
RESOURCES: dict[str, Resource] = {r.kind: r for r in (*GENERATED, CONFIG_MAPS)}
RUN_KINDS: dict[Target, Resource] = {"argo": WORKFLOWS, "cronjob": JOBS}
MEMO_SHARDS = "0123456789abcdef"
MEMO_PREFIX = OUTCOME_INDEX_PREFIX
OUTCOME_INDEX_LABEL = "=".join(INDEX_LABEL)
"""The label of a rule's outcome index (:mod:`jobs.clients.outcome_index`)."""


@dataclass(frozen=True)
class Reconciled:
    """The result of one reconciliation."""

    outcome: Outcome
    written: RuleObject | None = None
    """The rule as the status write returned it, when the status was written."""

    @property
    def status_version(self) -> str | None:
        """The rule's resourceVersion after the status write, when there was one."""
        return self.written.resource_version if self.written else None


class RuleReconciler:
    """Turns rules into applied CronWorkflows (or CronJobs) and keeps their status."""

    def __init__(
        self,
        client: KubeClient,
        config: ControllerConfig,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        instance: str | None = None,
        checker: Checker | None = None,
        governing: Callable[[str], Governing] = lambda _: Governing(None, problem="no limits"),
    ) -> None:
        self._client = client
        self._config = config
        self._clock = clock
        self._instance = instance or socket.gethostname()
        self._checker = checker
        self._governing = governing
        self._log = get_logger("ai_operator.controller")

    async def reconcile(self, this: RuleObject) -> Reconciled:
        """Bring one rule's generated object, status and events up to date."""
        log = self._log.bind(rule=str(this.key))
        found = await self.check(this)
        if isinstance(found, Compiled):
            outcome = await self._apply(this, found)
        else:
            outcome = await self._remove_generated(this, found, keep=None)
        runs = await self._runs(this, log)
        paused = await self._paused(this, log)
        written = await self._report(this, outcome, runs, log, paused)
        # A line when something changed; a resync of an unchanged rule logs only at debug level.
        if outcome.applied:
            log.info("rule applied", kind=outcome.generated.kind if outcome.generated else None)
        elif outcome.state is not State.READY and written is not None:
            log.warning("rule not applied", state=outcome.state, reason=outcome.message)
        else:
            log.debug("rule up to date", state=outcome.state)
        return Reconciled(outcome, written)

    async def check(self, rule: RuleObject) -> Compiled | Outcome:
        """The compiled object for ``rule``, or the ``Invalid`` outcome saying why not."""
        governing = self._governing(rule.key.namespace)
        if self._checker is None:
            return evaluate_rule(rule, self._config, governing)
        return await self._checker.check(rule, self._config, governing)

    async def forget(self, rule: RuleRef) -> None:
        """Delete what a deleted rule generated (as the garbage collector would) and its groups."""
        key = rule.key
        for resource in (*GENERATED, CONFIG_MAPS):
            try:
                await self._delete_owned(resource, rule)
            except KubeError as exc:
                self._log.warning(
                    "could not delete a deleted rule's objects; the garbage collector will",
                    rule=str(key),
                    error=str(exc),
                )
        await self.delete_memo(key.namespace, key.name)
        await delete_rule_metrics(self._config.pushgateway_url, key.namespace, key.name)

    async def delete_memo(self, namespace: str, name: str) -> None:
        """Delete the outcome index of the rule ``name`` (it may not have its owner yet)."""
        if self._config.target != "argo":
            return
        prefix = memo_prefix(name)
        for shard in MEMO_SHARDS:
            try:
                await self._client.delete(CONFIG_MAPS, namespace, f"{prefix}-{shard}")
            except KubeError as exc:
                self._log.warning(
                    "could not delete a memo ConfigMap", rule=f"{namespace}/{name}", error=str(exc)
                )
                return

    # --- apply -----------------------------------------------------------------------------

    async def _apply(self, rule: RuleObject, compiled: Compiled) -> Outcome:
        manifest, schedule = compiled.manifest, compiled.schedule
        metadata = manifest.document["metadata"]
        where = f"{manifest.kind} {metadata['namespace']}/{manifest.name}"

        def failed(reason: Reason, message: str) -> Outcome:
            return Outcome.apply_failed(reason, short(message), schedule=schedule.cron)

        owner = rule.ref
        told: list[Event] = []
        try:
            applied = False
            # In order: the rule's ConfigMap (pods read the rule there), the WorkflowTemplate
            # (runs refer to it), the object, then the Sensor (it starts runs at once).
            for document in manifest.documents:
                resource = RESOURCES[str(document["kind"])]
                applied = await self._put(resource, document, owner, told) or applied
        except _NotOwned as exc:
            return failed(Reason.NOT_OWNED, str(exc))
        except NotFound as exc:
            return failed(
                Reason.APPLY_FAILED, f"the cluster has no {manifest.kind} resource ({exc})"
            )
        except KubeError as exc:
            return failed(Reason.APPLY_FAILED, str(exc))
        outcome = Outcome(
            state=State.READY,
            reason=Reason.APPLIED,
            message=f"compiled into {where}",
            generated=GeneratedObject(kind=manifest.kind, name=manifest.name),
            schedule=schedule.cron,
            schedule_note=schedule.note,
            applied=applied,
            told=tuple(told),
            sensor=manifest.sensor["metadata"]["name"] if manifest.sensor else None,
            triggers=compiled.triggers,
        )
        keep = frozenset(RESOURCES[str(document["kind"])] for document in manifest.documents)
        return await self._remove_generated(rule, outcome, keep=keep)

    async def _put(
        self,
        resource: Resource,
        document: Mapping[str, Any],
        owner: RuleRef,
        told: list[Event],
    ) -> bool:
        """Apply ``document`` unless the live object already is it; whether it was applied.

        Raises :class:`_NotOwned` for an object of that name the rule does not control.
        """
        metadata = document["metadata"]
        where = f"{document['kind']} {metadata['namespace']}/{metadata['name']}"
        live = await self._client.get(resource, metadata["namespace"], metadata["name"])
        seen = ListedObject.read(live) if live is not None else None
        adopted = False
        if seen is not None and not owner.controls(seen):
            if not owner.left_by_earlier(seen):
                raise _NotOwned(
                    f"{where} exists and is not controlled by this rule; delete it, or "
                    "rename the rule"
                )
            message = f"adopted {where}, left by an earlier rule of the same name"
            told.append(Event(EventReason.ADOPTED, short(message)))
            adopted = True
        wanted_hash = metadata["annotations"][MANIFEST_HASH_ANNOTATION]
        live_hash = seen.metadata.annotations.get(MANIFEST_HASH_ANNOTATION) if seen else None
        applied = seen is None or adopted or live_hash != wanted_hash
        if not applied and live is not None and not _contains(live, document):
            applied = True
            message = f"put back {where} as its rule says: it was changed outside the rule"
            told.append(Event(EventReason.DRIFT_REPAIRED, short(message), EventType.WARNING))
        if applied:
            await self._client.apply(resource, dict(document), FIELD_MANAGER)
        return applied

    async def _remove_generated(
        self, rule: RuleObject, outcome: Outcome, keep: frozenset[Resource] | None
    ) -> Outcome:
        """Delete this rule's objects of every generated kind not in ``keep``.

        Without ``keep`` (an invalid rule) its ConfigMap goes too; the generated objects first.
        A rule that no longer uses events loses its Sensor; a switch of target, the other kind.
        """
        kinds = [*GENERATED, *([CONFIG_MAPS] if keep is None else [])]
        for resource in kinds:
            if keep is not None and resource in keep:
                continue
            try:
                await self._delete_owned(resource, rule.ref)
            except KubeError as exc:
                if outcome.state is not State.READY:
                    # An invalid rule must run nothing: suspend what could not be deleted, and
                    # try the deletion again soon.
                    if resource in GENERATED_KINDS.values():  # the others have no suspend
                        await self._suspend_owned(resource, rule)
                    return dataclasses.replace(outcome, pending=True)
                message = f"could not delete the rule's {resource.kind}: {exc}"
                return Outcome.apply_failed(
                    Reason.APPLY_FAILED, short(message), generated=outcome.generated
                )
        return outcome

    async def _suspend_owned(self, resource: Resource, rule: RuleObject) -> None:
        """Suspend this rule's objects of ``resource`` (when they cannot be deleted)."""
        owner = rule.ref
        try:
            found = await self._client.list(resource, owner.namespace, _rule_selector(owner))
            for item in named(found.items):
                if owner.controls(item):
                    await self._client.patch(
                        resource, owner.namespace, item.metadata.name, {"spec": {"suspend": True}}
                    )
        except KubeError as exc:
            self._log.warning(
                "could not suspend an invalid rule's objects", rule=str(owner.key), error=str(exc)
            )

    async def _delete_owned(self, resource: Resource, owner: RuleRef) -> None:
        """Delete the objects of ``resource`` labelled for this rule and controlled by it."""
        try:
            found = await self._client.list(resource, owner.namespace, _rule_selector(owner))
        except NotFound:
            return  # the cluster does not have this kind at all
        for item in named(found.items):
            name = item.metadata.name
            if owner.controls(item):
                await self._client.delete(resource, owner.namespace, name)
                self._log.info(
                    "deleted a generated object the rule no longer wants",
                    rule=str(owner.key),
                    kind=resource.kind,
                    name=name,
                )

    # --- runs, status, events --------------------------------------------------------------

    async def _runs(self, rule: RuleObject, log: Any) -> Runs:
        resource = RUN_KINDS[self._config.target]
        previous = read_status(rule.status)
        try:
            found = await self._client.list(resource, rule.ref.namespace, _rule_selector(rule.ref))
        except KubeError as exc:
            log.warning("could not read the rule's runs", error=str(exc))
            return Runs(previous.lastRun, None)
        if resource == WORKFLOWS:
            return workflow_runs(runs_of(WorkflowObject, found.items), previous)
        return job_runs(runs_of(JobObject, found.items))

    async def _paused(self, rule: RuleObject, log: Any) -> str | None:
        """Why the rule's writes are paused: the installation's value, the namespace's annotation.

        None when they are not, or when the namespace cannot be read (the pods then defer their
        writes themselves; the status only reports).
        """
        if self._config.paused:
            return "writes are paused for the installation (the chart's paused value)"
        namespace = rule.key.namespace
        try:
            found = await self._client.get(NAMESPACES, None, namespace)
        except KubeError as exc:
            log.debug("could not read the namespace's pause annotation", error=str(exc))
            return None
        if found and paused_by(ListedObject.read(found).metadata.annotations):
            return f"writes are paused in namespace {namespace} ({PAUSE_ANNOTATION})"
        return None

    async def _report(
        self,
        rule: RuleObject,
        outcome: Outcome,
        runs: Runs,
        log: Any,
        paused: str | None = None,
    ) -> RuleObject | None:
        """Write the status when it changed, then post the events it calls for."""
        key = rule.key
        previous = read_status(rule.status)
        now = self._clock()
        wanted = rule_status(outcome, rule.generation, runs, previous, now, paused)
        written = None
        if not same_status(wanted, rule.status):
            try:
                reply = await self._client.patch_status(
                    RULES, key.namespace, key.name, status_patch(wanted)
                )
            except NotFound:
                return None  # deleted meanwhile
            except KubeError as exc:
                log.warning("could not write the rule's status", error=str(exc))
                return None
            written = _written(reply, log)
        for event in events(outcome, previous, runs.last):
            told = event_object(event, rule, now, self._instance)
            try:
                await self._client.create(EVENTS, key.namespace, told.to_json())
            except KubeError as exc:
                log.warning("could not post an event", reason=event.reason, error=str(exc))
        return written


async def delete_rule_metrics(pushgateway_url: str, namespace: str, rule: str) -> None:
    """Delete a deleted rule's Pushgateway groups; nothing without a gateway; never raises."""
    if not pushgateway_url:
        return
    from ai_operator.jobs.clients.metrics import delete_rule_groups  # noqa: PLC0415 - only with a gateway

    outcome = await asyncio.to_thread(delete_rule_groups, pushgateway_url, namespace, rule)
    log = get_logger("ai_operator.controller")
    if outcome.deleted:
        log.info("deleted the rule's Pushgateway groups", rule=f"{namespace}/{rule}")
    else:
        log.warning(
            "could not delete the rule's Pushgateway groups",
            rule=f"{namespace}/{rule}",
            error=outcome.error,
        )


def _written(reply: object, log: Any) -> RuleObject | None:
    """The rule as a status write returned it; None (the next list reads it) when unreadable."""
    try:
        return RuleObject.read(reply)
    except Unreadable as exc:
        log.warning("could not read the rule the status write returned", error=str(exc))
        return None


class _NotOwned(Exception):
    """An object of the wanted name exists and this rule does not control it."""


def _contains(live: Any, wanted: Any) -> bool:
    """Whether ``live`` holds every field of ``wanted`` with its value (defaults may add more)."""
    if isinstance(wanted, Mapping):
        return isinstance(live, Mapping) and all(
            key in live and _contains(live[key], value) for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(live, list)
            and len(live) == len(wanted)
            and all(_contains(have, want) for have, want in zip(live, wanted, strict=True))
        )
    return bool(live == wanted)


def memo_prefix(rule: str) -> str:
    """The prefix of the rule's outcome index ConfigMaps (``<prefix>-0`` .. ``-f``).

    As the compiler names them (:func:`pipelines.options.memo_config_map`).
    """
    return outcome_index_prefix(rule)


def _rule_selector(rule: RuleRef) -> str:
    """The label selector of what this rule generated (even an invalid rule's) and its runs."""
    return f"{RULE_LABEL}={rule_label_value(rule.name)}"
