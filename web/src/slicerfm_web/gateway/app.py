"""The gateway's aiohttp application: tabs on demand, forwarding, access token, status.

Routes:
    GET  /                  a new tab: starts (or takes a spare) tab process, redirects to it
    ANY  /t/<tab id>/...    forwarded to that tab's process (``/t/<id>/ws``: its websocket)
    GET  /api/status        JSON: backend URL, tabs (pid, age, resident memory)
    GET/POST /login         the access token form (only when a web token is set)
"""

from __future__ import annotations

import html
import logging
import tempfile
from pathlib import Path
from typing import Optional

from aiohttp import web

from ..settings import WebSettings
from .auth import auth_middleware, login_handler, login_page, loopback_host_middleware
from .backend import BackendSupervisor
from .proxy import Proxy
from .tabs import TabPool, TooManyTabs

log = logging.getLogger(__name__)
GATEWAY = web.AppKey("gateway", object)

MESSAGE_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>SlicerFM</title>
<style>body{{font-family:sans-serif;background:#222;color:#eee;padding:40px}}a{{color:#90caf9}}</style>
</head><body><h3>SlicerFM</h3><p id="message">{message}</p><p><a href="/">{link}</a></p></body></html>"""


def message_page(message: str, link: str = "Open a new session", status: int = 200) -> web.Response:
    return web.Response(text=MESSAGE_PAGE.format(message=html.escape(message), link=link),
                        content_type="text/html", status=status)


class Gateway:
    """Owns the tab pool, the proxy and (``--local``) the backend process."""

    def __init__(self, settings: WebSettings):
        self.settings = settings
        self.log_dir = Path(settings.log_dir or tempfile.mkdtemp(prefix="slicerfm-web-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.supervisor: Optional[BackendSupervisor] = None
        if settings.local:
            self.supervisor = BackendSupervisor(settings.backend, settings.engines, settings.device,
                                                self.log_dir / "backend.log")
        self.pool = TabPool(settings, self.backend_url, self.log_dir)
        self.proxy = Proxy()

    def backend_url(self) -> str:
        return self.supervisor.url if self.supervisor is not None else self.settings.server_url

    async def startup(self, _app=None) -> None:
        await self.proxy.start()
        if self.supervisor is not None:
            url = await self.supervisor.start()
            log.info("local backend at %s (log %s)", url, self.supervisor.log_path)
        self.pool.fill_spares()

    async def shutdown(self, _app=None) -> None:
        await self.pool.stop_all()
        await self.proxy.close()
        if self.supervisor is not None:
            await self.supervisor.stop()

    # -- handlers --------------------------------------------------------------------------------

    async def new_tab(self, request: web.Request) -> web.StreamResponse:
        try:
            tab = await self.pool.new_tab()
        except TooManyTabs as error:
            return message_page(str(error), link="Try again", status=503)
        except RuntimeError as error:
            log.error("%s", error)
            return message_page("A new session could not be started; the server's log says why.",
                                link="Try again", status=500)
        raise web.HTTPFound(f"/t/{tab.tab_id}/")

    async def forward(self, request: web.Request) -> web.StreamResponse:
        tab_id = request.match_info["tab_id"]
        path = request.match_info.get("path", "")
        tab = self.pool.get(tab_id)
        if tab is None:
            if request.method == "GET" and path in ("", "index.html"):
                return message_page("This session has ended: its tab was closed for a while, or "
                                    "the server restarted. Your work in it is not kept on the "
                                    "server; download segmentations before closing a tab.",
                                    status=410)
            return web.Response(status=410, text="this session has ended")
        if path == "ws" and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.proxy.websocket(request, tab)
        return await self.proxy.http(request, tab, path)

    async def add_slash(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"/t/{request.match_info['tab_id']}/")

    async def status(self, _request: web.Request) -> web.Response:
        supervisor = self.supervisor
        return web.json_response({
            "backend": {"url": self.backend_url(), "local": supervisor is not None,
                        "restarts": supervisor.restarts if supervisor else 0},
            "tabs": self.pool.describe(), "max_tabs": self.settings.max_tabs})


def make_app(settings: WebSettings) -> web.Application:
    gateway = Gateway(settings)
    checks = [auth_middleware(settings.web_token)]
    if not settings.web_token:                 # loopback only (settings.validate): by name too
        checks.insert(0, loopback_host_middleware())
    app = web.Application(middlewares=checks, client_max_size=settings.max_upload_bytes + (1 << 20))
    app[GATEWAY] = gateway
    app.on_startup.append(gateway.startup)
    app.on_cleanup.append(gateway.shutdown)
    app.router.add_get("/", gateway.new_tab)
    app.router.add_get("/api/status", gateway.status)
    if settings.web_token:
        app.router.add_get("/login", login_page)
        app.router.add_post("/login", login_handler(settings.web_token))
    app.router.add_get("/t/{tab_id}", gateway.add_slash)
    app.router.add_route("*", "/t/{tab_id}/{path:.*}", gateway.forward)
    return app
