"""Synthetic registration pairs for the registration tests: smooth blobs placed in RAS mm.

Images are numpy ``(K, J, I)`` float32 with a 4x4 ``ijk_to_ras``; the grid below is
deliberately not axis-aligned with RAS in sign (i -> -R, j -> -A) and anisotropic, so a
sign or axis-order slip in the RAS/LPS handling shows up as a wrong vector.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from slicerfm_backend.registration.classic.engine import ClassicRegistrationEngine

SHAPE = (24, 28, 32)  # (K, J, I)
IJK_TO_RAS = np.array([[-1.5, 0.0, 0.0, 24.0],
                       [0.0, -1.5, 0.0, 21.0],
                       [0.0, 0.0, 2.0, -23.0],
                       [0.0, 0.0, 0.0, 1.0]])
CENTRE = np.array([0.0, 0.0, 0.0])  # RAS mm, the middle of the grid


def ras_grid(shape=SHAPE, ijk_to_ras=IJK_TO_RAS) -> np.ndarray:
    """RAS mm of every voxel centre, ``(K, J, I, 3)``."""
    k, j, i = np.indices(shape, dtype=np.float64)
    ijk1 = np.stack([i, j, k, np.ones_like(i)], axis=-1)
    return (ijk1 @ np.asarray(ijk_to_ras).T)[..., :3]


def voxel_of(point_ras, ijk_to_ras=IJK_TO_RAS) -> tuple:
    """Nearest voxel ``(k, j, i)`` of a RAS point."""
    i, j, k, _ = np.linalg.solve(ijk_to_ras, np.append(np.asarray(point_ras, float), 1.0))
    return int(round(k)), int(round(j)), int(round(i))


def blob(centre_ras, sigmas_mm=(6.0, 8.0, 5.0), shape=SHAPE, ijk_to_ras=IJK_TO_RAS, peak=1000.0) -> np.ndarray:
    """An ellipsoidal Gaussian of height ``peak`` centred at ``centre_ras``."""
    offset = (ras_grid(shape, ijk_to_ras) - np.asarray(centre_ras)) / np.asarray(sigmas_mm)
    return (peak * np.exp(-0.5 * np.sum(offset ** 2, axis=-1))).astype(np.float32)


def two_blobs(shift_a, shift_b, shape=SHAPE, ijk_to_ras=IJK_TO_RAS):
    """``(fixed, moving, centre_a, centre_b)``: blob A and blob B (4 mm sigmas) in the fixed
    image; in the moving one A moved by ``shift_a`` and B by ``shift_b`` (RAS mm)."""
    centre_a = np.array([-9.0, 0.0, 0.0])
    centre_b = np.array([9.0, 0.0, 0.0])
    sigmas = (4.0, 4.0, 4.0)
    fixed = blob(centre_a, sigmas, shape, ijk_to_ras) + blob(centre_b, sigmas, shape, ijk_to_ras)
    moving = (blob(centre_a + np.asarray(shift_a), sigmas, shape, ijk_to_ras)
              + blob(centre_b + np.asarray(shift_b), sigmas, shape, ijk_to_ras))
    return fixed, moving, centre_a, centre_b


def box_mask(centre_ras, half_mm, shape=SHAPE, ijk_to_ras=IJK_TO_RAS) -> np.ndarray:
    """Boolean mask of the voxels within ``half_mm`` of ``centre_ras`` along every RAS axis."""
    return np.all(np.abs(ras_grid(shape, ijk_to_ras) - np.asarray(centre_ras)) <= half_mm, axis=-1)



class GatedClassic(ClassicRegistrationEngine):
    """The classic engine pausing after its 2nd demons iteration until ``gate`` is set
    (``reached`` tells the test it got there), so that a test can cancel a job mid-run."""

    name = "gated-classic"
    reached = threading.Event()
    gate = threading.Event()

    def register(self, request, progress, step=contextlib.nullcontext):
        def gated(stage, done=0, total=0):
            progress(stage, done, total)
            if stage == "demons" and done == 2:
                type(self).reached.set()
                type(self).gate.wait(30)
                progress(stage, done, total)  # raises JobCancelled when cancelled meanwhile

        return super().register(request, gated, step)


class MissingWeightsEngine(ClassicRegistrationEngine):
    """An engine whose weights are absent: ``load`` fails as a network engine's would."""

    name = "missing-weights"

    def load(self):
        from slicerfm_backend.errors import WeightsMissingError

        raise WeightsMissingError("weights for missing-weights are missing: run "
                                  "`slicerfm-backend weights fetch missing-weights`")
