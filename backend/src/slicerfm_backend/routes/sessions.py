"""Claim, heartbeat and release of sessions."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from slicerfm_client import protocol

from ..deps import API_DEPENDENCIES, current_session, get_state, heartbeat_session
from ..sessions import Session
from ..state import ServerState

router = APIRouter(dependencies=API_DEPENDENCIES)


class ClaimRequest(BaseModel):
    client: str = Field("unknown", max_length=100, description="client name, for the server log")


@router.post(protocol.PATH_SESSIONS)
def claim_session(body: ClaimRequest, state: ServerState = Depends(get_state)) -> dict:
    """A new session. The returned ``session`` lease goes in the X-SlicerFM-Session header."""
    session, lease = state.sessions.claim(body.client)
    settings = state.settings
    return {
        "session": lease,
        "heartbeat_interval_s": settings.heartbeat_interval_s,
        "liveness_timeout_s": settings.liveness_timeout_s,
        "idle_timeout_s": settings.idle_timeout_s,
    }


@router.post(protocol.PATH_HEARTBEAT)
def heartbeat(session: Session = Depends(heartbeat_session)) -> dict:
    """Keeps the session alive (does not count as work for the idle timeout)."""
    return {"ok": True, "image_id": session.image_id}


@router.delete(protocol.PATH_SESSION)
def release_session(session: Session = Depends(current_session),
                    state: ServerState = Depends(get_state)) -> dict:
    state.sessions.release(session)
    return {"released": True}


@router.get(protocol.PATH_SESSION)
def describe_session(session: Session = Depends(current_session)) -> dict:
    """The session's image and segments."""
    return session.describe()
