"""The controller's own metrics, in Prometheus' text format (served on ``/metrics``).

One gauge, ``ai_operator_rules_total{namespace, state}``: how many rules of a namespace are
``ready``, ``invalid`` or ``apply_failed`` (every state is present, 0 when none is). Each scrape
renders the controller's current view into a fresh registry: nothing global, nothing kept.

The runs' metrics are not here: each run pushes its own to the Pushgateway
(:mod:`jobs.clients.metrics`). This module and that one are the only users of
``prometheus_client``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ai_operator.pipelines.controller.status import STATES, RuleState

CONTENT_TYPE = CONTENT_TYPE_LATEST
RULES_TOTAL = "ai_operator_rules_total"


def exposition(states: Iterable[RuleState], namespaces: Iterable[str] = ()) -> bytes:
    """The text format for the rules' states; ``namespaces`` are always shown."""
    counts = Counter((rule.namespace, rule.state) for rule in states)
    shown = sorted(set(namespaces) | {namespace for namespace, _ in counts})
    family = GaugeMetricFamily(
        RULES_TOTAL,
        "Rules the controller serves, per namespace and state (ready, invalid, apply_failed).",
        labels=("namespace", "state"),
    )
    for namespace in shown:
        for state in STATES:
            family.add_metric([namespace, state], counts[(namespace, state)])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed([family]))
    return generate_latest(registry)


class _Fixed(Collector):
    """Yields metric families computed beforehand."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        """Yield the families given at construction."""
        return iter(self._families)
