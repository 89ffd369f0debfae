"""Background job status, cancel and result download (see slicerfm_backend.jobs). A job is
visible to the user who submitted it only (404 for anyone else)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from starlette.concurrency import run_in_threadpool

from slicerfm_client import protocol, wire

from ..auth.identity import Identity
from ..deps import API_DEPENDENCIES, authenticate, get_state
from ..state import ServerState

router = APIRouter(dependencies=API_DEPENDENCIES)


@router.get(protocol.job_path("{job_id}"))
async def job_status(job_id: str, identity: Identity = Depends(authenticate),
                     state: ServerState = Depends(get_state)) -> dict:
    """State, stage, progress, queue position and waiting time, and (when done) the result."""
    return state.jobs.describe(state.jobs.get(job_id, identity.owner))


@router.delete(protocol.job_path("{job_id}"))
async def cancel_job(job_id: str, identity: Identity = Depends(authenticate),
                     state: ServerState = Depends(get_state)) -> dict:
    """Cancel a queued or running job; a finished job is left as it is."""
    job = state.jobs.cancel(job_id, identity.owner)
    state.audit.event(identity.name, "job.cancel", kind=job.kind)
    return state.jobs.describe(job)


@router.get(protocol.job_array_path("{job_id}", "{name}"))
async def job_array(job_id: str, name: str, identity: Identity = Depends(authenticate),
                    state: ServerState = Depends(get_state)) -> Response:
    """One result array of a finished job as a wire message (array + its meta)."""
    array, meta = state.jobs.array(job_id, name, identity.owner)
    body = await run_in_threadpool(wire.encode, array, meta)
    return Response(body, media_type=protocol.MEDIA_TYPE_MESSAGE)
