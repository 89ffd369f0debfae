"""Typed client exceptions, one per kind of failure the user can act on.

Every server error body is ``{"error": <code>, "message": <text>}`` (codes in
:mod:`slicerfm_client.protocol`); :func:`error_from_response` maps status and code to the
classes below so that callers (the Slicer module, scripts) can react, e.g. re-claim a
session on :class:`SessionExpiredError`.
"""

from __future__ import annotations

from typing import Optional

from . import protocol


class SlicerFMError(Exception):
    """Base class; ``str(error)`` is a message meant for the user."""

    def __init__(self, message: str, status: Optional[int] = None, code: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class ConfigurationError(SlicerFMError):
    """The client was set up wrongly (e.g. a URL without http://)."""


class ServerUnreachableError(SlicerFMError):
    """No answer from the server: not running, wrong address or port, firewall."""


class IncompatibleVersionError(SlicerFMError):
    """Client and server speak incompatible protocol versions."""


class AuthenticationError(SlicerFMError):
    """Missing or wrong access token (401)."""


class BadRequestError(SlicerFMError):
    """The request was malformed (400)."""


class CorruptedTransferError(BadRequestError):
    """An upload arrived truncated or with a checksum mismatch; sending again usually fixes it."""


class NotFoundError(SlicerFMError):
    """Something named in the request does not exist (404)."""


class ImageNotFoundError(NotFoundError):
    """The server does not hold this image (upload it first)."""


class SegmentNotFoundError(NotFoundError):
    """The session has no segment of that name."""


class SegmentLockedError(SlicerFMError):
    """The segment is locked; unlock it before changing it (409)."""


class NothingToUndoError(SlicerFMError):
    """Undo or redo with an empty history (409)."""


class NoImageAttachedError(SlicerFMError):
    """The session has no image yet: call set_image first (409)."""


class SessionExpiredError(SlicerFMError):
    """The session is unknown or expired, e.g. after a server restart (410): claim a new one."""


class TooLargeError(SlicerFMError):
    """The upload or image exceeds the server's limits (413)."""


class InvalidInputError(SlicerFMError):
    """The input is well-formed but unusable: NaN voxels, a prompt outside the image (422)."""


class ServerBusyError(SlicerFMError):
    """The server has no free session slot (503); ``retry_after`` seconds is a good wait."""

    def __init__(self, message: str, retry_after: Optional[float] = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ForbiddenError(AuthenticationError):
    """The identity may not do this (403), e.g. an annotator on an admin endpoint."""


class EngineUnavailableError(SlicerFMError):
    """The engine is not served, or its weights are missing (message says how to fix)."""


class EngineFailedError(SlicerFMError):
    """The engine failed on this request; the session is intact (500)."""


class ServerError(SlicerFMError):
    """Any other server-side failure."""


class JobNotFoundError(NotFoundError):
    """The job is unknown: its results expired, or the server restarted; submit it again."""


class JobNotDoneError(SlicerFMError):
    """A job's results were asked for before it finished (409)."""


class JobFailedError(SlicerFMError):
    """A background job ended with an error; ``code`` is the server's error code."""


class JobCancelledError(SlicerFMError):
    """A background job was cancelled."""


class JobTimeoutError(SlicerFMError):
    """A background job did not finish in the time the caller allowed (it was cancelled)."""


_BY_CODE = {
    protocol.ERROR_CORRUPTED: CorruptedTransferError,
    protocol.ERROR_IMAGE_NOT_FOUND: ImageNotFoundError,
    protocol.ERROR_SEGMENT_NOT_FOUND: SegmentNotFoundError,
    protocol.ERROR_SEGMENT_LOCKED: SegmentLockedError,
    protocol.ERROR_NOTHING_TO_UNDO: NothingToUndoError,
    protocol.ERROR_SESSION_EXPIRED: SessionExpiredError,
    protocol.ERROR_NO_IMAGE: NoImageAttachedError,
    protocol.ERROR_VERSION: IncompatibleVersionError,
    protocol.ERROR_SERVER_FULL: ServerBusyError,
    protocol.ERROR_STORAGE: ServerBusyError,
    protocol.ERROR_OUT_OF_MEMORY: ServerBusyError,
    protocol.ERROR_RESTARTING: ServerBusyError,
    protocol.ERROR_FORBIDDEN: ForbiddenError,
    protocol.ERROR_ENGINE_UNAVAILABLE: EngineUnavailableError,
    protocol.ERROR_ENGINE_FAILED: EngineFailedError,
    protocol.ERROR_UNAUTHORIZED: AuthenticationError,
    protocol.ERROR_TOO_LARGE: TooLargeError,
    protocol.ERROR_INVALID: InvalidInputError,
    protocol.ERROR_JOB_NOT_FOUND: JobNotFoundError,
    protocol.ERROR_JOB_NOT_DONE: JobNotDoneError,
}

_BY_STATUS = {
    400: BadRequestError,
    401: AuthenticationError,
    403: ForbiddenError,
    404: NotFoundError,
    409: SegmentLockedError,
    410: SessionExpiredError,
    413: TooLargeError,
    422: InvalidInputError,
    426: IncompatibleVersionError,
    503: ServerBusyError,
}


def error_from_response(status: int, body: Optional[dict], url: str, reason: str = "",
                        retry_after: Optional[str] = None) -> SlicerFMError:
    """Build the typed exception for an HTTP error answer."""
    code = body.get("error") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    if not message:
        message = (
            f"the server at {url} answered HTTP {status} {reason} without a SlicerFM error "
            "body: is this the address of a SlicerFM backend, or is a proxy in between failing?"
        )
        if status == 404:
            message += f" (a {protocol.SERVER_PACKAGE} too old to have this endpoint also answers 404)"
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status) or ServerError
    if cls is ServerBusyError:
        seconds = None
        try:
            seconds = float(retry_after) if retry_after is not None else None
        except ValueError:
            pass
        return ServerBusyError(message, retry_after=seconds, status=status, code=code)
    return cls(message, status=status, code=code)
