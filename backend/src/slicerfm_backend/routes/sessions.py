"""Claim, heartbeat and release of sessions."""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from slicerfm_client import protocol

from ..auth.identity import Identity
from ..deps import API_DEPENDENCIES, authenticate, current_session, get_state, heartbeat_session
from ..errors import invalid
from ..session import Session
from ..state import ServerState
from .bodies import json_body, json_schema_body

router = APIRouter(dependencies=API_DEPENDENCIES)

CLIENT_NAME = re.compile(r"^[^\x00-\x1f\x7f\u2028\u2029]{0,100}$")
CLAIM_SCHEMA = {"type": "object", "properties": {
    "client": {"type": "string", "maxLength": 100, "description": "client name (printable), for admins"}}}


def client_name(body: dict) -> str:
    name = body.get("client", "unknown")
    if not isinstance(name, str) or not CLIENT_NAME.match(name):
        raise invalid("'client' must be a printable name of at most 100 characters")
    return name


@router.post(protocol.PATH_SESSIONS, openapi_extra=json_schema_body(CLAIM_SCHEMA))
async def claim_session(request: Request, identity: Identity = Depends(authenticate),
                        state: ServerState = Depends(get_state)) -> dict:
    """A new session. The returned ``session`` lease goes in the X-SlicerFM-Session header."""
    name = client_name(await json_body(request))
    session, lease = await run_in_threadpool(state.sessions.claim, identity, name)
    state.audit.event(identity.name, "session.claim", session=session.id)
    settings = state.settings
    return {
        "session": lease,
        "heartbeat_interval_s": settings.heartbeat_interval_s,
        "liveness_timeout_s": settings.liveness_timeout_s,
        "idle_timeout_s": settings.idle_timeout_s,
        "persistent": state.state_dir is not None,
    }


@router.post(protocol.PATH_HEARTBEAT)
async def heartbeat(session: Session = Depends(heartbeat_session)) -> dict:
    """Keeps the session alive (does not count as work for the idle timeout)."""
    return {"ok": True, "image_id": session.image_id}


@router.delete(protocol.PATH_SESSION)
async def release_session(session: Session = Depends(current_session),
                          state: ServerState = Depends(get_state)) -> dict:
    await run_in_threadpool(state.sessions.release, session)
    return {"released": True}


@router.get(protocol.PATH_SESSION)
async def describe_session(session: Session = Depends(current_session)) -> dict:
    """The session's image and segments."""
    return await run_in_threadpool(session.status)
