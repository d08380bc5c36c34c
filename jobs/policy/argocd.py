"""Argo CD's word on a pull request's application: its health and sync status. Pure.

A rule that sets ``argocdEnabled`` names one Argo CD application per pull request
(``argocdAppNamePattern``); the pass reads it once (:mod:`jobs.clients.argocd`) and every pull
request naming it carries the same :class:`ArgoCDStatus`. What could not be read (Argo CD off or
unreachable, the token refused, the application missing) is ``Unknown``: never an error of the
pull request, never a guess.

The status is a fact of the decision: :meth:`ArgoCDStatus.facts` is part of the decision key
(:func:`jobs.policy.reuse.decision_key`), so a PR whose application turns from Healthy to
Degraded is decided again, and one whose status stayed the same keeps its decision. An unknown
status keeps the key it always had (``argocd=Unknown``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator

UNKNOWN = "Unknown"
HEALTH_STATES = ("Healthy", "Progressing", "Degraded", "Suspended", "Missing", UNKNOWN)
"""Argo CD's ``.status.health.status`` values."""
SYNC_STATES = ("Synced", "OutOfSync", UNKNOWN)
"""Argo CD's ``.status.sync.status`` values."""


class ArgoCDStatus(BaseModel):
    """An application's health and sync status as Argo CD reported them (``Unknown``: unread)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    health: str = UNKNOWN
    sync: str = UNKNOWN

    @field_validator("health")
    @classmethod
    def _health(cls, value: str) -> str:
        return value if value in HEALTH_STATES else UNKNOWN

    @field_validator("sync")
    @classmethod
    def _sync(cls, value: str) -> str:
        return value if value in SYNC_STATES else UNKNOWN

    @property
    def known(self) -> bool:
        """Whether Argo CD said anything (health or sync other than ``Unknown``)."""
        return (self.health, self.sync) != (UNKNOWN, UNKNOWN)

    def facts(self) -> str:
        """The part of the decision key: ``argocd=Unknown``, or ``argocd=Healthy/Synced``."""
        return f"argocd={self.health}/{self.sync}" if self.known else f"argocd={UNKNOWN}"


NOT_READ = ArgoCDStatus()
"""What a pull request carries when Argo CD was not asked, or could not answer."""
