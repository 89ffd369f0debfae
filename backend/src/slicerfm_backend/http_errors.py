"""Errors as HTTP answers: the one place where an error code becomes a status.

Services raise :class:`slicerfm_backend.errors.DomainError` with a protocol error code;
``install_handlers`` turns it (and FastAPI's own validation and routing errors, and any
unexpected exception) into a ``{"error": code, "message": text}`` body with the status
from :data:`STATUS`. No error is ever answered with status 200.
"""

from __future__ import annotations

import logging
from typing import Dict, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from slicerfm_client import protocol

from .errors import DomainError
from .http_middleware import route_template

log = logging.getLogger(__name__)

#: HTTP status of every error code a request can be answered with (``job_failed`` only
#: appears inside a job's status, never as an answer).
STATUS: Dict[str, int] = {
    protocol.ERROR_BAD_REQUEST: 400,
    protocol.ERROR_CORRUPTED: 400,
    protocol.ERROR_UNAUTHORIZED: 401,
    protocol.ERROR_FORBIDDEN: 403,
    protocol.ERROR_NOT_FOUND: 404,
    protocol.ERROR_IMAGE_NOT_FOUND: 404,
    protocol.ERROR_SEGMENT_NOT_FOUND: 404,
    protocol.ERROR_JOB_NOT_FOUND: 404,
    protocol.ERROR_NO_IMAGE: 409,
    protocol.ERROR_SEGMENT_LOCKED: 409,
    protocol.ERROR_NOTHING_TO_UNDO: 409,
    protocol.ERROR_JOB_NOT_DONE: 409,
    protocol.ERROR_SESSION_EXPIRED: 410,
    protocol.ERROR_TOO_LARGE: 413,
    protocol.ERROR_INVALID: 422,
    protocol.ERROR_VERSION: 426,
    protocol.ERROR_INTERNAL: 500,
    protocol.ERROR_ENGINE_FAILED: 500,
    protocol.ERROR_SERVER_FULL: 503,
    protocol.ERROR_ENGINE_UNAVAILABLE: 503,
    protocol.ERROR_STORAGE: 503,
    protocol.ERROR_OUT_OF_MEMORY: 503,
    protocol.ERROR_RESTARTING: 503,
}


def status_of(error: DomainError) -> int:
    """The HTTP status for ``error``'s code (500 for a code missing from :data:`STATUS`,
    which a test rules out)."""
    return STATUS.get(error.code, 500)


def headers_of(error: DomainError) -> Optional[Dict[str, str]]:
    """``Retry-After`` for a full server, ``WWW-Authenticate`` for a missing or wrong token."""
    headers = {}
    if error.retry_after_s is not None:
        headers[protocol.HEADER_RETRY_AFTER] = str(int(error.retry_after_s))
    if error.code == protocol.ERROR_UNAUTHORIZED:
        headers["WWW-Authenticate"] = "Bearer"
    return headers or None


def _error_response(status: int, code: str, message: str, headers=None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def error_response(error: DomainError) -> JSONResponse:
    """The answer to a DomainError (for routes that answer it themselves)."""
    return _error_response(status_of(error), error.code, error.message, headers_of(error))


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain_error(_: Request, error: DomainError):
        return error_response(error)

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, _: ClientDisconnect):
        # The client went away mid-request: nothing to answer, nothing to report as an error.
        log.info("a client went away during %s %s", request.method, route_template(request.scope))
        return _error_response(400, protocol.ERROR_BAD_REQUEST, "the client went away")

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError):
        details = "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', ())[1:]) or 'body'}: {item.get('msg')}"
            for item in error.errors()
        )
        return _error_response(STATUS[protocol.ERROR_INVALID], protocol.ERROR_INVALID,
                               f"invalid request: {details}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException):
        code = protocol.ERROR_NOT_FOUND if error.status_code == 404 else protocol.ERROR_BAD_REQUEST
        message = str(error.detail)
        if error.status_code == 404:
            message = (f"no such endpoint ({error.detail}); the client may be newer than this "
                       f"server: update {protocol.SERVER_PACKAGE}")
        return _error_response(error.status_code, code, message)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception):
        log.error("unexpected server error in %s %s", request.method, route_template(request.scope),
                  exc_info=error)
        return _error_response(
            500, protocol.ERROR_INTERNAL,
            f"internal server error ({type(error).__name__}); the server keeps running "
            "and other sessions are unaffected. Please report this with the server log.",
        )
