"""One act at a time per rule in the cluster: a ``coordination.k8s.io/v1`` Lease per rule.

The CronWorkflow keeps ``concurrencyPolicy: Forbid``, but a resubmitted or hand-submitted
workflow runs beside the scheduled one. Every act pod of a rule takes the rule's Lease before it
changes GitHub, with the run (the workflow's name) as ``holderIdentity``: the act pods of one
run share it and each renews it, a pod of another run finds it held and exits 75 (Argo retries it
later). No act pod gives it up, since sibling act pods of the same run may still be acting: the
run's exit handler (the report step, which always runs) releases it when the run holds it
(:meth:`RuleLease.release`). A lease is taken over once ``renewTime + leaseDurationSeconds`` has
passed, so a run that died holds nothing for long.
Writes carry the Lease's ``resourceVersion``: of two pods taking it at once, the API server lets
one through (409 Conflict for the other).

Requests: ``get``, ``create`` and ``update`` on ``leases`` in the workflow's namespace (the
chart's workflow Role grants them). Errors: :class:`LeaseHeld` (another run holds it);
:class:`~jobs.clients.kube.APIRequestError` when the API cannot be reached (the
caller then acts without the lease, as before it existed, and says so).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ai_operator.jobs.clients.kube import KubernetesAPI

DEFAULT_DURATION_SECONDS = 120


class LeaseHeld(Exception):
    """Another run holds the rule's lease; the message names it (retryable: it expires)."""

    retryable = True


class RuleLease:
    """The Lease ``namespace/name``, taken by ``holder``."""

    def __init__(
        self,
        api: KubernetesAPI,
        namespace: str,
        name: str,
        holder: str,
        *,
        duration_seconds: int = DEFAULT_DURATION_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._api = api
        self._path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
        self._collection = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        self.name = name
        self.holder = holder
        self.duration_seconds = duration_seconds
        self._clock = clock

    def acquire(self) -> None:
        """Take or renew the lease (raises LeaseHeld, or APIRequestError when unreachable)."""
        status, current = self._api.request("GET", self._path)
        now = self._clock()
        if status == 404:
            created, _ = self._api.request("POST", self._collection, self._document(now, None))
            if created == 409:
                raise LeaseHeld(f"lease {self.name} was just taken by another run")
            return
        spec = current.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        if holder and holder != self.holder and not self._expired(spec, now):
            raise LeaseHeld(
                f"another run ({holder}) is acting for this rule (lease {self.name}); "
                "this act is retried later"
            )
        version = (current.get("metadata") or {}).get("resourceVersion")
        updated, _ = self._api.request("PUT", self._path, self._document(now, version))
        if updated == 409:
            raise LeaseHeld(f"lease {self.name} was just taken by another run")

    def release(self) -> bool:
        """Give the lease up when this holder has it (best effort: it expires anyway).

        True when it was this holder's and is now free; a lease another run holds (or took
        over) is left as it is.
        """
        status, current = self._api.request("GET", self._path)
        spec = current.get("spec") or {}
        if status != 200 or spec.get("holderIdentity") != self.holder:
            return False
        released = self._document(
            self._clock(), (current.get("metadata") or {}).get("resourceVersion")
        )
        released["spec"]["holderIdentity"] = ""
        updated, _ = self._api.request("PUT", self._path, released)
        return updated == 200

    def _expired(self, spec: dict[str, Any], now: float) -> bool:
        renewed = spec.get("renewTime") or spec.get("acquireTime")
        try:
            at = datetime.fromisoformat(str(renewed).replace("Z", "+00:00")).timestamp()
        except ValueError:
            return True
        return now > at + float(spec.get("leaseDurationSeconds") or self.duration_seconds)

    def _document(self, now: float, version: str | None) -> dict[str, Any]:
        moment = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        metadata: dict[str, Any] = {"name": self.name}
        if version is not None:
            metadata["resourceVersion"] = version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                "holderIdentity": self.holder,
                "leaseDurationSeconds": self.duration_seconds,
                "acquireTime": moment,
                "renewTime": moment,
            },
        }
