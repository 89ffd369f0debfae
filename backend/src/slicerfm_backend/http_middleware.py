"""The ASGI layer around every request: draining on shutdown, access log, request metrics.

* While the server drains (SIGTERM: see :mod:`.drain`), a new request is answered at once
  with 503 ``restarting`` and ``Retry-After``; requests already running finish.
* Every request is counted in flight (the drain waits for them), measured, and logged on
  ``slicerfm_backend.access`` as ``METHOD /route/{template} STATUS ms user`` -- the route
  template, never the path (ids) nor the query string.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING

from slicerfm_client import protocol

if TYPE_CHECKING:
    from .state import ServerState

log = logging.getLogger("slicerfm_backend.access")

RESTART_RETRY_AFTER_S = 5


def route_template(scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "(no route)"


class RequestLayer:
    def __init__(self, app, state: "ServerState"):
        self.app = app
        self.state = state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.state.drain.draining:
            return await self.restarting(send)
        status = [500]
        started = time.perf_counter()

        async def capture(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        self.state.drain.enter()
        try:
            await self.app(scope, receive, capture)
        finally:
            self.state.drain.leave()
            seconds = time.perf_counter() - started
            route = route_template(scope)
            self.state.metrics.observe_request(scope["method"], route, status[0], seconds)
            user = (scope.get("state") or {}).get("slicerfm_user", "-")
            log.info("%s %s %d %.1f ms %s", scope["method"], route, status[0], seconds * 1000.0, user)

    @staticmethod
    async def restarting(send) -> None:
        body = json.dumps({"error": protocol.ERROR_RESTARTING,
                           "message": "the server is restarting; your request was not run. Try again "
                                      "in a few seconds (the client does so by itself)"}).encode()
        await send({"type": "http.response.start", "status": 503,
                    "headers": [(b"content-type", b"application/json"),
                                (b"retry-after", str(RESTART_RETRY_AFTER_S).encode()),
                                (b"connection", b"close"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
