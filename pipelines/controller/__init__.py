"""``ai-operator controller``: keeps every served rule compiled, applied and reported in a cluster.

The controller watches PRReconciliationRules in the configured namespaces (or all of them) and,
for each rule, runs what ``ai-operator validate`` and ``ai-operator compile`` run, then applies
the CronWorkflow (or CronJob) by server-side apply, owned by the rule, and writes the rule's
status and events. It keeps no state of its own: a restart lists the rules and finds everything
already in place. Every rule is checked against the administrator's PRReconciliationLimits for
its namespace. Replicas elect one leader with a Lease; it adds no finalizers.

Modules: :mod:`~pipelines.controller.config` (the configuration file),
:mod:`~pipelines.controller.kube` (the API client), :mod:`~pipelines.controller.reconcile` (one
rule), :mod:`~pipelines.controller.checking` (checking a rule off the event loop, in time),
:mod:`~pipelines.controller.tenancy` (the limits; pure), :mod:`~pipelines.controller.sweep`
(what deleted rules left), :mod:`~pipelines.controller.leader` (the Lease),
:mod:`~pipelines.controller.status` (status, events, runs; pure),
:mod:`~pipelines.controller.runner` (watch, resync, work queue),
:mod:`~pipelines.controller.server` and :mod:`~pipelines.controller.metrics` (``/healthz``,
``/ready``, ``/metrics``).
"""

from __future__ import annotations

import asyncio

from ai_operator.pipelines.controller.config import ControllerConfig
from ai_operator.pipelines.controller.kube import Connection, KubeClient
from ai_operator.pipelines.controller.reconcile import delete_rule_metrics
from ai_operator.pipelines.controller.runner import Controller
from ai_operator.pipelines.controller.server import HealthServer

__all__ = ["Controller", "ControllerConfig", "delete_rule_metrics", "run_controller"]

ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - the kubelet's probes and Prometheus reach the pod's IP


async def run_controller(
    config: ControllerConfig,
    connection: Connection,
    stop: asyncio.Event,
    host: str = ALL_INTERFACES,
) -> None:
    """Serve until ``stop`` is set, with ``/healthz``, ``/ready`` and ``/metrics`` up."""
    async with KubeClient(connection) as client:
        controller = Controller(config, client)
        servers = [HealthServer(controller, host, config.health_port)]
        if config.metrics_port is not None and config.metrics_port != config.health_port:
            servers.append(HealthServer(controller, host, config.metrics_port, metrics_only=True))
        for server in servers:
            await server.start()
        try:
            await controller.run(stop)
        finally:
            for server in servers:
                await server.close()
