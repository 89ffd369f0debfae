"""Deformable registration as a background job (see slicerfm_backend.registration.service).

``POST /api/register`` with ``{"engine": "classic", "fixed": {"image_id", "modality",
"mask_id", "mask_labels"}, "moving": {...}, "io_steps", "similarity", "affine_prealign",
"output_grid": "fixed"|"native", "want_warped"}`` answers 202 with the job's status; the job
leaves the arrays ``displacement`` (and ``warped``), read with ``GET /api/jobs/{id}/arrays/{name}``.
Every image named must be visible to the user (their own upload, or shared).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from slicerfm_client import protocol

from ..auth.identity import Identity
from ..deps import API_DEPENDENCIES, authenticate, get_state
from ..state import ServerState
from .bodies import json_body, json_schema_body

router = APIRouter(dependencies=API_DEPENDENCIES)

_IMAGE = {"type": "object", "required": ["image_id"], "properties": {
    "image_id": {"type": "string"}, "modality": {"type": "string"}, "mask_id": {"type": "string"},
    "mask_labels": {"type": "array", "items": {"type": "integer"}}}}
REGISTER_SCHEMA = {"type": "object", "required": ["fixed", "moving"], "properties": {
    "engine": {"type": "string"}, "fixed": _IMAGE, "moving": _IMAGE, "io_steps": {"type": "integer"},
    "similarity": {"type": "string"}, "affine_prealign": {"type": "boolean"},
    "output_grid": {"type": "string", "enum": ["fixed", "native"]}, "want_warped": {"type": "boolean"}}}


@router.post(protocol.PATH_REGISTER, status_code=202, openapi_extra=json_schema_body(REGISTER_SCHEMA))
async def register(request: Request, identity: Identity = Depends(authenticate),
                   state: ServerState = Depends(get_state)):
    """Queue a registration of ``moving`` onto ``fixed``; 202 with the job status."""
    from ..registration import service

    body = await json_body(request)
    job = await run_in_threadpool(service.submit, state, body, identity)  # masks and checks off the loop
    state.audit.event(identity.name, "job.submit", kind="registration", engine=str(body.get("engine", "classic")))
    return JSONResponse(state.jobs.describe(job), status_code=202)
