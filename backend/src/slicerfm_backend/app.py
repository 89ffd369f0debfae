"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Optional

from fastapi import FastAPI

from slicerfm_client import protocol, wire

from . import __version__
from .http_errors import install_handlers
from .routes import auto_segment, images, info, jobs, registration, segments, sessions
from .settings import Settings
from .state import ServerState

log = logging.getLogger(__name__)

REAP_INTERVAL_S = 5.0


def make_app(settings: Optional[Settings] = None) -> FastAPI:
    """Build a server for ``settings`` (default: from SLICERFM_* environment variables).

    OpenAPI docs are served at /docs and /openapi.json.
    """
    settings = settings or Settings()
    wire.load_codec()
    state = ServerState.create(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        async def reaper():
            while True:
                await asyncio.sleep(REAP_INTERVAL_S)
                state.sessions.reap()
                state.jobs.reap()

        task = asyncio.create_task(reaper())
        try:
            yield
        finally:
            task.cancel()
            state.jobs.shutdown()

    app = FastAPI(
        title="SlicerFM backend",
        version=__version__,
        description=(
            f"Interactive 3D segmentation server for 3D Slicer, protocol {protocol.PROTOCOL_VERSION}. "
            "Binary messages use the SlicerFM wire format (docs/PROTOCOL.md)."
        ),
        lifespan=lifespan,
    )
    app.state.slicerfm = state
    install_handlers(app)
    for module in (info, sessions, images, segments, jobs, auto_segment, registration):
        app.include_router(module.router)
    return app
