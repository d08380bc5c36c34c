"""Argo CD's status of each pull request's application, read once per application per pass.

A rule with ``argocdEnabled`` names its application per pull request
(``argocdAppNamePattern``, :func:`jobs.policy.prompt.argocd_app_name`). :class:`ApplicationHealth`
renders every name, asks Argo CD about each distinct one once, however many pull requests share
it, and hands the pull requests back carrying their application's status
(:meth:`~jobs.policy.snapshot.PullRequestSnapshot.with_argocd`): the prompt shows it as
``argocd.health`` and ``argocd.sync``, and the decision key includes it.

What could not be read is ``Unknown``, never a failure of the pass or of a pull request: each
error is logged once per application and counted by kind (:attr:`ApplicationHealth.errors`, the
``ai_operator_argocd_errors_total`` metric). A pattern that fails to render leaves that pull
request ``Unknown`` here; asking the model reports the template's error.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ai_operator.jobs.clients.argocd.errors import ArgoCDError
from ai_operator.jobs.log import get_logger
from ai_operator.jobs.policy.argocd import NOT_READ, ArgoCDStatus
from ai_operator.jobs.policy.prompt import argocd_app_name
from ai_operator.jobs.policy.snapshot import PullRequestSnapshot
from ai_operator.jobs.reconcile.ports import ArgoCDReader
from ai_operator.jobs.rules.model import PRReconciliationRule
from ai_operator.jobs.rules.template import TemplateError


class ApplicationHealth:
    """One pass's reads of Argo CD: each application once; the errors by kind."""

    def __init__(self, reader: ArgoCDReader | None) -> None:
        self._reader = reader
        self._read: dict[str, ArgoCDStatus] = {}
        self.errors: Counter[str] = Counter()

    def annotate(
        self, rule: PRReconciliationRule, prs: Sequence[PullRequestSnapshot]
    ) -> list[PullRequestSnapshot]:
        """``prs`` carrying their application's status (all of them unchanged when off)."""
        if self._reader is None or not rule.spec.argocdEnabled:
            return list(prs)
        return [pr.with_argocd(self._status(self._name(rule, pr), rule)) for pr in prs]

    def _name(self, rule: PRReconciliationRule, pr: PullRequestSnapshot) -> str:
        try:
            return str(argocd_app_name(rule.spec, pr))
        except TemplateError:
            return ""

    def _status(self, name: str, rule: PRReconciliationRule) -> ArgoCDStatus:
        if not name or self._reader is None:
            return NOT_READ
        if name not in self._read:
            try:
                self._read[name] = self._reader.application(name)
            except ArgoCDError as exc:
                self._read[name] = NOT_READ
                self.errors[exc.kind] += 1
                get_logger("argocd", rule=rule.qualified_name).warning(
                    "Argo CD application not read: its health is Unknown",
                    application=name,
                    kind=exc.kind,
                    error=str(exc),
                )
        return self._read[name]
