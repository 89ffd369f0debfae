"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Optional

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from slicerfm_client import protocol, wire

from . import __version__
from .http_errors import install_handlers
from .http_middleware import RequestLayer
from .routes import admin, auto_segment, docs, images, info, jobs, registration, segments, sessions
from .settings import Settings
from .state import ServerState

log = logging.getLogger(__name__)

REAP_INTERVAL_S = 5.0


def make_app(settings: Optional[Settings] = None) -> FastAPI:
    """Build a server for ``settings`` (default: from SLICERFM_* environment variables).

    OpenAPI docs are served at /docs and /openapi.json (with the same access rules as the API).
    """
    settings = settings or Settings()
    wire.load_codec()
    state = ServerState.create(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        async def reaper():
            while True:
                await asyncio.sleep(REAP_INTERVAL_S)
                try:
                    await run_in_threadpool(state.housekeeping)
                except Exception:
                    log.exception("housekeeping failed; trying again in %.0f s", REAP_INTERVAL_S)

        task = asyncio.create_task(reaper())
        try:
            yield
        finally:
            task.cancel()
            await run_in_threadpool(state.close)

    app = FastAPI(
        title="SlicerFM backend",
        version=__version__,
        description=(
            f"Interactive 3D segmentation server for 3D Slicer, protocol {protocol.PROTOCOL_VERSION}. "
            "Binary messages use the SlicerFM wire format (docs/PROTOCOL.md)."
        ),
        lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None,
    )
    app.state.slicerfm = state
    install_handlers(app)
    for module in (info, sessions, images, segments, jobs, auto_segment, registration, admin, docs):
        app.include_router(module.router)
    app.add_middleware(RequestLayer, state=state)
    return app
