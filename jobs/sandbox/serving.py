"""The lifecycle the sandbox's HTTP stand-ins share: one server on a free port of 127.0.0.1.

    class FakeThing(LoopbackService):
        def _new_server(self) -> ThreadingHTTPServer:
            return _Server(self)           # bound to ("127.0.0.1", 0)

    with FakeThing() as thing:
        ...  # thing.port

:meth:`LoopbackService.start` serves in a daemon thread; :meth:`~LoopbackService.stop` shuts the
server down, lets a subclass close what it keeps open (:meth:`~LoopbackService._closing`), then
releases the port. Test and demo scaffolding: the product talks to these over HTTP only.
"""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Self

POLL_SECONDS = 0.01
"""How often the serving loop looks for a shutdown (the standard library's default is 0.5 s)."""


class LoopbackService:
    """A stand-in served over HTTP on 127.0.0.1; start with ``with`` or ``start()``/``stop()``."""

    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def _new_server(self) -> ThreadingHTTPServer:
        """A server bound to a free port of 127.0.0.1, not yet serving."""
        raise NotImplementedError

    def _closing(self, server: ThreadingHTTPServer) -> None:
        """Called between the shutdown and the release of the port (nothing by default)."""

    def start(self) -> Self:
        """Listen on a free port of 127.0.0.1 (once: a started service stays as it is)."""
        if self._server is None:
            self._server = self._new_server()
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": POLL_SECONDS},
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and release the port (nothing when not started)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.shutdown()
        self._closing(server)
        server.server_close()
        thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port served; RuntimeError when not started."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return int(self._server.server_address[1])
