"""Image upload (once per content id and owner) and attaching an image to a session.

An upload's size is decided before reading when ``Content-Length`` is declared (413 at
once) and bytes are reserved in the images budget when the header arrives (503 when
full). A client that goes away mid-upload frees everything the upload held. After a
refusal at most :data:`DRAIN_BYTES` more are read (so a client that sends the whole body
before reading hears the answer) before the connection is closed.
"""

from __future__ import annotations

import logging
import re

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from slicerfm_client import protocol

from ..auth.identity import Identity
from ..deps import API_DEPENDENCIES, authenticate, current_session, get_state
from ..errors import DomainError, invalid
from ..http_errors import error_response
from ..session import Session
from ..state import ServerState
from .bodies import json_body, json_schema_body, refuse_declared

log = logging.getLogger(__name__)

router = APIRouter(dependencies=API_DEPENDENCIES)

_ID = re.compile(r"^[0-9a-f]{64}$")
FEED_BYTES = 1 << 20  # decode in the thread pool once this much has arrived
DRAIN_BYTES = 8 << 20
ATTACH_SCHEMA = {"type": "object", "required": ["image_id"], "properties": {
    "image_id": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}}


def _check_id(image_id) -> None:
    if not isinstance(image_id, str) or not _ID.match(image_id):
        raise invalid("an image id is the 64-character hex SHA-256 content id (see docs/PROTOCOL.md)")


def _describe(image) -> dict:
    return {"image_id": image.image_id, "shape": list(image.array.shape),
            "dtype": image.array.dtype.name, "modality": image.modality,
            "ijk_to_ras": image.ijk_to_ras.tolist()}


@router.head(protocol.image_path("{image_id}"))
async def has_image(image_id: str, identity: Identity = Depends(authenticate),
                    state: ServerState = Depends(get_state)) -> Response:
    """200 when the server holds the image for this user, 404 when it must be uploaded."""
    _check_id(image_id)
    held = await run_in_threadpool(state.images.has, image_id, identity)
    return Response(status_code=200 if held else 404)


async def _drain(stream, budget: int) -> None:
    """Read and drop at most ``budget`` more bytes of a refused body."""
    try:
        async for piece in stream:
            budget -= len(piece)
            if budget <= 0:
                return
    except ClientDisconnect:
        return


@router.put(protocol.image_path("{image_id}"), status_code=201,
            openapi_extra={"requestBody": {"required": True, "content": {
                protocol.MEDIA_TYPE_MESSAGE: {"schema": {"type": "string", "format": "binary"}}}}})
async def upload_image(image_id: str, request: Request, identity: Identity = Depends(authenticate),
                       state: ServerState = Depends(get_state)):
    """Streamed upload of an image message (see wire format); decoded as it arrives."""
    _check_id(image_id)
    refuse_declared(request, state.settings.max_upload_bytes, "the upload", "SLICERFM_MAX_UPLOAD_BYTES")
    stream = request.stream()
    if await run_in_threadpool(state.images.has, image_id, identity):
        # Held for this user already (another client won the race): read the body through
        # (bounded) so the client hears this answer rather than a reset connection.
        await _drain(stream, state.settings.max_upload_bytes)
        image = await run_in_threadpool(state.images.get, image_id, identity)
        return JSONResponse(_describe(image), status_code=200)
    upload = state.images.new_upload(image_id, identity)
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
    except ClientDisconnect:
        await run_in_threadpool(upload.abort)
        log.info("an upload was abandoned by its client; its memory is freed")
        return Response(status_code=400)  # nobody is listening
    except DomainError as error:
        await run_in_threadpool(upload.abort)
        await _drain(stream, DRAIN_BYTES)
        response = error_response(error)
        response.headers["Connection"] = "close"
        return response
    except BaseException:
        await run_in_threadpool(upload.abort)
        raise
    state.audit.event(identity.name, "image.upload", bytes=upload.received, voxels=int(image.array.size))
    return JSONResponse(_describe(image), status_code=201)


@router.post(protocol.PATH_ATTACH_IMAGE, openapi_extra=json_schema_body(ATTACH_SCHEMA))
async def attach_image(request: Request, session: Session = Depends(current_session),
                       identity: Identity = Depends(authenticate),
                       state: ServerState = Depends(get_state)) -> dict:
    """Make an uploaded image the session's image. Re-attaching the same image keeps the
    segments; another image starts with none."""
    image_id = (await json_body(request)).get("image_id")
    _check_id(image_id)

    def attach():
        image = state.images.get(image_id, identity)
        return {**_describe(image), **session.attach(image)}

    return await run_in_threadpool(attach)
