"""The controller's HTTP endpoints: ``/healthz``, ``/ready`` and ``/metrics``.

- ``/healthz`` answers 200 while the controller's loops run (the liveness probe);
- ``/ready`` answers 200 once every served scope has been listed, 503 before (readiness);
- ``/metrics`` is :func:`pipelines.controller.metrics.exposition` of the rules' states.

All three are on the health port; ``/metrics`` also on the metrics port when that is another.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from ai_operator.pipelines.controller.metrics import CONTENT_TYPE, exposition
from ai_operator.pipelines.controller.status import RuleState

HEALTHZ_PATH = "/healthz"
READY_PATH = "/ready"
METRICS_PATH = "/metrics"


class Observed(Protocol):
    """What the endpoints read from the controller."""

    @property
    def alive(self) -> bool:
        """The controller's loops are running."""
        ...

    @property
    def ready(self) -> bool:
        """Every served scope has been listed at least once."""
        ...

    def rule_states(self) -> list[RuleState]:
        """The namespace and state of every rule served."""
        ...

    def served_namespaces(self) -> tuple[str, ...]:
        """The configured namespaces (empty: every namespace)."""
        ...


class HealthServer:
    """Serves the endpoints on ``host:port`` (port 0: any free port) until closed."""

    def __init__(
        self, controller: Observed, host: str, port: int, *, metrics_only: bool = False
    ) -> None:
        self._controller = controller
        self._host = host
        self._port = port
        self._metrics_only = metrics_only
        self._runner: web.AppRunner | None = None
        self.port = port

    async def start(self) -> None:
        """Bind and start serving."""
        app = web.Application()
        app.router.add_get(METRICS_PATH, self._metrics)
        if not self._metrics_only:
            app.router.add_get(HEALTHZ_PATH, self._healthz)
            app.router.add_get(READY_PATH, self._ready)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        addresses = self._runner.addresses
        if addresses:
            self.port = int(addresses[0][1])

    async def close(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _request: web.Request) -> web.Response:
        ok = self._controller.alive
        return web.Response(text="ok\n" if ok else "stopped\n", status=200 if ok else 503)

    async def _ready(self, _request: web.Request) -> web.Response:
        ok = self._controller.ready
        return web.Response(text="ready\n" if ok else "not ready\n", status=200 if ok else 503)

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = exposition(self._controller.rule_states(), self._controller.served_namespaces())
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE
        return response
