"""Argo CD's API: the health and sync status of one application (:class:`ArgoCDClient`)."""

from ai_operator.jobs.clients.argocd.client import APPLICATION_NAME, ArgoCDClient
from ai_operator.jobs.clients.argocd.errors import (
    ERROR_KINDS,
    ApplicationMissing,
    ArgoCDAuthError,
    ArgoCDError,
    ArgoCDUnavailable,
    ArgoCDUnreachable,
    InvalidApplicationName,
)

__all__ = [
    "APPLICATION_NAME",
    "ERROR_KINDS",
    "ApplicationMissing",
    "ArgoCDAuthError",
    "ArgoCDClient",
    "ArgoCDError",
    "ArgoCDUnavailable",
    "ArgoCDUnreachable",
    "InvalidApplicationName",
]
