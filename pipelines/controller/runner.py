"""The controller's loops: watch the rules, resync them all periodically, reconcile in workers.

For each served scope (a namespace, or every namespace) one loop lists the rules, queues each
of them, then watches from the list's resourceVersion; after ``resyncSeconds`` it lists again,
which reconciles every rule once more (level-triggered: nothing is remembered across restarts,
and what a missed event would have said, the next list says). A rule gone from a list, or
reported deleted by the watch, is forgotten (:meth:`RuleReconciler.forget`).

A small work queue hands rules to a few workers. One rule is never reconciled twice at once;
events about a rule that is being reconciled are folded into one more reconciliation with the
newest object. Watch events caused by the controller's own status writes are skipped. A rule
whose object could not be applied is tried again after a backoff (5 s doubling, at most the
resync period); a rule that raises is logged and the others go on. A watch that breaks (an
error, or an end right after it started) is opened again after a capped exponential backoff
with jitter (:data:`WATCH_BACKOFF`), reset by a watch that worked.

Before any rule is checked, the PRReconciliationLimits objects are listed (and then watched):
no rule is admitted under limits the controller has not read. When they change, every rule is
checked again. After the first list of a scope, :func:`~pipelines.controller.sweep.sweep` removes
what deleted rules left behind. A retry waiting for a rule is cancelled when the rule changes or
is deleted.

With leader election on, all of this runs only in the replica holding the Lease
(:mod:`~pipelines.controller.leader`); the others answer ``/healthz`` and ``/ready`` and wait.

What is kept in memory (the newest object of each rule, its state for ``/metrics``) is a cache
of what the API server says, rebuilt by the first list after a start.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from ai_operator.jobs.clients.kube_retry import Backoff
from ai_operator.jobs.log import get_logger
from ai_operator.pipelines.controller.checking import Checker, Governing
from ai_operator.pipelines.controller.config import ControllerConfig
from ai_operator.pipelines.controller.kube import (
    LIMITS,
    RULES,
    Gone,
    KubeClient,
    KubeError,
    NotFound,
    ObjectList,
    WatchEvent,
    WatchEventType,
)
from ai_operator.pipelines.controller.leader import LeaderElector
from ai_operator.pipelines.controller.objects import RuleKey, RuleObject, Unreadable
from ai_operator.pipelines.controller.reconcile import RuleReconciler
from ai_operator.pipelines.controller.status import RuleState, State
from ai_operator.pipelines.controller.sweep import own_memo, sweep
from ai_operator.pipelines.controller.tenancy import LimitsCache, LimitsObject, limits_objects

FIRST_RETRY_SECONDS = 5.0
WATCH_HEALTHY_SECONDS = 1.0
"""A watch that ran at least this long, or delivered an event, worked: the backoff starts over."""
WATCH_BACKOFF = Backoff(first=1.0, cap=60.0)
"""Waits before opening again a watch that broke: 1 s doubling up to a minute, with jitter."""

Sleep = Callable[[float], Awaitable[None]]
CHANGES = frozenset({WatchEventType.ADDED, WatchEventType.MODIFIED})


@dataclass(frozen=True)
class Work:
    """What to do about one rule: reconcile its newest object, or forget it."""

    key: RuleKey
    rule: RuleObject
    deleted: bool = False
    force: bool = False
    """Reconcile even a version already handled (a resync or a retry: runs and the API change)."""


class Reconnects:
    """The backoff of a watch that keeps breaking: how many failures in a row, the next wait."""

    def __init__(self, backoff: Backoff, jitter: Callable[[], float]) -> None:
        self._backoff = backoff
        self._jitter = jitter
        self.failures = 0

    def broke(self) -> float:
        """One more failure in a row: the wait before the next watch."""
        delay = self._backoff.delay(self.failures, self._jitter())
        self.failures += 1
        return delay

    def worked(self) -> None:
        """The watch worked: the next failure waits the shortest time again."""
        self.failures = 0


class WorkQueue:
    """Rules waiting to be handled, each at most once, never two workers on one rule."""

    def __init__(self) -> None:
        self._ready: asyncio.Queue[RuleKey] = asyncio.Queue()
        self._pending: dict[RuleKey, Work] = {}
        self._active: set[RuleKey] = set()

    def put(self, work: Work) -> None:
        """Queue ``work`` for its rule, replacing what was waiting for it.

        A forced reconciliation stays forced: a newer object (the watch reporting the
        controller's own status write, say) does not cancel a resync, a retry or a change of
        limits.
        """
        key = work.key
        waiting = key in self._pending
        previous = self._pending.get(key)
        if previous is not None and previous.force and not work.force and not work.deleted:
            work = Work(key, work.rule, force=True)
        self._pending[key] = work
        if not waiting and key not in self._active:
            self._ready.put_nowait(key)

    async def get(self) -> Work:
        """The next rule's work; call :meth:`done` with its key when finished."""
        key = await self._ready.get()
        self._active.add(key)
        return self._pending.pop(key)

    def done(self, key: RuleKey) -> None:
        """``key`` is handled; if more work came meanwhile, it is queued now."""
        self._active.discard(key)
        if key in self._pending:
            self._ready.put_nowait(key)

    @property
    def idle(self) -> bool:
        """Nothing waits and nothing runs."""
        return not self._pending and not self._active


class Controller:
    """Serves the configured namespaces until :meth:`run`'s stop event is set."""

    def __init__(
        self,
        config: ControllerConfig,
        client: KubeClient,
        *,
        workers: int = 4,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        first_retry_seconds: float = FIRST_RETRY_SECONDS,
        identity: str | None = None,
        checker: Checker | None = None,
        watch_backoff: Backoff = WATCH_BACKOFF,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._config = config
        self._client = client
        self._workers = workers
        self._first_retry = first_retry_seconds
        self._clock = clock
        self._watch_backoff = watch_backoff
        self._sleep = sleep
        self._jitter = jitter
        self.identity = identity or socket.gethostname()
        self._checker = checker or Checker(config.check_seconds)
        self._limits = LimitsCache()
        self._reconciler = RuleReconciler(
            client,
            config,
            clock=clock,
            instance=self.identity,
            checker=self._checker,
            governing=self.governing,
        )
        self._queue = WorkQueue()
        self._latest: dict[RuleKey, RuleObject] = {}
        self._seen_versions: dict[RuleKey, str] = {}
        self._states: dict[RuleKey, State] = {}
        self._failures: dict[RuleKey, int] = {}
        self._timers: dict[RuleKey, asyncio.TimerHandle] = {}
        self._listed: set[str | None] = set()
        self._limits_listed: asyncio.Event | None = None
        self._running = False
        self._leading = False
        self._tasks: list[asyncio.Task[None]] = []
        self.reconciled: dict[RuleKey, int] = {}
        """How many times each rule was reconciled since the start (for tests and logs)."""
        self._log = get_logger("ai_operator.controller")

    # --- what the endpoints read -----------------------------------------------------------

    @property
    def scopes(self) -> list[str | None]:
        """The served namespaces; ``[None]`` for every namespace."""
        return list(self._config.namespaces) or [None]

    @property
    def alive(self) -> bool:
        """The loops run (none of them ended, which only a bug could make them do)."""
        return self._running and not any(task.done() for task in self._tasks)

    @property
    def leading(self) -> bool:
        """Whether this replica serves the rules (always, without leader election)."""
        return self._leading

    @property
    def ready(self) -> bool:
        """Every scope was listed at least once; a replica waiting for the Lease is ready too."""
        if self._running and self._config.leader_election.enabled and not self._leading:
            return True
        return self._running and all(scope in self._listed for scope in self.scopes)

    def governing(self, namespace: str) -> Governing:
        """The limits the rules of ``namespace`` are checked against."""
        return self._limits.governing(namespace)

    @property
    def idle(self) -> bool:
        """Ready, with no rule waiting or being reconciled."""
        return self.ready and self._queue.idle

    def rule_states(self) -> list[RuleState]:
        """The namespace and state of each rule reconciled so far."""
        return [RuleState(key.namespace, state) for key, state in sorted(self._states.items())]

    def served_namespaces(self) -> tuple[str, ...]:
        """The configured namespaces (empty: every namespace)."""
        return self._config.namespaces

    # --- the loops -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set (with leader election: while holding the Lease)."""
        self._running = True
        election = self._config.leader_election
        self._log.info(
            "controller started",
            namespaces=list(self._config.namespaces) or "all",
            target=self._config.target,
            resync_seconds=self._config.resync_seconds,
            leader_election=election.enabled,
        )
        try:
            if election.enabled:
                elector = LeaderElector(self._client, election, self.identity, clock=self._clock)
                await elector.run(self._lead, stop)
            else:
                await self._lead(stop)
        finally:
            self._running = False
            self._checker.close()
            self._log.info("controller stopped")

    async def _lead(self, done: asyncio.Event) -> None:
        """Serve every scope until ``done`` is set; then forget everything in memory."""
        self._forget_all()
        self._leading = True
        self._limits_listed = asyncio.Event()
        tasks = [asyncio.create_task(self._serve_limits())]
        tasks += [asyncio.create_task(self._serve_scope(scope)) for scope in self.scopes]
        tasks += [asyncio.create_task(self._work()) for _ in range(self._workers)]
        self._tasks = tasks
        try:
            await done.wait()
        finally:
            self._leading = False
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._tasks = []
            if self._config.leader_election.enabled:
                self._forget_all()  # another replica serves now; its view is the one to trust

    def _forget_all(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._queue = WorkQueue()
        self._latest.clear()
        self._seen_versions.clear()
        self._states.clear()
        self._failures.clear()
        self._listed.clear()
        self._limits = LimitsCache()

    # --- the administrator's limits ----------------------------------------------------------

    async def _serve_limits(self) -> None:
        """List and watch the PRReconciliationLimits; every rule is checked again on a change."""
        while True:
            try:
                await self._serve_limits_rounds()
            except Exception:
                self._log.exception("serving the limits failed")
                await self._sleep(self._first_retry)

    async def _serve_limits_rounds(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        warned = False
        reconnects = Reconnects(self._watch_backoff, self._jitter)
        while True:
            try:
                listing = await self._client.list(LIMITS)
            except NotFound:
                if not warned:
                    warned = True
                    self._log.warning(
                        "the cluster has no PRReconciliationLimits resource: the built-in "
                        "limits apply (install the chart's CRDs)"
                    )
                listing = ObjectList([])
            except KubeError as exc:
                delay = min(self._first_retry * 2**failures, self._config.resync_seconds)
                failures += 1
                self._log.warning("could not list the limits; no rule is checked", error=str(exc))
                await self._sleep(delay)
                continue
            failures = 0
            assert self._limits_listed is not None
            limits = limits_objects(listing.items)
            if self._limits.replace(limits) and self._limits_listed.is_set():
                self._limits_changed()
            self._limits_listed.set()
            version = listing.resource_version
            deadline = loop.time() + self._config.resync_seconds
            while version and (remaining := deadline - loop.time()) > 0:
                started, delivered = loop.time(), 0
                try:
                    async with asyncio.timeout(remaining):
                        watch = self._client.watch(LIMITS, None, version, int(remaining) + 1)
                        async for event in watch:
                            delivered += 1
                            version = self._on_limits_event(event) or version
                except (TimeoutError, Gone):
                    break
                except KubeError as exc:
                    self._log.warning(
                        "the watch of limits broke", error=str(exc), failures=reconnects.failures
                    )
                    delivered = 0
                await self._after_watch(reconnects, loop.time() - started, delivered, deadline)
            if not version:
                await self._sleep(self._config.resync_seconds)

    def _on_limits_event(self, event: WatchEvent) -> str | None:
        item = LimitsObject.read(event.object)
        if item is None:  # a bookmark, or an object without a name
            changed = False
        elif event.type is WatchEventType.DELETED:
            changed = self._limits.remove(item.name)
        elif event.type in CHANGES:
            changed = self._limits.put(item)
        else:
            changed = False
        if changed:
            self._limits_changed()
        return event.resource_version

    def _limits_changed(self) -> None:
        self._log.info("the limits changed: every rule is checked again")
        for key, rule in self._latest.items():
            self._queue.put(Work(key, rule, force=True))

    async def _serve_scope(self, namespace: str | None) -> None:
        """Serve one scope for ever; a bug in one round is logged and the next round starts."""
        while True:
            try:
                await self._serve_scope_rounds(namespace)
            except Exception:
                self._log.exception("serving rules failed", scope=namespace or "all namespaces")
                await self._sleep(self._first_retry)

    async def _serve_scope_rounds(self, namespace: str | None) -> None:
        loop = asyncio.get_running_loop()
        where = namespace or "all namespaces"
        failures = 0
        reconnects = Reconnects(self._watch_backoff, self._jitter)
        assert self._limits_listed is not None
        await self._limits_listed.wait()  # no rule is admitted before the limits are known
        while True:
            try:
                listing = await self._client.list(RULES, namespace)
            except KubeError as exc:
                delay = min(self._first_retry * 2**failures, self._config.resync_seconds)
                failures += 1
                self._log.warning("could not list rules", scope=where, error=str(exc))
                await self._sleep(delay)
                continue
            failures = 0
            rules = self._read_list(listing.items, where)
            refs = [rule.ref for rule in rules]
            if namespace not in self._listed:
                await sweep(self._client, self._config, namespace, refs)
            await own_memo(self._client, self._config, namespace, refs)
            self._relisted(namespace, rules)
            self._listed.add(namespace)
            version = listing.resource_version
            deadline = loop.time() + self._config.resync_seconds
            while (remaining := deadline - loop.time()) > 0:
                started, delivered = loop.time(), 0
                try:
                    async with asyncio.timeout(remaining):
                        watch = self._client.watch(RULES, namespace, version, int(remaining) + 1)
                        async for event in watch:
                            delivered += 1
                            version = self._on_event(event) or version
                except TimeoutError:
                    break  # time to resync
                except Gone:
                    break  # the version is too old: list again
                except KubeError as exc:
                    self._log.warning(
                        "the watch of rules broke",
                        scope=where,
                        error=str(exc),
                        failures=reconnects.failures,
                    )
                    delivered = 0
                await self._after_watch(reconnects, loop.time() - started, delivered, deadline)

    async def _after_watch(
        self, reconnects: Reconnects, lasted: float, delivered: int, deadline: float
    ) -> None:
        """Wait before the next watch when this one broke; reset the backoff when it worked.

        A watch broke when it raised, or ended by itself at once with nothing delivered.
        """
        if delivered or lasted >= WATCH_HEALTHY_SECONDS:
            reconnects.worked()
            return
        delay = reconnects.broke()
        remaining = deadline - asyncio.get_running_loop().time()
        await self._sleep(min(delay, max(0.0, remaining)))

    def _read_list(self, items: Iterable[object], where: str) -> list[RuleObject]:
        """The rules of a list; an object that is no rule the controller can name is skipped."""
        rules = []
        for item in items:
            try:
                rules.append(RuleObject.read(item))
            except Unreadable as exc:
                self._log.warning("skipped a listed object", scope=where, error=str(exc))
        return rules

    def _relisted(self, namespace: str | None, rules: list[RuleObject]) -> None:
        """A full list: reconcile every rule, forget those that are gone."""
        present = set()
        for rule in rules:
            present.add(rule.key)
            self._take(rule, force=True)
        gone = [k for k in self._latest if namespace in (None, k.namespace) and k not in present]
        for key in gone:
            self._cancel_retry(key)
            self._queue.put(Work(key, self._latest.pop(key), deleted=True))
            self._seen_versions.pop(key, None)

    def _on_event(self, event: WatchEvent) -> str | None:
        """Handle one watch event; returns the resourceVersion it carries."""
        item = event.object
        version = event.resource_version
        if event.type is WatchEventType.BOOKMARK:
            return version
        try:
            rule = RuleObject.read(item)
        except Unreadable:
            return None
        key = rule.key
        if event.type is WatchEventType.DELETED:
            self._cancel_retry(key)
            self._latest.pop(key, None)
            self._seen_versions.pop(key, None)
            self._queue.put(Work(key, rule, deleted=True))
        elif event.type in CHANGES:
            if version != self._seen_versions.get(key):
                self._cancel_retry(key)  # a change is reconciled now, not at the old retry
            self._take(rule, force=False)
        return version

    def _take(self, rule: RuleObject, *, force: bool) -> None:
        """Remember the newest object and queue it."""
        if rule.deletion_timestamp:
            return  # being deleted: what it owns goes with it
        self._latest[rule.key] = rule
        self._queue.put(Work(rule.key, rule, force=force))

    async def _work(self) -> None:
        while True:
            work = await self._queue.get()
            key = work.key
            try:
                await self._handle(work)
            except Exception:  # one rule never stops the others
                self._log.exception("reconciling a rule failed", rule=str(key))
                self._states[key] = State.APPLY_FAILED
                self._retry_later(key)
            finally:
                self._queue.done(key)

    async def _handle(self, work: Work) -> None:
        key = work.key
        if work.deleted:
            self._log.info("rule deleted", rule=str(key))
            self._cancel_retry(key)
            self._states.pop(key, None)
            self._failures.pop(key, None)
            await self._reconciler.forget(work.rule.ref)
            return
        version = work.rule.resource_version
        if not work.force and version and self._seen_versions.get(key) == version:
            return  # this version was handled, or written by the controller itself
        result = await self._reconciler.reconcile(work.rule)
        self.reconciled[key] = self.reconciled.get(key, 0) + 1
        if key in self._latest:
            self._states[key] = result.outcome.state
        if version:
            self._seen_versions[key] = version
        if result.written is not None and result.status_version:
            # The watch will report this write; it is not a change to reconcile.
            self._seen_versions[key] = result.status_version
            if key in self._latest:
                self._latest[key] = result.written
        if result.outcome.retried:
            self._retry_later(key)
        else:
            self._failures.pop(key, None)

    def _retry_later(self, key: RuleKey) -> None:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay = min(self._first_retry * 2**failures, float(self._config.resync_seconds))
        self._cancel_retry(key)
        self._timers[key] = asyncio.get_running_loop().call_later(delay, self._retry, key)

    def _cancel_retry(self, key: RuleKey) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    @property
    def pending_retries(self) -> int:
        """Retries waiting for their time (for tests and logs)."""
        return len(self._timers)

    def _retry(self, key: RuleKey) -> None:
        self._timers.pop(key, None)
        if self._running and self._leading and key in self._latest:
            self._queue.put(Work(key, self._latest[key], force=True))
