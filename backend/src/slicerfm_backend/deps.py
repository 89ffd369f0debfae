"""FastAPI dependencies: server state, access token, protocol version, current session."""

from __future__ import annotations

import hmac
from typing import Optional

from fastapi import Depends, Header, Request

from slicerfm_client import protocol

from .errors import DomainError
from .sessions import Session
from .state import ServerState


# Dependencies are async: cheap checks run on the event loop instead of a worker thread.
async def get_state(request: Request) -> ServerState:
    return request.app.state.slicerfm


async def check_protocol(
    client_version: Optional[str] = Header(None, alias=protocol.HEADER_PROTOCOL),
) -> None:
    """426 when the client announces an incompatible protocol (absent header: plain HTTP tools)."""
    if client_version is not None and not protocol.compatible(client_version, protocol.PROTOCOL_VERSION):
        raise DomainError(
            protocol.ERROR_VERSION,
            f"this server speaks SlicerFM protocol {protocol.PROTOCOL_VERSION}, the client "
            f"{client_version}: install a matching pair (update the SlicerFM extension, or run "
            f"a {protocol.SERVER_PACKAGE} release with protocol {client_version.split('.')[0]}.x)",
        )


async def check_token(
    state: ServerState = Depends(get_state),
    authorization: Optional[str] = Header(None),
) -> None:
    """401 unless the server has no token or the bearer token matches (constant-time)."""
    expected = state.settings.token_value()
    if not expected:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if not given or scheme.lower() != "bearer":
        raise DomainError(protocol.ERROR_UNAUTHORIZED,
                          "this server requires an access token; enter it in the connection settings")
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise DomainError(protocol.ERROR_UNAUTHORIZED,
                          "the access token is wrong; ask the server's administrator for the right one")


def _session(state: ServerState, token: Optional[str], activity: bool) -> Session:
    return state.sessions.get(token, activity=activity)


async def current_session(
    state: ServerState = Depends(get_state),
    token: Optional[str] = Header(None, alias=protocol.HEADER_SESSION),
) -> Session:
    return _session(state, token, activity=True)


async def heartbeat_session(
    state: ServerState = Depends(get_state),
    token: Optional[str] = Header(None, alias=protocol.HEADER_SESSION),
) -> Session:
    """Like current_session, but a heartbeat keeps a session alive without counting as work."""
    return _session(state, token, activity=False)


API_DEPENDENCIES = [Depends(check_protocol), Depends(check_token)]
