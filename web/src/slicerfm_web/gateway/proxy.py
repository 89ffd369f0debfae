"""Forwarding a page's requests to its tab process: HTTP (streamed both ways) and websocket.

``/t/<tab id>/<rest>`` goes to ``http://127.0.0.1:<tab port>/<rest>`` with the tab's key in
:data:`~slicerfm_web.tab.config.TAB_KEY_HEADER`; hop-by-hop headers and the browser's
cookies and Authorization stay at the gateway. Bodies are streamed, not buffered (a 2 GB
upload costs the gateway no memory), and responses are passed on as they come (no
decompression and re-compression).
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from aiohttp import web

from ..tab.config import TAB_KEY_HEADER
from .tabs import TabProcess

log = logging.getLogger(__name__)
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailers", "transfer-encoding", "upgrade", "host", "cookie", "authorization",
              "content-length"}
CHUNK = 1 << 16


def _forward_headers(headers, key: str) -> dict:
    out = {name: value for name, value in headers.items() if name.lower() not in HOP_BY_HOP}
    out[TAB_KEY_HEADER] = key
    return out


def _response_headers(headers) -> dict:
    return {name: value for name, value in headers.items()
            if name.lower() not in HOP_BY_HOP and name.lower() != "set-cookie"}


class Proxy:
    def __init__(self):
        self.session: aiohttp.ClientSession = None

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(auto_decompress=False,
                                             timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def http(self, request: web.Request, tab: TabProcess, path: str) -> web.StreamResponse:
        url = f"http://127.0.0.1:{tab.port}/{path}"
        if request.query_string:
            url += f"?{request.query_string}"
        headers = _forward_headers(request.headers, tab.key)
        if request.content_length is not None:
            headers["Content-Length"] = str(request.content_length)
        body = request.content if request.body_exists else None
        try:
            async with self.session.request(request.method, url, headers=headers, data=body,
                                            allow_redirects=False) as upstream:
                response = web.StreamResponse(status=upstream.status,
                                              headers=_response_headers(upstream.headers))
                if upstream.headers.get("Content-Length") is not None:
                    response.content_length = int(upstream.headers["Content-Length"])
                await response.prepare(request)
                async for chunk in upstream.content.iter_chunked(CHUNK):
                    await response.write(chunk)
                await response.write_eof()
                return response
        except aiohttp.ClientError as error:
            log.warning("tab %s did not answer %s: %s", tab.tab_id, path, error)
            raise web.HTTPBadGateway(text="this tab's process is not answering; reload the page "
                                          "to start a new session") from error

    async def websocket(self, request: web.Request, tab: TabProcess) -> web.WebSocketResponse:
        # no permessage-deflate: most of what flows to the page is JPEG frames, which do not
        # shrink, and aiohttp deflates messages over 16 KB in an executor thread (a thread hop
        # and a GIL round per frame on the way to the page)
        browser = web.WebSocketResponse(max_msg_size=0, autoping=True, compress=False)
        await browser.prepare(request)
        try:
            async with self.session.ws_connect(f"http://127.0.0.1:{tab.port}/ws",
                                               headers={TAB_KEY_HEADER: tab.key},
                                               max_msg_size=0, autoping=True) as upstream:
                await _pump(browser, upstream)
        except aiohttp.ClientError as error:
            log.warning("tab %s websocket failed: %s", tab.tab_id, error)
        finally:
            if not browser.closed:
                await browser.close()
        return browser


async def _pump(browser: web.WebSocketResponse, upstream) -> None:
    """Copy messages both ways until either side closes."""
    async def copy(source, sink):
        async for message in source:
            if message.type == aiohttp.WSMsgType.TEXT:
                await sink.send_str(message.data)
            elif message.type == aiohttp.WSMsgType.BINARY:
                await sink.send_bytes(message.data)
            elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.ERROR):
                break
        await sink.close()

    tasks = [asyncio.ensure_future(copy(browser, upstream)),
             asyncio.ensure_future(copy(upstream, browser))]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    for task in done:
        if task.exception() is not None and not isinstance(task.exception(), ConnectionResetError):
            log.debug("websocket copy ended: %r", task.exception())
