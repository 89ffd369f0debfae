"""HTTP errors with a machine-readable code and a message the user can act on.

Raised anywhere in the server; ``install_handlers`` turns them (and any unexpected
exception) into ``{"error": code, "message": text}`` bodies with the right status. No error
is ever answered with status 200.
"""

from __future__ import annotations

import logging
from typing import Dict, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from slicerfm_client import protocol

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: Optional[Dict[str, str]] = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def bad_request(message: str) -> ApiError:
    return ApiError(400, protocol.ERROR_BAD_REQUEST, message)


def corrupted(message: str) -> ApiError:
    return ApiError(400, protocol.ERROR_CORRUPTED, message + "; send the data again")


def invalid(message: str) -> ApiError:
    return ApiError(422, protocol.ERROR_INVALID, message)


def too_large(message: str) -> ApiError:
    return ApiError(413, protocol.ERROR_TOO_LARGE, message)


def _error_response(status: int, code: str, message: str, headers=None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, error: ApiError):
        return _error_response(error.status, error.code, error.message, error.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError):
        details = "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', ())[1:]) or 'body'}: {item.get('msg')}"
            for item in error.errors()
        )
        return _error_response(422, protocol.ERROR_INVALID, f"invalid request: {details}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException):
        code = protocol.ERROR_NOT_FOUND if error.status_code == 404 else protocol.ERROR_BAD_REQUEST
        message = str(error.detail)
        if error.status_code == 404:
            message = (f"no such endpoint ({error.detail}); the client may be newer than this "
                       f"server: update {protocol.SERVER_PACKAGE}")
        return _error_response(error.status_code, code, message)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception):
        log.exception("unexpected server error")
        return _error_response(
            500, protocol.ERROR_INTERNAL,
            f"internal server error ({type(error).__name__}: {error}); the server keeps running "
            "and other sessions are unaffected. Please report this with the server log.",
        )
