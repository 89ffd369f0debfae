"""Background jobs from the client side: submit, poll with progress, cancel, download.

Mixed into :class:`slicerfm_client.client.SlicerFMClient`. A job id is a capability: it
is all a client needs (with the server's access token) to follow a job, even from another
session or after a reconnect.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from . import errors, protocol, wire

FINAL_STATES = ("done", "failed", "cancelled")


class JobsMixin:
    """Job calls; relies on the client's ``_request`` and ``_lock``."""

    def submit_job(self, path: str, body: Dict[str, Any]) -> Dict[str, Any]:
        """POST ``body`` to a feature's submit endpoint; returns the job's status dict."""
        with self._lock:
            return self._request("POST", path, json=body, ok=(202,)).json()

    def job_status(self, job_id: str) -> Dict[str, Any]:
        with self._lock:
            return self._request("GET", protocol.job_path(job_id)).json()

    def cancel_job(self, job_id: str) -> Dict[str, Any]:
        """Ask the server to stop a job; returns its status (final once the job has noticed)."""
        with self._lock:
            return self._request("DELETE", protocol.job_path(job_id)).json()

    def job_array(self, job_id: str, name: str) -> Tuple[np.ndarray, Dict[str, Any]]:
        """One result array of a finished job and its meta."""
        with self._lock:
            response = self._request("GET", protocol.job_array_path(job_id, name))
        header, array = wire.decode(response.content)
        return array, header.meta

    def wait_job(self, job_id: str, on_progress: Optional[Callable[[Dict[str, Any]], None]] = None,
                 cancel_event: Optional[threading.Event] = None, poll_s: float = 0.5,
                 timeout_s: Optional[float] = None) -> Dict[str, Any]:
        """Poll until the job ends; returns the final status of a done job.

        ``on_progress(status)`` is called after every poll. Setting ``cancel_event`` cancels
        the job on the server. Raises :class:`~slicerfm_client.errors.JobCancelledError`,
        :class:`~slicerfm_client.errors.JobFailedError` (with the server's code and message)
        or :class:`~slicerfm_client.errors.JobTimeoutError` after ``timeout_s`` seconds
        (the job is then cancelled).
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        cancel_sent = False
        while True:
            if cancel_event is not None and cancel_event.is_set() and not cancel_sent:
                status = self.cancel_job(job_id)
                cancel_sent = True
            else:
                status = self.job_status(job_id)
            if on_progress is not None:
                on_progress(status)
            state = status.get("state")
            if state == "done":
                return status
            if state == "cancelled":
                raise errors.JobCancelledError("the job was cancelled", code="cancelled")
            if state == "failed":
                error = status.get("error") or {}
                raise errors.JobFailedError(error.get("message") or "the job failed",
                                            code=error.get("error"))
            if deadline is not None and time.monotonic() > deadline:
                self.cancel_job(job_id)
                raise errors.JobTimeoutError(f"the job did not finish within {timeout_s:.0f} s "
                                             "and was cancelled")
            if cancel_event is not None:
                cancel_event.wait(poll_s)
            else:
                time.sleep(poll_s)
