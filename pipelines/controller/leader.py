"""Leader election on a ``coordination.k8s.io/v1`` Lease, as client-go's leaderelection does it.

Every replica runs a :class:`LeaderElector`; the one holding the Lease serves, the others wait.

- A candidate tries every ``retry_seconds`` to take the Lease: it creates it when there is none,
  and takes it over when the holder has not renewed it for ``lease_seconds`` as measured by the
  candidate's own clock since it last saw the record change (no trust in other machines' clocks).
- The leader renews every ``retry_seconds``; when it could not renew for ``renew_seconds`` it
  stops serving at once (before another replica may take over at ``lease_seconds``).
- On a graceful stop the leader releases the Lease (no holder, one-second duration), so another
  replica takes over without waiting.

Writes are optimistic: a replace (PUT) carries the resourceVersion read, so two candidates
cannot both win; a conflict means someone else wrote first.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ai_operator.jobs.log import get_logger
from ai_operator.pipelines.controller.config import LeaderElection
from ai_operator.pipelines.controller.kube import LEASES, KubeClient, KubeError

Lead = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
"""Serves until the event is set (leadership lost, or stop)."""


class LeaseSpec(BaseModel):
    """A ``coordination.k8s.io/v1`` Lease's spec, as client-go's leaderelection writes it."""

    model_config = ConfigDict(extra="allow", frozen=True)

    holderIdentity: str | None = None
    leaseDurationSeconds: int | None = None
    acquireTime: str | None = None
    renewTime: str | None = None
    leaseTransitions: int | None = None


@dataclass(frozen=True)
class Lease:
    """A Lease as read: its spec and the resourceVersion a replace must carry."""

    spec: LeaseSpec
    resource_version: str

    @classmethod
    def of(cls, item: Mapping[str, Any]) -> Lease:
        """The Lease the API server returned; a spec the model refuses reads as no holder."""
        try:
            spec = LeaseSpec.model_validate(item.get("spec") or {})
        except ValidationError:
            spec = LeaseSpec()
        return cls(spec, str((item.get("metadata") or {}).get("resourceVersion") or ""))


def _micro_time(moment: datetime) -> str:
    """metav1.MicroTime: RFC 3339 with microseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Takes and keeps the Lease, and runs ``lead`` while it holds it."""

    def __init__(
        self,
        client: KubeClient,
        settings: LeaderElection,
        identity: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._settings = settings
        self.identity = identity
        self._clock = clock
        self._observed: Lease | None = None
        self._observed_at = 0.0  # the loop's time when the record last changed
        self.leading = False
        self._log = get_logger("ai_operator.controller")

    async def run(self, lead: Lead, stop: asyncio.Event) -> None:
        """Compete for the Lease until ``stop``; run ``lead`` while holding it."""
        loop = asyncio.get_running_loop()
        settings = self._settings
        lost = asyncio.Event()
        leading: asyncio.Task[None] | None = None
        renewed = 0.0
        try:
            while not stop.is_set():
                held = await self._try_acquire_or_renew()
                now = loop.time()
                if held:
                    renewed = now
                    if leading is None:
                        self.leading = True
                        lost = asyncio.Event()
                        self._log.info("became the leader", identity=self.identity)
                        leading = asyncio.create_task(lead(lost))
                elif leading is not None and now - renewed >= settings.renew_seconds:
                    self._log.warning("lost the leadership", identity=self.identity)
                    await self._stop_leading(leading, lost)
                    leading = None
                if leading is not None and leading.done():
                    await self._stop_leading(leading, lost)  # a bug: let another replica lead
                    leading = None
                    await self._release()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), settings.retry_seconds)
        finally:
            if leading is not None:
                await self._stop_leading(leading, lost)
                if settings.release_on_stop:
                    await self._release()

    async def _stop_leading(self, task: asyncio.Task[None], lost: asyncio.Event) -> None:
        self.leading = False
        lost.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    async def _try_acquire_or_renew(self) -> bool:
        settings = self._settings
        now = self._clock()
        loop = asyncio.get_running_loop()
        try:
            found = await self._client.get(LEASES, settings.namespace, settings.lease_name)
            if found is None:
                created = await self._client.create(
                    LEASES,
                    settings.namespace,
                    self._document(None, now, transitions=0, acquired=None),
                )
                if created.object is None:
                    return False  # another replica created it first
                self._seen(Lease.of(created.object), loop.time())
                return True
            lease = Lease.of(found)
            if self._observed is None or lease.spec != self._observed.spec:
                self._seen(lease, loop.time())
            spec = lease.spec
            holder = spec.holderIdentity
            duration = float(spec.leaseDurationSeconds or settings.lease_seconds)
            expired = loop.time() > self._observed_at + duration
            if holder and holder != self.identity and not expired:
                return False
            ours = holder == self.identity
            transitions = (spec.leaseTransitions or 0) + (0 if ours else 1)
            acquired = spec.acquireTime if ours else None
            document = self._document(lease, now, transitions=transitions, acquired=acquired)
            updated = await self._client.update(LEASES, settings.namespace, document)
            self._seen(Lease.of(updated), loop.time())
            return True
        except KubeError as exc:
            if exc.status != 409:
                self._log.warning("could not take or renew the lease", error=str(exc))
            return False

    def _seen(self, lease: Lease, at: float) -> None:
        self._observed = lease
        self._observed_at = at

    def _document(
        self,
        lease: Lease | None,
        now: datetime,
        *,
        transitions: int,
        acquired: str | None,
        holder: str | None = None,
        seconds: float | None = None,
    ) -> dict[str, Any]:
        """The Lease to write (``acquired`` None: acquired ``now``)."""
        settings = self._settings
        metadata = {"name": settings.lease_name, "namespace": settings.namespace}
        if lease is not None:
            metadata["resourceVersion"] = lease.resource_version
        spec = LeaseSpec(
            holderIdentity=self.identity if holder is None else holder,
            leaseDurationSeconds=max(1, round(seconds or settings.lease_seconds)),
            acquireTime=acquired or _micro_time(now),
            renewTime=_micro_time(now),
            leaseTransitions=transitions,
        )
        return {
            "apiVersion": LEASES.api_version,
            "kind": LEASES.kind,
            "metadata": metadata,
            "spec": spec.model_dump(mode="json"),
        }

    async def _release(self) -> None:
        """Give the Lease up: no holder, expiring in a second."""
        settings = self._settings
        try:
            found = await self._client.get(LEASES, settings.namespace, settings.lease_name)
            lease = Lease.of(found) if found is not None else None
            if lease is None or lease.spec.holderIdentity != self.identity:
                return
            document = self._document(
                lease,
                self._clock(),
                transitions=lease.spec.leaseTransitions or 0,
                acquired=lease.spec.acquireTime,
                holder="",
                seconds=1,
            )
            await self._client.update(LEASES, settings.namespace, document)
            self._log.info("released the lease", identity=self.identity)
        except KubeError as exc:
            self._log.warning("could not release the lease", error=str(exc))
