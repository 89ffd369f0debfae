"""Deformable registration as a background job (see slicerfm_backend.registration.service).

``POST /api/register`` with ``{"engine": "classic", "fixed": {"image_id", "modality",
"mask_id", "mask_labels"}, "moving": {...}, "io_steps", "similarity", "affine_prealign",
"output_grid": "fixed"|"native", "want_warped"}`` answers 202 with the job's status; the job
leaves the arrays ``displacement`` (and ``warped``), read with ``GET /api/jobs/{id}/arrays/{name}``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from slicerfm_client import protocol

from ..deps import API_DEPENDENCIES, get_state
from ..state import ServerState
from .bodies import json_body

router = APIRouter(dependencies=API_DEPENDENCIES)


@router.post(protocol.PATH_REGISTER, status_code=202)
async def register(request: Request, state: ServerState = Depends(get_state)):
    """Queue a registration of ``moving`` onto ``fixed``; 202 with the job status."""
    from ..registration import service

    body = await json_body(request)
    job = await run_in_threadpool(service.submit, state, body)  # masks and checks off the loop
    return JSONResponse(state.jobs.describe(job), status_code=202)
