"""The built-in ``classic`` registration engine: CPU, no weights, SimpleITK.

Pipeline for a pair (moving onto fixed), all on the fixed image's grid:

1. intensities to [0, 1] by modality; masks multiply them (:mod:`.intensity`);
2. optional affine pre-alignment, Mattes mutual information with the masks limiting the
   metric (:mod:`.affine`); the moving image is resampled onto the fixed grid
   through it (identity without it);
3. both images are cropped to the box holding either one's foreground (plus a margin) and
   multi-resolution symmetric-forces demons runs there (:mod:`.demons`); the field
   outside the box continues the box's border values. (Histogram matching of the moving
   intensities was tried and lowered the brain_pair Dice from 0.776 to 0.768: not used.)
4. the field composed with the affine, as RAS vectors on the fixed grid: fixed point ``x``
   -> moving point ``x + d(x)`` (see :mod:`..base`);
5. folded voxels (det(I + dd/dx) <= 0) are smoothed away locally (:mod:`.unfold`;
   engine option ``unfold``, on by default: ``--engine-option classic.unfold=off``): on the
   brain pair this takes the folding from 1.6 % to 0.08 % of the voxels (docs/BENCHMARKS.md,
   Registration).

``io_steps`` is the number of demons iterations at the finest level (0: no deformable
step, only the affine when ``affine_prealign`` is set). ``similarity``: "ssd" (demons
matches intensities, so both images should show the same contrast: same modality and
sequence). The ``native`` output grid is the fixed grid for this engine.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ...engine_core.options import on_off
from ...errors import EngineError
from ..base import (DisplacementField, Progress, RegistrationCapabilities, RegistrationEngine,
                   RegistrationRequest, RegistrationResult, StepGuard)
from .demons import DemonsLevel

SIMILARITIES = ("ssd",)
DEFAULT_FINE_ITERATIONS = 20
MAX_IO_STEPS = 500
COARSE_LEVELS = (DemonsLevel(4, 50, 1.0), DemonsLevel(2, 50, 1.0))
FINE_FIELD_SIGMA = 0.8
BOX_MARGIN = 16
# Time model for estimate_s, from the brain pair (6,881,280 fixed voxels, 2 idle cores,
# docs/BENCHMARKS.md): demons 20.5 s for the 50 + 50 coarse iterations (about 7 full-
# resolution iterations' worth) and 20 fine ones; Jacobian, unfolding and the rest 5.9 s.
ESTIMATE_VOXELS = 6_881_280
ESTIMATE_ITERATION_S = 20.5 / 27
ESTIMATE_COARSE_ITERATIONS = 7
ESTIMATE_FIXED_S = 5.9
ESTIMATE_AFFINE_S = 16.0  # the affine stage alone: 20.1 s wall, 16.5 s CPU at load 5
RAS_FLIP = np.array([-1.0, -1.0, 1.0])


def demons_levels(io_steps: int) -> Tuple[DemonsLevel, ...]:
    """The demons schedule: the coarse levels, then ``io_steps`` at full resolution."""
    if io_steps == 0:
        return ()
    return COARSE_LEVELS + (DemonsLevel(1, io_steps, FINE_FIELD_SIGMA),)


def affine_to_ras(transform) -> np.ndarray:
    """4x4 RAS matrix of an ``sitk.AffineTransform`` (LPS, fixed -> moving points)."""
    matrix = np.asarray(transform.GetMatrix(), dtype=np.float64).reshape(3, 3)
    centre = np.asarray(transform.GetCenter(), dtype=np.float64)
    translation = np.asarray(transform.GetTranslation(), dtype=np.float64)
    flip = np.diag(RAS_FLIP)
    out = np.eye(4)
    out[:3, :3] = flip @ matrix @ flip
    out[:3, 3] = flip @ (centre + translation - matrix @ centre)
    return out


def grid_points_ras(ijk_to_ras: np.ndarray, shape) -> np.ndarray:
    """RAS mm of every voxel centre, ``(K, J, I, 3)`` float32."""
    matrix = np.asarray(ijk_to_ras, dtype=np.float64)
    k, j, i = (np.arange(n, dtype=np.float32) for n in shape)
    points = np.empty(tuple(shape) + (3,), dtype=np.float32)
    for axis in range(3):
        points[..., axis] = (np.float32(matrix[axis, 3])
                             + np.float32(matrix[axis, 0]) * i[None, None, :]
                             + np.float32(matrix[axis, 1]) * j[None, :, None]
                             + np.float32(matrix[axis, 2]) * k[:, None, None])
    return points


def compose_affine(vectors_ras: np.ndarray, ijk_to_ras: np.ndarray, affine_ras: np.ndarray) -> np.ndarray:
    """Vectors of ``x -> A(x + d(x))`` on the grid: ``(M - I) x + M d + t``, float32."""
    matrix = affine_ras[:3, :3].astype(np.float32)
    points = grid_points_ras(ijk_to_ras, vectors_ras.shape[:3])
    out = (points + vectors_ras) @ matrix.T
    out += affine_ras[:3, 3].astype(np.float32)
    out -= points
    return out


def _mask_image(mask: Optional[np.ndarray], ijk_to_ras: np.ndarray):
    from ..field import to_sitk_image

    return None if mask is None else to_sitk_image(mask.astype(np.uint8), ijk_to_ras)


class ClassicRegistrationEngine(RegistrationEngine):
    """SimpleITK affine (optional) + multi-resolution demons, on the CPU, without weights."""

    name = "classic"
    capabilities = RegistrationCapabilities(
        description="Built-in (CPU, no weights): optional affine (mutual information), then "
                    "multi-resolution symmetric-forces demons; same-contrast pairs.",
        needs_weights=False, devices=("cpu",), similarities=SIMILARITIES,
        default_io_steps=DEFAULT_FINE_ITERATIONS, max_io_steps=MAX_IO_STEPS)
    option_types = {"unfold": on_off}

    def estimate_s(self, request: RegistrationRequest) -> Optional[float]:
        """Scaled from the brain pair on 2 idle cores (docs/BENCHMARKS.md): per fixed voxel,
        the fixed stages plus the demons iterations (coarse levels as fine-iteration
        equivalents) and, when asked, the affine stage."""
        io_steps = self.default_io_steps if request.io_steps is None else max(0, int(request.io_steps))
        scale = float(np.prod(request.fixed.shape)) / ESTIMATE_VOXELS
        demons = ESTIMATE_ITERATION_S * (ESTIMATE_COARSE_ITERATIONS + io_steps) if io_steps else 0.0
        affine = ESTIMATE_AFFINE_S if request.affine_prealign else 0.0
        return scale * (ESTIMATE_FIXED_S + demons + affine)

    def check_request(self, request: RegistrationRequest) -> int:
        """The finest-level iterations to run; EngineError for unusable options or masks."""
        io_steps = self.default_io_steps if request.io_steps is None else request.io_steps
        if isinstance(io_steps, bool) or not isinstance(io_steps, (int, np.integer)) \
                or not 0 <= io_steps <= MAX_IO_STEPS:
            raise EngineError(f"io_steps must be an integer from 0 to {MAX_IO_STEPS}, got {io_steps!r}")
        if request.similarity not in (None,) + SIMILARITIES:
            raise EngineError(f"similarity {request.similarity!r} is not offered by the classic engine; "
                              f"use {', '.join(SIMILARITIES)} (or a GradICON engine for lncc/mind)")
        if request.output_grid not in ("fixed", "native"):
            raise EngineError(f"output_grid must be 'fixed' or 'native', got {request.output_grid!r}")
        if io_steps == 0 and not request.affine_prealign:
            raise EngineError("nothing to do: io_steps is 0 (no deformable step) and the affine "
                              "pre-alignment is off")
        for role, image in (("fixed", request.fixed), ("moving", request.moving)):
            if image.array.ndim != 3 or min(image.array.shape) < 1:
                raise EngineError(f"the {role} image must be a non-empty 3-D array, got shape {image.array.shape}")
            if image.mask is not None:
                if image.mask.shape != image.array.shape:
                    raise EngineError(f"the {role} mask has shape {image.mask.shape}, its image "
                                      f"{image.array.shape}; masks must be on their image's grid")
                if not image.mask.any():
                    raise EngineError(f"the {role} mask is empty")
        return int(io_steps)

    def register(self, request: RegistrationRequest, progress: Progress,
                 step: StepGuard = contextlib.nullcontext) -> RegistrationResult:
        import SimpleITK as sitk

        from . import affine, demons, intensity
        from ..field import jacobian_determinant
        from .unfold import unfold
        from ..field import to_sitk_image

        io_steps = self.check_request(request)
        fixed, moving = request.fixed, request.moving
        fixed_mask = None if fixed.mask is None else fixed.mask.astype(bool)
        moving_mask = None if moving.mask is None else moving.mask.astype(bool)
        fixed_ijk = np.asarray(fixed.ijk_to_ras, dtype=np.float64)
        timings: Dict[str, float] = {}
        start = mark = time.perf_counter()

        progress("preprocess", 0, 0)
        fixed_norm = intensity.normalise(fixed.array, fixed.modality, fixed_mask)
        moving_norm = intensity.normalise(moving.array, moving.modality, moving_mask)
        fixed_image = to_sitk_image(fixed_norm, fixed_ijk)
        moving_image = to_sitk_image(moving_norm, moving.ijk_to_ras)
        timings["preprocess"] = time.perf_counter() - mark

        affine_ras = None
        transform = None
        if request.affine_prealign:
            mark = time.perf_counter()
            transform = affine.affine(fixed_image, moving_image, progress,
                                              _mask_image(fixed_mask, fixed_ijk),
                                              _mask_image(moving_mask, moving.ijk_to_ras))
            affine_ras = affine_to_ras(transform)
            timings["affine"] = time.perf_counter() - mark

        vectors = np.zeros(tuple(fixed.shape) + (3,), dtype=np.float32)
        levels = demons_levels(io_steps)
        box = None
        if levels:
            mark = time.perf_counter()
            progress("resample", 0, 0)
            moving_on_fixed = affine.resample_onto(moving_image, fixed_image, transform)
            box = intensity.foreground_box(fixed_norm, sitk.GetArrayViewFromImage(moving_on_fixed),
                                                   margin=BOX_MARGIN)
            crop = (box[2], box[1], box[0])  # SimpleITK slices in (x, y, z) = (i, j, k) order
            timings["resample"] = time.perf_counter() - mark
            mark = time.perf_counter()
            field_image = demons.demons(fixed_image[crop], moving_on_fixed[crop], levels, progress)
            timings["demons"] = time.perf_counter() - mark
            mark = time.perf_counter()
            inside = sitk.GetArrayViewFromImage(field_image).astype(np.float32) * RAS_FLIP.astype(np.float32)
            pad = [(s.start, n - s.stop) for s, n in zip(box, fixed.shape)] + [(0, 0)]
            vectors = np.pad(inside, pad, mode="edge")
            timings["field"] = time.perf_counter() - mark
        if affine_ras is not None:
            mark = time.perf_counter()
            vectors = compose_affine(vectors, fixed_ijk, affine_ras)
            timings["field"] = timings.get("field", 0.0) + time.perf_counter() - mark
        field = DisplacementField(np.ascontiguousarray(vectors, dtype=np.float32), fixed_ijk.copy())

        progress("jacobian", 0, 0)
        mark = time.perf_counter()
        det = jacobian_determinant(field)
        unfolded = None
        if levels and self.options.get("unfold", True):
            unfolded = unfold(field.vectors_ras, field.ijk_to_ras, det)
        inside = det if fixed_mask is None else det[fixed_mask]
        folding = float(np.mean(inside <= 0)) if inside.size else 0.0
        timings["jacobian"] = time.perf_counter() - mark
        timings["total"] = time.perf_counter() - start

        details: Dict[str, Any] = {
            "engine": self.name, "io_steps": io_steps, "similarity": "ssd" if levels else None,
            "affine_prealign": bool(request.affine_prealign), "output_grid": "fixed",
            "demons_levels": [{"shrink": lv.shrink, "iterations": lv.iterations,
                               "field_sigma_voxels": lv.field_sigma} for lv in levels],
            "device": "cpu",
        }
        if unfolded is not None:
            details["unfold"] = unfolded
        if box is not None:
            details["working_box_kji"] = [[s.start for s in box], [s.stop for s in box]]
        if affine_ras is not None:
            details["affine_ras"] = affine_ras.tolist()
        return RegistrationResult(field, folding, timings, details)
