"""For administrators: every session (and ending one), and the Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from starlette.concurrency import run_in_threadpool

from slicerfm_client import protocol

from ..auth.identity import Identity
from ..deps import API_DEPENDENCIES, get_state, require_admin
from ..errors import DomainError
from ..state import ServerState

router = APIRouter(dependencies=API_DEPENDENCIES)


@router.get(protocol.PATH_ADMIN_SESSIONS)
async def list_sessions(admin: Identity = Depends(require_admin), state: ServerState = Depends(get_state)) -> dict:
    """Every open session: id, user, client, age, idle time, whether an image is attached,
    segment count and memory (no secrets, no image ids)."""
    state.audit.event(admin.name, "admin.sessions")
    return {"sessions": state.sessions.list()}


@router.delete(protocol.admin_session_path("{session_id}"))
async def end_session(session_id: str, admin: Identity = Depends(require_admin),
                      state: ServerState = Depends(get_state)) -> dict:
    """End a session now (its user's next request gets 410 and starts a new one)."""
    ended = None
    if state.sessions.is_session_id(session_id):
        ended = await run_in_threadpool(state.sessions.end, session_id)
    if ended is None:
        raise DomainError(protocol.ERROR_NOT_FOUND, "no open session has this id")
    state.audit.event(admin.name, "admin.end_session", session=session_id, of_user=ended.user)
    return {"ended": session_id}


@router.get(protocol.PATH_METRICS, include_in_schema=False)
async def metrics(admin: Identity = Depends(require_admin), state: ServerState = Depends(get_state)) -> Response:
    body, content_type = await run_in_threadpool(state.metrics.render)
    return Response(body, media_type=content_type)
