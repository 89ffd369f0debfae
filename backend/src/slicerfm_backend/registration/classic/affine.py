"""Affine stage of the classic engine: SimpleITK, Mattes mutual information, two levels.

Works on SimpleITK images (LPS physical space). The result is an ``sitk.AffineTransform``
mapping fixed points to moving points (a resampling transform), started from the moments
(centres of mass) of the two images. Masks restrict the metric's samples.
"""

from __future__ import annotations

from typing import Optional

from ..base import Progress
from .progress import run_reporting

SHRINK_FACTORS = (4, 2)
SMOOTHING_SIGMAS_MM = (2.0, 1.0)
ITERATIONS_PER_LEVEL = 60
SAMPLING_FRACTION = 0.1
HISTOGRAM_BINS = 32
SEED = 20261123  # fixed: the same pair gives the same transform


def affine(fixed, moving, progress: Progress, fixed_mask=None, moving_mask=None,
           iterations_per_level: int = ITERATIONS_PER_LEVEL):
    """An ``sitk.AffineTransform`` (fixed -> moving, LPS) for two float SimpleITK images.

    ``fixed_mask``/``moving_mask``: optional uint8 SimpleITK images on their image's grid.
    Reports ``progress("affine", n, total)`` per optimiser iteration."""
    import SimpleITK as sitk

    initial = sitk.CenteredTransformInitializer(
        fixed, moving, sitk.AffineTransform(3), sitk.CenteredTransformInitializerFilter.MOMENTS)
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(HISTOGRAM_BINS)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(SAMPLING_FRACTION, SEED)
    if fixed_mask is not None:
        method.SetMetricFixedMask(fixed_mask)
    if moving_mask is not None:
        method.SetMetricMovingMask(moving_mask)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0, minStep=1e-3, numberOfIterations=iterations_per_level,
        gradientMagnitudeTolerance=1e-6)
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel(list(SHRINK_FACTORS))
    method.SetSmoothingSigmasPerLevel(list(SMOOTHING_SIGMAS_MM))
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    method.SetInitialTransform(initial, inPlace=False)
    total = iterations_per_level * len(SHRINK_FACTORS)
    progress("affine", 0, total)
    found = run_reporting(method, "affine", total, progress, lambda: method.Execute(fixed, moving))
    return _as_affine(found)


def _as_affine(transform):
    """The affine inside what ``ImageRegistrationMethod`` returns (a composite of one)."""
    import SimpleITK as sitk

    if isinstance(transform, sitk.CompositeTransform):
        transform = transform.GetBackTransform()
    return sitk.AffineTransform(transform)


def resample_onto(moving, reference, transform: Optional[object] = None, default: float = 0.0):
    """``moving`` resampled (linear) onto ``reference``'s grid through ``transform``
    (fixed -> moving; identity when None)."""
    import SimpleITK as sitk

    transform = transform if transform is not None else sitk.Transform()
    return sitk.Resample(moving, reference, transform, sitk.sitkLinear, default, moving.GetPixelID())
