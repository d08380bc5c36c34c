"""The global pause, as a namespace annotation: ``aioperator.io/paused: "true"``.

An operator stops every write of every rule in a namespace by annotating it (the
installation-wide switch is the chart's ``paused`` value, ``AI_OPERATOR_PAUSED`` in every pod).
The pipeline's steps read the annotation before any write (:func:`namespace_paused`); the
controller reads it to report the pause in each rule's status.

Reading the annotation needs ``get`` on that one Namespace: the chart grants it to the workflow's
service account by a namespaced Role (``resourceNames`` the namespace itself), since Kubernetes
checks a request for ``/api/v1/namespaces/NAME`` against the RBAC of namespace ``NAME``: no new
cluster-wide permission.

Errors: :class:`jobs.clients.kube.APIUnreadable` when the API refuses or cannot be reached; the
caller decides (the act step then defers its writes: an unreadable switch is treated as on).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

PAUSE_ANNOTATION = "aioperator.io/paused"
PAUSED_VALUES = frozenset({"true", "yes", "1", "on"})


class NamespaceReader(Protocol):
    """What reading the annotation needs (:class:`jobs.clients.kube.KubernetesAPI`)."""

    def get(self, path: str, what: str) -> dict[str, Any] | None:
        """The JSON object at ``path``; None when it does not exist."""


def paused_by(annotations: Mapping[str, Any] | None) -> bool:
    """Whether ``annotations`` pause writes (``aioperator.io/paused`` is ``"true"``)."""
    value = (annotations or {}).get(PAUSE_ANNOTATION)
    return isinstance(value, str) and value.strip().lower() in PAUSED_VALUES


def namespace_paused(api: NamespaceReader, namespace: str) -> bool:
    """Whether ``namespace`` carries the pause annotation (raises APIUnreadable)."""
    found = api.get(f"/api/v1/namespaces/{namespace}", f"namespace {namespace}")
    metadata = (found or {}).get("metadata") or {}
    return paused_by(metadata.get("annotations"))
