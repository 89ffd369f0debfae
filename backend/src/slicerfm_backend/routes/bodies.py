"""Reading request bodies with limits: raw bytes, or a JSON object.

Limits are decided before reading when the client declares ``Content-Length`` (413 at
once), else as soon as the body passes them. JSON is refused (400) when nested deeper
than :data:`MAX_JSON_DEPTH`, or when it holds ``NaN``/``Infinity`` (not JSON).
"""

from __future__ import annotations

import json
import re
from typing import Optional

from fastapi import Request

from ..errors import bad_request, too_large

MAX_JSON_BYTES = 64 * 1024
MAX_JSON_DEPTH = 12

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(rb"[\[\]{}]")


def declared_length(request: Request) -> Optional[int]:
    """The ``Content-Length`` the client declared (None when absent); 400 when malformed."""
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    if not declared.strip().isdigit():
        raise bad_request("the Content-Length header is not a number")
    return int(declared)


def refuse_declared(request: Request, limit: int, what: str, setting: str = "") -> None:
    """413 before reading anything when the declared length exceeds ``limit``."""
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise too_large(f"{what} ({declared:,} bytes) exceeds this server's limit of {limit:,} bytes"
                        + (f" ({setting})" if setting else ""))


async def read_limited(request: Request, limit: int, what: str) -> bytes:
    """The request body, refused with 413 as soon as it exceeds ``limit`` bytes."""
    refuse_declared(request, limit, what)
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            raise too_large(f"{what} larger than {limit:,} bytes")
    return bytes(body)


def json_depth(raw: bytes) -> int:
    """How deep arrays and objects nest in ``raw`` (strings skipped)."""
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRINGS.sub(b'""', raw)):
        depth += 1 if match.group(0) in (b"[", b"{") else -1
        deepest = max(deepest, depth)
    return deepest


def _no_constants(name: str):
    raise ValueError(f"{name} is not a JSON number")


def parse_json_object(raw: bytes) -> dict:
    """A JSON object from ``raw``: 400 when not JSON, too deep, or not an object."""
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise bad_request(f"the request body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        body = json.loads(raw, parse_constant=_no_constants)
    except (ValueError, RecursionError) as error:
        raise bad_request(f"the request body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    return body


async def json_body(request: Request, limit: int = MAX_JSON_BYTES) -> dict:
    """The body as a JSON object: 413 past ``limit`` bytes, 400 when not a usable JSON object."""
    return parse_json_object(await read_limited(request, limit, "a JSON request body"))


def json_schema_body(schema: dict) -> dict:
    """``openapi_extra`` documenting a JSON request body read with :func:`json_body`."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
