"""Optional affine pre-alignment before the GradICON network (upstream has none).

SimpleITK, Mattes mutual information (so CT/MR pairs work), moments initialisation, two
resolution levels (shrink 4 and 2), masks honoured. The result is a 4x4 matrix ``A`` on
homogeneous RAS mm mapping a fixed point to the moving point (the same fixed -> moving
direction as the fields, :mod:`..base`). The moving image (and its mask) is resampled onto
the fixed grid with it; the network then registers that image, and :func:`compose` turns the
network's field ``d'`` into the field of the whole mapping, ``d(x) = A(x + d'(x)) - x``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..base import DisplacementField
from ..field import to_sitk_image

LPS_FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])
SEED = 20240601  # fixed sampling seed: the same pair gives the same alignment


def affine_ras(fixed: np.ndarray, fixed_ijk_to_ras: np.ndarray, moving: np.ndarray,
               moving_ijk_to_ras: np.ndarray, fixed_mask: Optional[np.ndarray] = None,
               moving_mask: Optional[np.ndarray] = None) -> np.ndarray:
    """The 4x4 RAS matrix aligning ``moving`` to ``fixed`` (normalised ``(K, J, I)`` float32
    images; masks boolean on their image's grid)."""
    import SimpleITK as sitk

    fixed_image = to_sitk_image(fixed.astype(np.float32), fixed_ijk_to_ras)
    moving_image = to_sitk_image(moving.astype(np.float32), moving_ijk_to_ras)
    initial = sitk.CenteredTransformInitializer(
        fixed_image, moving_image, sitk.AffineTransform(3),
        sitk.CenteredTransformInitializerFilter.MOMENTS)
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(0.2, SEED)
    if fixed_mask is not None:
        method.SetMetricFixedMask(to_sitk_image(fixed_mask.astype(np.uint8), fixed_ijk_to_ras))
    if moving_mask is not None:
        method.SetMetricMovingMask(to_sitk_image(moving_mask.astype(np.uint8), moving_ijk_to_ras))
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-3,
                                                    numberOfIterations=100,
                                                    gradientMagnitudeTolerance=1e-6)
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([4, 2])
    method.SetSmoothingSigmasPerLevel([2.0, 1.0])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    method.SetInitialTransform(initial, inPlace=False)
    transform = method.Execute(fixed_image, moving_image)
    return transform_to_ras_matrix(transform)


def transform_to_ras_matrix(transform) -> np.ndarray:
    """4x4 RAS matrix of a SimpleITK affine-like transform (LPS, fixed -> moving points)."""
    import SimpleITK as sitk

    if transform.GetName() == "CompositeTransform":
        transform = transform.GetNthTransform(0) if transform.GetNumberOfTransforms() == 1 else transform
    affine = sitk.AffineTransform(transform) if transform.GetName() != "AffineTransform" else transform
    matrix = np.asarray(affine.GetMatrix(), dtype=np.float64).reshape(3, 3)
    center = np.asarray(affine.GetCenter(), dtype=np.float64)
    translation = np.asarray(affine.GetTranslation(), dtype=np.float64)
    lps = np.eye(4)
    lps[:3, :3] = matrix
    lps[:3, 3] = center + translation - matrix @ center
    return LPS_FLIP @ lps @ LPS_FLIP


def resample_moving(moving: np.ndarray, moving_ijk_to_ras: np.ndarray, matrix_ras: np.ndarray,
                    fixed_shape, fixed_ijk_to_ras: np.ndarray, labels: bool = False) -> np.ndarray:
    """``moving`` resampled onto the fixed grid through ``matrix_ras`` (linear, or nearest for
    masks); 0 outside the moving image."""
    import SimpleITK as sitk

    lps = LPS_FLIP @ np.asarray(matrix_ras, dtype=np.float64) @ LPS_FLIP
    transform = sitk.AffineTransform(lps[:3, :3].ravel().tolist(), lps[:3, 3].tolist())
    source = to_sitk_image(moving, moving_ijk_to_ras)
    reference = to_sitk_image(np.zeros(tuple(fixed_shape), dtype=np.uint8), fixed_ijk_to_ras)
    out = sitk.Resample(source, reference, transform,
                        sitk.sitkNearestNeighbor if labels else sitk.sitkLinear, 0.0, source.GetPixelID())
    return sitk.GetArrayFromImage(out)


def compose(field: DisplacementField, matrix_ras: np.ndarray) -> DisplacementField:
    """The field of ``x -> A(x + d'(x))`` on ``field``'s grid, as ``d(x) = A(x + d'(x)) - x``."""
    matrix = np.asarray(matrix_ras, dtype=np.float64)
    linear, shift = matrix[:3, :3], matrix[:3, 3]
    grid = np.asarray(field.ijk_to_ras, dtype=np.float64)
    shape = field.shape
    out = np.empty_like(field.vectors_ras, dtype=np.float32)
    # x(k, j, i) = grid[:3, :3] @ (i, j, k) + grid[:3, 3]; done slice by slice.
    jj, ii = np.meshgrid(np.arange(shape[1]), np.arange(shape[2]), indexing="ij")
    for k in range(shape[0]):
        ijk = np.stack([ii, jj, np.full_like(ii, k)], axis=-1).astype(np.float64)
        x = ijk @ grid[:3, :3].T + grid[:3, 3]
        moved = (x + field.vectors_ras[k]) @ linear.T + shift
        out[k] = moved - x
    return DisplacementField(out, grid.copy())
