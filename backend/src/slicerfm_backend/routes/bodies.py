"""Reading request bodies with a size limit: raw bytes, or a JSON object."""

from __future__ import annotations

import json

from fastapi import Request

from ..errors import bad_request, too_large

MAX_JSON_BYTES = 64 * 1024


async def read_limited(request: Request, limit: int, what: str) -> bytes:
    """The request body, refused with 413 as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(f"{what} larger than {limit:,} bytes")
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            raise too_large(f"{what} larger than {limit:,} bytes")
    return bytes(body)


async def json_body(request: Request, limit: int = MAX_JSON_BYTES) -> dict:
    """The body as a JSON object: 413 past ``limit`` bytes, 400 when not a JSON object."""
    raw = await read_limited(request, limit, "a JSON request body")
    try:
        body = json.loads(raw)
    except ValueError as error:
        raise bad_request(f"the request body is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    return body
