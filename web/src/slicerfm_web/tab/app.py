"""One tab process: a trame server with its own scene, views, Logic and HTTP routes.

Started by the gateway (``python -m slicerfm_web.tab``, configuration on stdin); prints
``{"port": N}`` on stdout once it listens on 127.0.0.1, and ends ``grace_s`` seconds after
its page disconnected (releasing its backend session).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import sys
import time
from pathlib import Path

from aiohttp import web
from trame.app import get_server
from trame_server.utils.asynchronous import create_task

from trame_slicer import module as trame_slicer_module
from trame_slicer.core import SlicerApp

from .clicks import ViewClicks
from .config import TAB_KEY_HEADER, TabConfig
from .downloads import Downloads
from .jobs_panels import AutoPanel, RegistrationPanel
from .loading import Loader
from .session import Session
from .ui import build_page
from .views import register_views
from .workspace import Workspace

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parents[1] / "static"


class Lifetime:
    """Ends the tab when no page has been connected for ``grace_s`` seconds (``unclaimed_s``
    before the first page) -- it counts open websockets as they pass through a middleware --
    or when the gateway that started it is gone."""

    def __init__(self, server, grace_s: float, unclaimed_s: float):
        self.server = server
        self.grace_s, self.unclaimed_s = grace_s, unclaimed_s
        self.connections = 0
        self.claimed = False
        self.idle_since = time.monotonic()
        self.parent = os.getppid()

    @web.middleware
    async def count(self, request, handler):
        if request.path != "/ws":
            return await handler(request)
        self.connections += 1
        self.claimed = True
        try:
            return await handler(request)
        finally:
            self.connections -= 1
            self.idle_since = time.monotonic()

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            limit = self.grace_s if self.claimed else self.unclaimed_s
            if self.connections == 0 and time.monotonic() - self.idle_since > limit:
                log.info("no page for %.0f s: the tab ends", limit)
                await self.server.stop()
                return
            if os.getppid() != self.parent:
                log.warning("the slicerfm-web gateway is gone: the tab ends")
                await self.server.stop()
                return


def tab_key_middleware(expected: str):
    """Refuse (403) any request without the gateway's key for this tab."""
    @web.middleware
    async def check(request, handler):
        given = request.headers.get(TAB_KEY_HEADER, "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return web.Response(status=403, text="this tab is reached through slicerfm-web only")
        return await handler(request)
    return check


class TabApp:
    def __init__(self, config: TabConfig, server=None):
        self.config = config
        self.server = server or get_server(client_type="vue3")
        self.server.enable_module(trame_slicer_module)
        self.server.enable_module({"serve": {"slicerfm_web": str(STATIC)},
                                   "scripts": ["slicerfm_web/slicerfm.js"],
                                   "styles": ["slicerfm_web/slicerfm.css"]})
        state = self.server.state
        state.trame__title = config.title
        state.upload_percent = None
        state.snackbar = False
        self.slicer_app = SlicerApp()
        register_views(self.slicer_app.view_manager, self.server)
        self.session = Session(state, config.backend_url, config.backend_token, config.ca_bundle,
                               config.allow_insecure_http)
        self.workspace = Workspace(self.server, self.slicer_app, self.session)
        self.loader = Loader(state, config, self.workspace.open_image, self.session.message)
        self.downloads = Downloads(lambda: (self.workspace.volume(), self.workspace.segmentation()))
        self.auto = AutoPanel(state, self.session, self.workspace, config.auto_engine_names())
        self.registration = RegistrationPanel(state, self.session, self.workspace)
        self.clicks = ViewClicks(self.workspace.tools, self.workspace.views, self.session.click_received)
        self._register_triggers()
        build_page(self.server, self.workspace.views, config.title)
        self.lifetime = Lifetime(self.server, config.grace_s, config.unclaimed_s)
        ctrl = self.server.controller
        ctrl.on_server_bind.add(self._bind_routes)
        ctrl.on_server_ready.add(self._ready)
        ctrl.on_server_exited.add(self._exited)

    # -- triggers (page -> server) -------------------------------------------------------------

    def _register_triggers(self) -> None:
        workspace, session = self.workspace, self.session
        logic = session.interactive
        actions = {
            "set_tool": workspace.tools.set_tool,
            "undo": lambda: logic.undo(),
            "redo": lambda: logic.redo(),
            "reset_segment": workspace.reset_segment,
            "cancel": logic.cancel,
            "cancel_propagation": session.cancel_propagation,
            "set_engine": session.set_engine,
            "set_preset": workspace.set_preset,
            "set_show_3d": workspace.set_show_3d,
            "set_layout": workspace.views.set_layout,
            "add_segment": lambda: workspace.add_segment(),
            "select_segment": workspace.select_segment,
            "rename_segment": workspace.segments.rename,
            "set_segment_colour": workspace.segments.set_colour,
            "set_segment_visible": workspace.segments.set_visible,
            "set_segment_locked": workspace.set_locked,
            "delete_segment": self._delete_segment,
            "go_to": self._go_to,
            "click_view": self.clicks.click,
            "run_auto": self.auto.run,
            "set_auto_engine": self.auto.set_engine,
            "cancel_auto": self.auto.cancel,
            "run_registration": self.registration.run,
            "cancel_registration": self.registration.cancel,
            "carry_segments": self.registration.carry,
            "client_error": lambda text: session.message(str(text)[:500], "error"),
            "page_opened": self._page_opened,
        }
        for name, action in actions.items():
            self.server.trigger(name)(self._guarded(action))
        # the tab's monotonic clock in ms, to line up page and tab timings (benchmarks)
        self.server.trigger("clock")(lambda: time.monotonic() * 1000.0)
        for name, coroutine in (("choose_series", self.loader.choose_series),
                                ("open_data_entry", self.loader.open_data_entry)):
            self.server.trigger(name)(self._scheduled(coroutine))

    def _guarded(self, action):
        def run(*args):
            self.session.attempt(action, *args)
        return run

    def _scheduled(self, coroutine):
        def run(*args):
            create_task(coroutine(*args))
        return run

    def _page_opened(self) -> None:
        """A page (re)connected: send it fresh frames of every view and the geometry."""
        for view in self.slicer_app.view_manager.get_views():
            view.schedule_render()
        self.workspace.views.publish_geometry()

    def _delete_segment(self, segment_id: str) -> None:
        self.workspace.segments.delete(segment_id)
        self.workspace.sync_inputs()

    def _go_to(self, text: str) -> None:
        try:
            values = [float(v) for v in str(text).replace(";", ",").replace(" ", ",").split(",") if v]
        except ValueError:
            values = []
        if len(values) != 3:
            raise ValueError("type three numbers R, A, S in mm, e.g. 60, 20, -50")
        self.workspace.views.jump_to(values)

    # -- lifecycle -----------------------------------------------------------------------------

    def _bind_routes(self, wslink_server) -> None:
        app = wslink_server.app
        if self.config.tab_key:
            app.middlewares.append(tab_key_middleware(self.config.tab_key))
        app.middlewares.append(self.lifetime.count)
        app.router.add_post("/upload", self.loader.handle_upload)
        app.router.add_get("/download/{kind}", self.downloads.handle)
        app.router.add_post("/paraview/", self._session_url)

    async def _session_url(self, _request) -> web.Response:
        """The trame client asks a launcher where its websocket is: here, under base_path."""
        return web.json_response({"sessionURL": f"ws://USE_HOST{self.config.base_path}ws"})

    def _ready(self, **_) -> None:
        self.session.start()
        create_task(self.lifetime.watch())
        sys.stdout.write(json.dumps({"port": self.server.port}) + "\n")
        sys.stdout.flush()

    def _exited(self, **_) -> None:
        log.info("tab %s closed: releasing its backend session", self.config.tab_id)
        try:
            self.session.close()
        finally:
            self.loader.close()

    def start(self, port: int = 0) -> None:
        self.server.start(port=port, host="127.0.0.1", timeout=0,
                          open_browser=False, show_connection_info=False)


def main(argv=None) -> int:
    """Entry point of ``python -m slicerfm_web.tab``: read the configuration from stdin."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s tab %(name)s %(levelname)s %(message)s")
    for name in ("slicerfm_web", "SlicerFMLib"):
        logging.getLogger(name).setLevel(logging.INFO)
    sys.argv = sys.argv[:1]                         # trame parses sys.argv: keep it clean
    config = TabConfig.from_json(sys.stdin.readline())
    TabApp(config).start()
    return 0
