"""The steps' names for the one Kubernetes client, :mod:`jobs.clients.kube`.

The fetch and act steps read and write the rule's outcome index (ConfigMaps,
:mod:`jobs.clients.outcome_index`), act takes the rule's Lease (:mod:`jobs.clients.rule_lease`),
and the exit handler reads its own Workflow (:mod:`jobs.clients.argo_workflow`), all through
:class:`~jobs.clients.kube.KubernetesAPI`, the synchronous facade of the controller's client.
"""

from __future__ import annotations

from jobs.clients.kube import (
    API_URL_VARIABLE,
    SERVICE_ACCOUNT_DIR,
    STEP_RETRY,
    APIRequestError,
    APIUnreadable,
    KubernetesAPI,
)

SERVICE_ACCOUNT = SERVICE_ACCOUNT_DIR

__all__ = [
    "API_URL_VARIABLE",
    "SERVICE_ACCOUNT",
    "STEP_RETRY",
    "APIRequestError",
    "APIUnreadable",
    "KubernetesAPI",
]
