"""FastAPI dependencies: server state, protocol version, who is asking, their session.

:func:`authenticate` is the only door: every route but ``/api/info`` depends on it (through
:data:`API_DEPENDENCIES`), and routes that need the identity declare it again (FastAPI
runs a dependency once per request).
"""

from __future__ import annotations

from typing import Optional

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from slicerfm_client import protocol

from .auth.identity import Identity
from .errors import DomainError
from .session import Session
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
            f"{client_version[:20]}: install a matching pair (update the SlicerFM extension, or run "
            f"a {protocol.SERVER_PACKAGE} release with protocol {protocol.PROTOCOL_VERSION.split('.')[0]}.x)",
        )


_BEARER = HTTPBearer(auto_error=False, description="an access token: the shared token, a user's token "
                                                     "(slicerfm-backend users add) or an OpenID Connect JWT")


async def authenticate(
    request: Request,
    state: ServerState = Depends(get_state),
    credentials: Optional[HTTPAuthorizationCredentials] = Depends(_BEARER),
) -> Identity:
    """The identity behind the ``Authorization: Bearer`` header (401 when missing or wrong)."""
    authorization = None if credentials is None else f"{credentials.scheme} {credentials.credentials}"
    try:
        identity = state.auth.authenticate(authorization)
    except DomainError:
        state.metrics.refused.inc()
        raise
    request.state.slicerfm_user = identity.name
    return identity


async def require_admin(identity: Identity = Depends(authenticate)) -> Identity:
    """403 unless the identity is an admin."""
    if not identity.is_admin:
        raise DomainError(protocol.ERROR_FORBIDDEN, "only an administrator of this server may do this")
    return identity


def _session(state: ServerState, identity: Identity, token: Optional[str], activity: bool) -> Session:
    return state.sessions.get(token, identity, activity=activity)


async def current_session(
    state: ServerState = Depends(get_state),
    identity: Identity = Depends(authenticate),
    token: Optional[str] = Header(None, alias=protocol.HEADER_SESSION),
) -> Session:
    return _session(state, identity, token, activity=True)


async def heartbeat_session(
    state: ServerState = Depends(get_state),
    identity: Identity = Depends(authenticate),
    token: Optional[str] = Header(None, alias=protocol.HEADER_SESSION),
) -> Session:
    """Like current_session, but a heartbeat keeps a session alive without counting as work."""
    return _session(state, identity, token, activity=False)


API_DEPENDENCIES = [Depends(check_protocol), Depends(authenticate)]
