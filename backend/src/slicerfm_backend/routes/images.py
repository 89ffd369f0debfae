"""Image upload (once per content id) and attaching an image to a session."""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from slicerfm_client import protocol

from ..deps import API_DEPENDENCIES, current_session, get_state
from ..errors import DomainError, invalid
from ..segments import SegmentSet
from ..sessions import Session
from ..state import ServerState

router = APIRouter(dependencies=API_DEPENDENCIES)

_ID = re.compile(r"^[0-9a-f]{64}$")
FEED_BYTES = 1 << 20  # decode in the thread pool once this much has arrived


def _check_id(image_id: str) -> None:
    if not _ID.match(image_id):
        raise invalid("an image id is the 64-character hex SHA-256 content id (see docs/PROTOCOL.md)")


def _describe(image) -> dict:
    return {"image_id": image.image_id, "shape": list(image.array.shape),
            "dtype": image.array.dtype.name, "modality": image.modality,
            "ijk_to_ras": image.ijk_to_ras.tolist()}


@router.head(protocol.image_path("{image_id}"))
def has_image(image_id: str, state: ServerState = Depends(get_state)) -> Response:
    """200 when the server holds the image, 404 when it must be uploaded."""
    _check_id(image_id)
    return Response(status_code=200 if image_id in state.images else 404)


@router.put(protocol.image_path("{image_id}"), status_code=201)
async def upload_image(image_id: str, request: Request, response: Response,
                       state: ServerState = Depends(get_state)) -> dict:
    """Streamed upload of an image message (see wire format); decoded as it arrives."""
    _check_id(image_id)
    stream = request.stream()
    if image_id in state.images:
        # Already stored (another client won the race): read the body through so the client
        # hears this answer rather than a reset connection, but decode nothing.
        async for _ in stream:
            pass
        response.status_code = 200
        return _describe(state.images.get(image_id))
    upload = state.images.new_decoder(image_id)
    buffer = bytearray()
    try:
        async for piece in stream:
            buffer += piece
            if len(buffer) >= FEED_BYTES:
                data = bytes(buffer)
                buffer.clear()
                await run_in_threadpool(upload.feed, data)
        if buffer:
            await run_in_threadpool(upload.feed, bytes(buffer))
        image = await run_in_threadpool(upload.finish)
    except DomainError:
        # Read (and drop) the rest of the body so the client hears our answer instead of a
        # reset connection; bounded by the upload limit.
        drained = upload.received
        async for piece in stream:
            drained += len(piece)
            if drained > 2 * state.settings.max_upload_bytes:
                break
        raise
    return _describe(image)


class AttachRequest(BaseModel):
    image_id: str


@router.post(protocol.PATH_ATTACH_IMAGE)
def attach_image(body: AttachRequest, session: Session = Depends(current_session),
                 state: ServerState = Depends(get_state)) -> dict:
    """Make an uploaded image the session's image. Re-attaching the same image keeps the
    segments; another image starts with none."""
    _check_id(body.image_id)
    image = state.images.get(body.image_id)
    with session.lock:
        if session.image_id != image.image_id or session.segments is None:
            session.image_id = image.image_id
            session.segments = SegmentSet(image.array.shape, state.settings.max_undo,
                                          state.settings.max_segments)
        return {**_describe(image), **session.describe()}
