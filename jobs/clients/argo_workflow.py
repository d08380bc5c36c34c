"""The run's own Workflow, read through the API by the exit handler: its failed nodes.

The report step learns which nodes failed, and why, by reading its Workflow object (``get`` on
``workflows.argoproj.io`` in the workflow's namespace) rather than from ``{{workflow.failures}}``:
that argument lists every failed node and retry with its message, and at a few hundred failing
pull requests it exceeds what Linux allows one argument (128 KiB), so the report step could not
start exactly when the metrics matter. Its own arguments stay a few names long.

Errors: :class:`~jobs.clients.kube.APIUnreadable` (the API unreachable, refusing, or the
Workflow gone): the caller reports without the node list. No credential is ever in a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from ai_operator.jobs.clients.kube import APIUnreadable, KubernetesAPI

FAILED_PHASES = frozenset({"Failed", "Error"})


@dataclass(frozen=True)
class FailedNode:
    """One failed node of the run: its name, type (Pod, Retry, DAG ...), template and message."""

    name: str
    kind: str
    template: str
    message: str


def failed_nodes(api: KubernetesAPI, namespace: str, name: str) -> list[FailedNode]:
    """The failed nodes of Workflow ``namespace/name``, by name (raises APIUnreadable)."""
    path = f"/apis/argoproj.io/v1alpha1/namespaces/{quote(namespace)}/workflows/{quote(name)}"
    document = api.get(path, f"Workflow {name}")
    if document is None:
        raise APIUnreadable(f"Workflow {name} does not exist")
    status = document.get("status")
    nodes = status.get("nodes") if isinstance(status, dict) else None
    if isinstance(status, dict) and status.get("offloadNodeStatusVersion") and not nodes:
        raise APIUnreadable(f"Workflow {name} keeps its nodes in Argo's database (offloaded)")
    if not isinstance(nodes, dict):
        return []
    found = [
        FailedNode(
            name=str(node.get("displayName") or node.get("name") or ""),
            kind=str(node.get("type") or ""),
            template=str(node.get("templateName") or ""),
            message=str(node.get("message") or ""),
        )
        for node in nodes.values()
        if isinstance(node, dict) and node.get("phase") in FAILED_PHASES
    ]
    return sorted(found, key=lambda node: node.name)
