"""Slice engines (medsam, sam) from the client: a box or points on a slice, and the
propagation job that carries the result through the neighbouring slices.

    update = client.add_slice_box("liver", axis=0, index=42, corner_a_rc=(120, 80),
                                  corner_b_rc=(260, 210), engine="medsam")
    update.apply_to(labels)                      # the prompted slice, at once
    more = client.wait_propagation(update, on_progress=lambda s: print(s["done"], s["total"]))
    more.apply_to(labels)                        # the other slices (their changed box only)

``update.propagation`` is the propagation job's status (None when nothing propagates).
``wait_propagation`` polls it (``on_progress(status)`` after each poll: ``stage``
"propagating", ``done``/``total`` slices), cancels it when ``cancel_event`` is set, and
downloads its result as a :class:`~slicerfm_client.updates.MaskUpdate`. A cancelled
propagation -- by the user, or superseded by a later change to the segment -- raises
:class:`~slicerfm_client.errors.JobCancelledError`; nothing of it was applied on the server.
Slice coordinates: on ``axis`` 0 (k) rows are j and columns i; on 1 (j) rows are k, columns
i; on 2 (i) rows are k, columns j (docs/PROTOCOL.md, "Slice engines").
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

from . import errors, protocol, wire
from .updates import MaskUpdate, mask_update

SliceCorner = Sequence[float]  # (row, col) on the slice


def slice_point_kji(axis: int, index: float, row: float, col: float) -> Tuple[float, float, float]:
    """Voxel ``(k, j, i)`` of pixel ``(row, col)`` on slice ``index`` of ``axis``."""
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0 (k), 1 (j) or 2 (i), got {axis!r}")
    kji = [float(row), float(col)]
    kji.insert(axis, float(index))
    return tuple(kji)


def slice_box_kji(axis: int, index: float, corner_a_rc: SliceCorner,
                  corner_b_rc: SliceCorner) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """The ``box_kji`` corners of a box drawn on slice ``index`` of ``axis``: one voxel
    thick on ``axis``, which makes it a slice box for slice engines."""
    return (slice_point_kji(axis, index, *corner_a_rc), slice_point_kji(axis, index, *corner_b_rc))


def _job_id(update_or_job: Union[MaskUpdate, Dict[str, Any], str]) -> str:
    if isinstance(update_or_job, MaskUpdate):
        if update_or_job.propagation is None:
            raise ValueError("this change started no propagation (update.propagation is None)")
        return str(update_or_job.propagation["job_id"])
    if isinstance(update_or_job, dict):
        return str(update_or_job["job_id"])
    return str(update_or_job)


class PropagationMixin:
    """Slice-engine calls; relies on the client's ``interact`` and the jobs mixin."""

    def add_slice_box(self, segment: str, axis: int, index: int, corner_a_rc: SliceCorner,
                      corner_b_rc: SliceCorner, engine: str = "medsam", propagate: bool = True,
                      max_slices: Optional[int] = None) -> MaskUpdate:
        """A box drawn on slice ``index`` of ``axis`` (two opposite corners ``(row, col)``,
        inclusive): the prompted slice's change; ``.propagation`` is the job for the rest."""
        a, b = slice_box_kji(axis, index, corner_a_rc, corner_b_rc)
        return self.add_box(segment, a, b, engine=engine, slice_axis=axis, propagate=propagate,
                            max_slices=max_slices)

    def add_slice_point(self, segment: str, axis: int, index: int, row: float, col: float,
                        positive: bool = True, engine: str = "medsam", propagate: bool = True,
                        max_slices: Optional[int] = None) -> MaskUpdate:
        """A click on slice ``index`` of ``axis``; refines that slice and re-propagates."""
        return self.add_point(segment, slice_point_kji(axis, index, row, col), positive, engine=engine,
                              slice_axis=axis, propagate=propagate, max_slices=max_slices)

    def wait_propagation(self, update_or_job: Union[MaskUpdate, Dict[str, Any], str],
                         on_progress: Optional[Callable[[Dict[str, Any]], None]] = None,
                         cancel_event: Optional[threading.Event] = None, poll_s: float = 0.25,
                         timeout_s: Optional[float] = None) -> MaskUpdate:
        """Wait for a propagation job (an update carrying one, its status, or its id) and
        return its change (``bbox`` None when it changed nothing). Raises JobCancelledError
        (its ``code`` is the stage: "cancelled", "superseded", "segment_locked",
        "session_ended"), JobFailedError or JobTimeoutError."""
        job_id = _job_id(update_or_job)
        try:
            final = self.wait_job(job_id, on_progress=on_progress, cancel_event=cancel_event,
                                  poll_s=poll_s, timeout_s=timeout_s)
        except errors.JobCancelledError:
            stage = self.job_status(job_id).get("stage")
            reasons = {"superseded": "a later change to the segment superseded it",
                       "segment_locked": "the segment was locked", "session_ended": "the session ended"}
            code = stage if stage in reasons else "cancelled"
            raise errors.JobCancelledError(f"the propagation was cancelled: {reasons.get(code, 'by request')}",
                                           code=code) from None
        with self._lock:
            response = self._request("GET", protocol.job_array_path(job_id, "mask"))
        header, mask = wire.decode(response.content)
        update = mask_update(header, mask, nbytes=len(response.content))
        update.propagation = final
        return update

    def cancel_propagation(self, update_or_job: Union[MaskUpdate, Dict[str, Any], str]) -> Dict[str, Any]:
        """Ask the server to stop a propagation; its status (final once the job noticed)."""
        return self.cancel_job(_job_id(update_or_job))
