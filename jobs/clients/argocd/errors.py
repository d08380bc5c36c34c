"""What can go wrong asking Argo CD about an application; what the pass reads of it.

Each error has ``kind``, the label it is counted under in ``ai_operator_argocd_errors_total``. None
is retried within a pass and none stops it: the application's status is then ``Unknown``.

    ArgoCDError
    ├── ArgoCDUnreachable       kind "unreachable": host not found, refused, TLS, timeout
    ├── ArgoCDAuthError         kind "auth": HTTP 401 or 403 (the token refused)
    ├── ApplicationMissing      kind "missing": HTTP 404
    ├── ArgoCDUnavailable       kind "unavailable": 5xx, or an answer that is not an application
    └── InvalidApplicationName  kind "name": not a Kubernetes object name (never sent)
"""

from __future__ import annotations

from typing import ClassVar

ERROR_KINDS = ("unreachable", "auth", "missing", "unavailable", "name")
"""Every ``kind``: the fixed label values of the errors' metric."""


class ArgoCDError(Exception):
    """Argo CD could not tell an application's status; ``kind`` names how."""

    kind: ClassVar[str] = "error"


class ArgoCDUnreachable(ArgoCDError):
    """No answer: the host, the connection or TLS failed, or it timed out."""

    kind = "unreachable"


class ArgoCDAuthError(ArgoCDError):
    """Argo CD refused the token (HTTP 401 or 403)."""

    kind = "auth"


class ApplicationMissing(ArgoCDError):
    """No application of that name (HTTP 404)."""

    kind = "missing"


class ArgoCDUnavailable(ArgoCDError):
    """Argo CD answered, but not with an application (5xx, or a body that is not one)."""

    kind = "unavailable"


class InvalidApplicationName(ArgoCDError):
    """The name cannot be an application's: it is never sent."""

    kind = "name"
