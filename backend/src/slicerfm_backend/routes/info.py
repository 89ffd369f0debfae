"""Server information (public, for the version check) and the engine list."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from slicerfm_client import protocol

from .. import __version__
from ..deps import API_DEPENDENCIES, check_protocol, get_state
from ..state import ServerState

router = APIRouter()


@router.get(protocol.PATH_INFO, dependencies=[Depends(check_protocol)])
def server_info(state: ServerState = Depends(get_state)) -> dict:
    """Versions, whether a token is needed, and the limits; readable without a token."""
    settings = state.settings
    return {
        "name": "SlicerFM backend",
        "server_version": __version__,
        "protocol_version": protocol.PROTOCOL_VERSION,
        "auth_required": state.auth.required,
        "auth_modes": state.auth.modes(),
        "limits": {
            "max_upload_bytes": settings.max_upload_bytes,
            "max_voxels": settings.max_voxels,
            "max_dimension": settings.max_dimension,
            "max_sessions": settings.max_sessions,
            "max_segments": settings.max_segments,
            "max_jobs_per_user": settings.max_jobs_per_user,
        },
        "persistent_sessions": state.state_dir is not None,
    }


@router.get(protocol.PATH_ENGINES, dependencies=API_DEPENDENCIES)
def list_engines(state: ServerState = Depends(get_state)) -> dict:
    """Engines served here: prompt kinds, modalities, device, weights present."""
    return {"engines": state.engines.describe(), "device": state.engines.device,
            "device_reason": state.engines.device_choice.reason,
            "registration_engines": state.registration.describe()}
