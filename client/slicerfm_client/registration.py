"""Registration from the client (torch-free): upload, submit the job, wait, download.

    from slicerfm_client.registration import register
    vectors_ras, ijk_to_ras, meta = register(client, fixed, fixed_ijk_to_ras, moving,
                                             moving_ijk_to_ras, engine="classic")

Arrays are numpy ``(K, J, I)`` with their 4x4 ``ijk_to_ras`` (homogeneous (i, j, k, 1) ->
RAS mm). The result is a displacement field: ``vectors_ras`` float32 ``(K, J, I, 3)``, RAS
mm, on the grid ``ijk_to_ras`` (the fixed image's grid, or the engine's native grid with
``output_grid="native"``); the fixed point ``x`` corresponds to the moving point
``x + d(x)``. ``meta`` is the job's result (``neg_jacobian_fraction``, ``runtime_s``,
``timings_s``, ``details``) plus ``job_id``. Images and masks already on the server (same
content id) are not sent again.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np

from . import protocol

class RegistrationOutput(tuple):
    """``(vectors_ras, ijk_to_ras, meta)``; ``.warped`` is the moving image resampled onto
    the field's grid when it was asked for (else None), ``.job_id`` the server's job."""

    def __new__(cls, vectors_ras: np.ndarray, ijk_to_ras: np.ndarray, meta: Dict[str, Any],
                warped: Optional[np.ndarray] = None):
        out = super().__new__(cls, (vectors_ras, ijk_to_ras, meta))
        out.warped = warped
        out.job_id = meta.get("job_id", "")
        return out

    @property
    def vectors_ras(self) -> np.ndarray:
        return self[0]

    @property
    def ijk_to_ras(self) -> np.ndarray:
        return self[1]

    @property
    def meta(self) -> Dict[str, Any]:
        return self[2]


def _check_modality(role: str, modality: str) -> str:
    """The canonical name of ``modality`` (:func:`protocol.modality`), the role in the error."""
    try:
        return protocol.modality(modality)
    except ValueError as error:
        raise ValueError(f"{role}_modality: {error}") from None


def upload_mask(client, mask: np.ndarray, ijk_to_ras) -> str:
    """Upload a boolean or integer mask (label map) on its image's grid; returns its id."""
    mask = np.asarray(mask)
    if mask.dtype == bool:
        mask = mask.astype(np.uint8)
    elif mask.dtype.kind not in "iu":
        raise ValueError(f"a mask must be boolean or an integer label map, got {mask.dtype}")
    return client.upload_image(mask, ijk_to_ras, protocol.MODALITY_OTHER)


def image_part(image_id: str, modality: str, mask_id: Optional[str] = None,
               mask_labels: Optional[Sequence[int]] = None) -> Dict[str, Any]:
    part: Dict[str, Any] = {"image_id": image_id, "modality": modality}
    if mask_id is not None:
        part["mask_id"] = mask_id
        if mask_labels is not None:
            part["mask_labels"] = [int(v) for v in mask_labels]
    return part


def register(client, fixed: np.ndarray, fixed_ijk_to_ras, moving: np.ndarray, moving_ijk_to_ras,
             engine: str = "classic", fixed_modality: str = "other", moving_modality: str = "other",
             fixed_mask: Optional[np.ndarray] = None, moving_mask: Optional[np.ndarray] = None,
             fixed_mask_labels: Optional[Sequence[int]] = None,
             moving_mask_labels: Optional[Sequence[int]] = None,
             io_steps: Optional[int] = None, similarity: Optional[str] = None,
             affine_prealign: bool = False, output_grid: str = "fixed", want_warped: bool = False,
             on_progress: Optional[Callable[[Dict[str, Any]], None]] = None,
             cancel_event: Optional[threading.Event] = None, timeout_s: Optional[float] = None,
             poll_s: float = 0.5) -> RegistrationOutput:
    """Register ``moving`` onto ``fixed`` on the server; see the module docstring.

    Masks are boolean (True = use) or label maps (with ``*_mask_labels`` choosing labels) on
    their image's grid. ``on_progress(status)`` gets the job status while waiting (stage,
    done, total); setting ``cancel_event`` cancels the job (JobCancelledError). Failures
    raise the client's errors with the server's message (e.g. JobFailedError)."""
    fixed_modality = _check_modality("fixed", fixed_modality)
    moving_modality = _check_modality("moving", moving_modality)
    if output_grid not in ("fixed", "native"):
        raise ValueError(f"output_grid must be 'fixed' or 'native', got {output_grid!r}")
    fixed_id = client.upload_image(fixed, fixed_ijk_to_ras, fixed_modality)
    moving_id = client.upload_image(moving, moving_ijk_to_ras, moving_modality)
    fixed_mask_id = None if fixed_mask is None else upload_mask(client, fixed_mask, fixed_ijk_to_ras)
    moving_mask_id = None if moving_mask is None else upload_mask(client, moving_mask, moving_ijk_to_ras)
    body: Dict[str, Any] = {
        "engine": engine,
        "fixed": image_part(fixed_id, fixed_modality, fixed_mask_id, fixed_mask_labels),
        "moving": image_part(moving_id, moving_modality, moving_mask_id, moving_mask_labels),
        "io_steps": io_steps, "similarity": similarity, "affine_prealign": bool(affine_prealign),
        "output_grid": output_grid, "want_warped": bool(want_warped),
    }
    status = client.submit_job(protocol.PATH_REGISTER, body)
    job_id = status["job_id"]
    final = client.wait_job(job_id, on_progress=on_progress, cancel_event=cancel_event,
                            poll_s=poll_s, timeout_s=timeout_s)
    vectors, field_meta = client.job_array(job_id, "displacement")
    warped = client.job_array(job_id, "warped")[0] if want_warped else None
    meta = dict(final.get("result") or {})
    meta["job_id"] = job_id
    meta["convention"] = field_meta.get("convention")
    return RegistrationOutput(vectors, np.asarray(field_meta["ijk_to_ras"], dtype=np.float64), meta, warped)
