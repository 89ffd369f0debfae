"""Calling an ASGI application in-process: one HTTP request, and its lifespan.

A cluster worker serves forwarded requests with the single-process server's own FastAPI
application, called here as an HTTP server would call it (the ASGI protocol), so every
route, dependency and error handler runs unchanged. No sockets, no web framework imports.

A request is described by :class:`RequestHead` (picklable: it crosses process boundaries)
and its body arrives in pieces through :class:`BodyFeed`; the answer is a
:class:`Reply` (status, headers, body).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

Headers = List[Tuple[bytes, bytes]]
ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


@dataclass
class RequestHead:
    """An HTTP request without its body; ``headers`` as ASGI gives them (lower-case names)."""

    method: str
    path: str
    query_string: bytes = b""
    headers: Headers = field(default_factory=list)
    client: Tuple[str, int] = ("127.0.0.1", 0)

    def header(self, name: bytes) -> Optional[str]:
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return None


@dataclass
class Reply:
    """An HTTP answer: ``status``, ``headers`` (ASGI form) and the whole ``body``."""

    status: int
    headers: Headers
    body: bytes

    def header(self, name: bytes) -> Optional[str]:
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return None


class BodyFeed:
    """The request body, piece by piece, for the application's ``receive``.

    ``put(piece, more)`` waits while ``max_pieces`` pieces are queued (back-pressure: a
    streamed upload holds a few pieces, not the whole body). ``disconnect()`` tells the
    application the client went away. After the last piece ``receive`` waits until the
    answer is complete, then reports a disconnect, as a server does.
    """

    def __init__(self, max_pieces: int = 4):
        self._pieces: "asyncio.Queue[dict]" = asyncio.Queue(max_pieces)
        self._finished = asyncio.Event()
        self._ended = False

    @classmethod
    def whole(cls, body: bytes) -> "BodyFeed":
        """A feed holding the whole body."""
        feed = cls(max_pieces=1)
        feed._pieces.put_nowait({"type": "http.request", "body": body, "more_body": False})
        return feed

    async def put(self, piece: bytes, more: bool) -> bool:
        """Queue a piece; False when the application has answered already (it needs no
        more of the body)."""
        message = {"type": "http.request", "body": piece, "more_body": more}
        while not self._finished.is_set():
            try:
                self._pieces.put_nowait(message)
                return True
            except asyncio.QueueFull:
                answered = asyncio.ensure_future(self._finished.wait())
                room = asyncio.ensure_future(self._pieces.put(message))
                done, pending = await asyncio.wait({answered, room}, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
                if room in done:
                    return True
        return False

    def disconnect(self) -> None:
        self._ended = True
        try:
            self._pieces.put_nowait({"type": "http.disconnect"})
        except asyncio.QueueFull:  # the application is not reading: it answers anyway
            self._finished.set()

    def answered(self) -> None:
        self._finished.set()

    async def receive(self) -> dict:
        if not self._ended:
            message = await self._pieces.get()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                self._ended = True
            return message
        await self._finished.wait()
        return {"type": "http.disconnect"}


def http_scope(head: RequestHead, server: Tuple[str, int]) -> Dict[str, Any]:
    """The ASGI ``http`` scope of ``head``."""
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": head.method, "scheme": "http", "path": head.path, "raw_path": head.path.encode("latin-1"),
        "root_path": "", "query_string": head.query_string, "headers": list(head.headers),
        "client": tuple(head.client), "server": server, "state": {},
    }


async def call(app: ASGIApp, head: RequestHead, feed: BodyFeed,
               server: Tuple[str, int] = ("127.0.0.1", 0)) -> Reply:
    """Run one request through ``app``; returns its whole answer."""
    start: Dict[str, Any] = {}
    chunks: List[bytes] = []

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                feed.answered()

    try:
        await app(http_scope(head, server), feed.receive, send)
    finally:
        feed.answered()
    if not start:
        raise RuntimeError(f"the application sent no answer to {head.method} {head.path}")
    return Reply(int(start["status"]), list(start.get("headers", [])), b"".join(chunks))


async def call_whole(app: ASGIApp, head: RequestHead, body: bytes) -> Reply:
    """:func:`call` with the whole body at hand."""
    return await call(app, head, BodyFeed.whole(body))


class Lifespan:
    """Runs an application's ASGI lifespan: ``await start()`` before the first request,
    ``await stop()`` at the end (the server's reaper and shutdown run as under uvicorn)."""

    def __init__(self, app: ASGIApp):
        self._app = app
        self._inbox: "asyncio.Queue[dict]" = asyncio.Queue()
        self._outbox: "asyncio.Queue[dict]" = asyncio.Queue()
        self._task: Optional[asyncio.Task] = None

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                                     self._inbox.get, self._outbox.put))
        await self._inbox.put({"type": "lifespan.startup"})
        answer = await self._outbox.get()
        if answer["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"the application did not start: {answer.get('message', answer['type'])}")

    async def stop(self) -> None:
        if self._task is None:
            return
        await self._inbox.put({"type": "lifespan.shutdown"})
        await self._outbox.get()
        await self._task
        self._task = None
