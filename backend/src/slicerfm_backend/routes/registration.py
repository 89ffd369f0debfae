"""Deformable registration as a background job (see slicerfm_backend.registration.service).

``POST /api/register`` with ``{"engine": "classic", "fixed": {"image_id", "modality",
"mask_id", "mask_labels"}, "moving": {...}, "io_steps", "similarity", "affine_prealign",
"output_grid": "fixed"|"native", "want_warped"}`` answers 202 with the job's status; the job
leaves the arrays ``displacement`` (and ``warped``), read with ``GET /api/jobs/{id}/arrays/{name}``.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from slicerfm_client import protocol

from ..deps import API_DEPENDENCIES, get_state
from ..errors import bad_request
from ..state import ServerState

router = APIRouter(dependencies=API_DEPENDENCIES)

MAX_BODY_BYTES = 64 * 1024


@router.post(protocol.PATH_REGISTER, status_code=202)
async def register(request: Request, state: ServerState = Depends(get_state)):
    """Queue a registration of ``moving`` onto ``fixed``; 202 with the job status."""
    from ..registration import service

    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise bad_request(f"the request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw or b"null")
    except ValueError as error:
        raise bad_request(f"the request body is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    job = await run_in_threadpool(service.submit, state, body)  # masks and checks off the loop
    return JSONResponse(state.jobs.describe(job), status_code=202)
