"""The controller's Kubernetes API client: the shared one, :mod:`jobs.clients.kube`.

The controller and the pipeline steps send their requests through the same client, retries by
verb and error tree; this module names what the controller uses.
"""

from __future__ import annotations

from ai_operator.jobs.clients.kube import (
    APPLY_PATCH,
    CONFIG_MAPS,
    CRON_JOBS,
    CRON_WORKFLOWS,
    EVENTS,
    JOBS,
    LEASES,
    LIMITS,
    MERGE_PATCH,
    RULES,
    SERVICE_ACCOUNT_DIR,
    WORKFLOWS,
    Connection,
    Created,
    Gone,
    KubeClient,
    KubeError,
    NotFound,
    ObjectList,
    Resource,
    RetryPolicy,
    Sleep,
    Unavailable,
    WatchEvent,
    WatchEventType,
    load_connection,
)

WORKFLOW_TEMPLATES = Resource("argoproj.io", "v1alpha1", "workflowtemplates", "WorkflowTemplate")
SENSORS = Resource("argoproj.io", "v1alpha1", "sensors", "Sensor")
"""Argo Events: a rule's Sensor (only with events)."""

__all__ = [
    "APPLY_PATCH",
    "CONFIG_MAPS",
    "CRON_JOBS",
    "CRON_WORKFLOWS",
    "EVENTS",
    "JOBS",
    "LEASES",
    "LIMITS",
    "MERGE_PATCH",
    "RULES",
    "SENSORS",
    "SERVICE_ACCOUNT_DIR",
    "WORKFLOWS",
    "WORKFLOW_TEMPLATES",
    "Connection",
    "Created",
    "Gone",
    "KubeClient",
    "KubeError",
    "NotFound",
    "ObjectList",
    "Resource",
    "RetryPolicy",
    "Sleep",
    "Unavailable",
    "WatchEvent",
    "WatchEventType",
    "load_connection",
]
