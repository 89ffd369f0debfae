"""Deformable stage of the classic engine: multi-resolution demons in SimpleITK.

Both images are SimpleITK float images on the same grid (the moving one already resampled
onto the fixed grid through the affine stage). Each level smooths and shrinks them, runs
symmetric-forces demons starting from the previous level's field, and hands its field up to
the next (finer) level. Shrink factors follow the voxel size, so a thick-slice axis is not
shrunk below the others' resolution. The result is a displacement field image
(``sitkVectorFloat64``, LPS mm) on the input grid: fixed point ``x`` -> ``x + d(x)`` in the
moving image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

from ..base import Progress
from .progress import run_reporting


@dataclass(frozen=True)
class DemonsLevel:
    """One level: ``shrink`` (voxel size relative to the finest axis), ``iterations``, the
    Gaussian ``field_sigma`` (in the level's voxels) that regularises the field, and the
    largest update per iteration ``max_step`` (in the level's voxels)."""

    shrink: int
    iterations: int
    field_sigma: float
    max_step: float = 0.5


def shrink_factors(spacing: Sequence[float], shrink: int) -> List[int]:
    """Per-axis (x, y, z) integer factors that bring every axis near ``shrink`` times the
    finest voxel size, never below 1."""
    finest = min(spacing)
    return [max(1, int(round(shrink * finest / s))) for s in spacing]


def _level_images(fixed, moving, factors: List[int]) -> Tuple[object, object]:
    import SimpleITK as sitk

    if all(f == 1 for f in factors):
        return fixed, moving
    sigmas = [0.5 * f * s for f, s in zip(factors, fixed.GetSpacing())]
    out = []
    for image in (fixed, moving):
        out.append(sitk.Shrink(sitk.SmoothingRecursiveGaussian(image, sigmas), factors))
    return out[0], out[1]


def demons(fixed, moving, levels: Sequence[DemonsLevel], progress: Progress, stage: str = "demons"):
    """The displacement field (fixed -> moving, LPS mm) on ``fixed``'s grid; reports
    ``progress(stage, done, total)`` per iteration over all levels."""
    import SimpleITK as sitk

    total = sum(level.iterations for level in levels)
    done = 0
    field = None
    progress(stage, 0, total)
    for level in levels:
        if level.iterations <= 0:
            continue
        level_fixed, level_moving = _level_images(fixed, moving, shrink_factors(fixed.GetSpacing(), level.shrink))
        if field is not None:
            field = sitk.Resample(field, level_fixed, sitk.Transform(), sitk.sitkLinear, 0.0,
                                  sitk.sitkVectorFloat64)
        else:
            field = sitk.Image(level_fixed.GetSize(), sitk.sitkVectorFloat64, 3)
            field.CopyInformation(level_fixed)
        step = sitk.FastSymmetricForcesDemonsRegistrationFilter()
        step.SetNumberOfIterations(level.iterations)
        step.SetStandardDeviations(level.field_sigma)
        step.SetMaximumUpdateStepLength(level.max_step)
        field = run_reporting(step, stage, total, progress,  # the lambda runs in this iteration
                              lambda: step.Execute(level_fixed, level_moving, field), start=done)  # noqa: B023
        done += level.iterations
    if field is None:  # no iterations at all
        field = sitk.Image(fixed.GetSize(), sitk.sitkVectorFloat64, 3)
        field.CopyInformation(fixed)
    elif field.GetSize() != fixed.GetSize():
        field = sitk.Resample(field, fixed, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkVectorFloat64)
    return field
