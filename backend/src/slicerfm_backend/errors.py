"""The server's domain errors, free of HTTP (no FastAPI or Starlette here).

Two families:

* :class:`DomainError` -- a request the server refuses or cannot serve. It carries a
  machine-readable ``code`` from :mod:`slicerfm_client.protocol` (``invalid``,
  ``image_not_found``, ``server_full``, ...) and a message the user can act on. Services
  raise it; the app layer (:mod:`slicerfm_backend.http_errors`) is the one place that maps
  a code to an HTTP status. ``bad_request``, ``invalid``, ... build the common ones.
* :class:`EngineError` and its kinds -- an engine (segmentation or registration) failed in
  a way the user should hear about. What that means for a request depends on where it
  happened, so the caller translates it: the engine manager answers ``engine_unavailable``
  for an engine that cannot load, an interaction ``engine_failed``, a job ``job_failed``.

:class:`JobCancelled` is the signal a cancelled background job's progress callback raises.
"""

from __future__ import annotations

from typing import Optional

from slicerfm_client import protocol


class DomainError(Exception):
    """A refused or failed request: ``code`` (a ``protocol.ERROR_*`` value), ``message``
    (shown to the user as is) and, for ``server_full``, ``retry_after_s``."""

    def __init__(self, code: str, message: str, retry_after_s: Optional[int] = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s


def bad_request(message: str) -> DomainError:
    """The request cannot be read (malformed body, wrong content type)."""
    return DomainError(protocol.ERROR_BAD_REQUEST, message)


def corrupted(message: str) -> DomainError:
    """The data arrived damaged (checksum, truncated stream); sending it again may work."""
    return DomainError(protocol.ERROR_CORRUPTED, message + "; send the data again")


def invalid(message: str) -> DomainError:
    """The request is well formed but its content is unusable (values, shapes, names)."""
    return DomainError(protocol.ERROR_INVALID, message)


def too_large(message: str) -> DomainError:
    """The request or its data passes a size limit of this server."""
    return DomainError(protocol.ERROR_TOO_LARGE, message)


class EngineError(RuntimeError):
    """An engine failed in a way the user should hear about (the message is shown as is)."""


class PromptError(EngineError):
    """The prompts do not suit this engine (e.g. a box one voxel thick on two axes); an
    interaction answers ``invalid`` with the message, and the segment is unchanged."""


class WeightsMissingError(EngineError):
    """The engine's weights are not on this machine; the message names the command to fix it."""


class CheckpointError(EngineError):
    """A checkpoint file cannot be loaded into its network (unreadable, another layout,
    missing or unexpected keys, wrong shapes); the message names the file, the problem and
    the fix."""


class JobCancelled(Exception):
    """Raised inside a job's work when the user cancelled it; let it propagate."""
