"""The cluster's HTTP front: an ASGI application that hands every request to :class:`.router.Router`.

It runs under uvicorn in ``slicerfm-backend serve --ray`` (and inside a Ray Serve replica,
:mod:`.serve_app`). It reads a request's head and streams its body to the chosen worker;
it keeps no session state of its own, so several ingresses can serve one cluster.
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable, Tuple

from slicerfm_client import protocol

from ..drain import Drain
from ..http_middleware import RequestLayer
from .asgi_call import RequestHead
from .pool import WorkerPool
from .router import ClientGone, Router, error_reply

log = logging.getLogger(__name__)


class ReceiveBody:
    """The request body from ASGI ``receive``, read in pieces of at least a given size."""

    def __init__(self, receive: Callable[[], Awaitable[dict]]):
        self._receive = receive
        self._more = True

    async def read(self, at_least: int) -> Tuple[bytes, bool]:
        pieces, size = [], 0
        while self._more and size < at_least:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            piece = message.get("body", b"")
            pieces.append(piece)
            size += len(piece)
            self._more = bool(message.get("more_body", False))
        return b"".join(pieces), self._more


class Ingress:
    """ASGI application: ``lifespan`` asks the workers for their load once; ``http``
    requests are forwarded. ``keeps_sessions``: the server has a state directory."""

    def __init__(self, pool: WorkerPool, keeps_sessions: bool = False):
        self.router = Router(pool, keeps_sessions)
        self.drain = Drain()  # SIGTERM: new requests answer 503 restarting, running ones finish

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if self.drain.draining:
            await RequestLayer.restarting(send)
            return
        head = RequestHead(scope["method"], scope["path"], scope.get("query_string", b""),
                           list(scope.get("headers", [])), tuple(scope.get("client") or ("", 0)))
        self.drain.enter()
        try:
            reply = await self.router.forward(head, ReceiveBody(receive))
        except ClientGone:
            return
        except Exception as error:  # noqa: BLE001 -- the ingress keeps serving
            # Neither the path nor the message: both may hold ids.
            log.error("forwarding a %s request failed (%s)", head.method, type(error).__name__)
            reply = error_reply(protocol.ERROR_INTERNAL, "the cluster's ingress failed to forward this request; "
                                "the server log has the details")
        finally:
            self.drain.leave()
        await send({"type": "http.response.start", "status": reply.status, "headers": reply.headers})
        await send({"type": "http.response.body", "body": reply.body})

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.router.pool.refresh(force=True)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
