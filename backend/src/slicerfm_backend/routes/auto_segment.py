"""Automatic segmentation as a background job (see slicerfm_backend.auto_segment.service).

``POST /api/segment/auto`` with ``{"engine": "vista3d", "image_id", "classes": [names or
ids]}`` or ``{"engine", "image_id", "everything": true}`` answers 202 with the job's status;
the job leaves the array ``labels``, read with ``GET /api/jobs/{id}/arrays/labels``.
``GET /api/segment/auto/classes?engine=vista3d`` lists the engine's classes for pickers.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from slicerfm_client import protocol

from ..auth.identity import Identity
from ..auto_segment import service
from ..deps import API_DEPENDENCIES, authenticate, get_state
from ..state import ServerState
from .bodies import json_body, json_schema_body

router = APIRouter(dependencies=API_DEPENDENCIES)


AUTO_SCHEMA = {"type": "object", "required": ["engine", "image_id"], "properties": {
    "engine": {"type": "string"}, "image_id": {"type": "string"}, "everything": {"type": "boolean"},
    "classes": {"type": "array", "items": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}}}


@router.post(protocol.PATH_SEGMENT_AUTO, status_code=202, openapi_extra=json_schema_body(AUTO_SCHEMA))
async def segment_auto(request: Request, identity: Identity = Depends(authenticate),
                       state: ServerState = Depends(get_state)):
    """Queue an automatic segmentation of an uploaded image (the user's own, or shared);
    202 with the job status."""
    body = await json_body(request)
    job = await run_in_threadpool(service.submit, state, body, identity)  # loading the engine is off the loop
    state.audit.event(identity.name, "job.submit", kind="segment-auto", engine=str(body.get("engine")))
    return JSONResponse(state.jobs.describe(job), status_code=202)


@router.get(protocol.PATH_SEGMENT_AUTO_CLASSES)
async def auto_classes(engine: str = "vista3d", state: ServerState = Depends(get_state)) -> dict:
    """The classes of an automatic engine: ``{"engine", "classes": [{id, name, group, color,
    ...}]}`` (no model is loaded)."""
    return service.class_list(state, engine)
