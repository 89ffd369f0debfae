"""Displacement fields: folding measure, SimpleITK conversion, warping, resampling.

A :class:`~.base.DisplacementField` holds RAS-mm vectors on a grid in the fixed image's
space (fixed point x -> moving point x + d(x)). SimpleITK works in LPS: converting a field
flips the R and A components and the grid's first two physical axes.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..imaging import ijk_to_ras_from_sitk, sitk_geometry_from_ijk_to_ras
from .base import DisplacementField

RAS_TO_LPS_VECTOR = np.array([-1.0, -1.0, 1.0])


SLAB_PLANES = 8  # k-planes per slab: bounds the float32 temporaries to a few slabs


def _determinant_slab(vectors: np.ndarray, grid_to_phys: np.ndarray, k0: int, k1: int) -> np.ndarray:
    """det for planes ``k0:k1`` of ``vectors`` (K, J, I, 3) float32, from a block with one
    plane of halo on each side where the grid goes on (so central differences, and the
    one-sided ones at the grid's faces, equal the whole-grid computation)."""
    lo, hi = max(0, k0 - 1), min(vectors.shape[0], k1 + 1)
    block = vectors[lo:hi]
    inner = slice(k0 - lo, k0 - lo + (k1 - k0))
    # d vectors / d (i, j, k): numpy axes 2, 1, 0 (an axis of one voxel has no derivative).
    by_index = [(np.gradient(block, axis=axis) if block.shape[axis] > 1 else np.zeros_like(block))[inner]
                for axis in (2, 1, 0)]
    jac = [[None] * 3 for _ in range(3)]  # jac[row][column], each (k1 - k0, J, I) float32
    for component in range(3):  # row: which vector component
        for column in range(3):  # column: derivative along R, A, S
            entry = sum(by_index[n][..., component] * grid_to_phys[n, column] for n in range(3))
            if component == column:
                entry += np.float32(1.0)
            jac[component][column] = entry
    # The 3x3 determinant written out: much faster than np.linalg.det on (N, 3, 3) stacks.
    (a, b, c), (d, e, f), (g, h, i) = jac
    return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)


def jacobian_determinant(field: DisplacementField, workers: int = 2) -> np.ndarray:
    """det(I + dd/dx) per voxel, ``(K, J, I)`` float32, derivatives in physical space
    (central differences on the grid, one-sided at the border), computed on k-slabs of
    ``SLAB_PLANES`` planes in ``workers`` threads (numpy releases the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    vectors = np.asarray(field.vectors_ras, dtype=np.float32)
    axes = np.asarray(field.ijk_to_ras, dtype=np.float64)[:3, :3]
    grid_to_phys = np.linalg.inv(axes).astype(np.float32)  # rows: d(i,j,k)/d(R,A,S)
    out = np.empty(vectors.shape[:3], dtype=np.float32)
    size_k = vectors.shape[0]

    def slab(k0: int) -> None:
        k1 = min(size_k, k0 + SLAB_PLANES)
        out[k0:k1] = _determinant_slab(vectors, grid_to_phys, k0, k1)

    starts = range(0, size_k, SLAB_PLANES)
    if workers <= 1 or size_k <= SLAB_PLANES:
        for k0 in starts:
            slab(k0)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(slab, starts))
    return out


def negative_jacobian_fraction(field: DisplacementField, mask: Optional[np.ndarray] = None,
                               workers: int = 2) -> float:
    """Fraction of voxels (inside ``mask`` when given, a boolean array on the field's grid)
    whose Jacobian determinant is <= 0."""
    if mask is not None and tuple(mask.shape) != field.shape:
        raise ValueError(f"mask shape {mask.shape} differs from the field grid {field.shape}")
    det = jacobian_determinant(field, workers)
    if mask is not None:
        det = det[np.asarray(mask, dtype=bool)]
    return float(np.mean(det <= 0)) if det.size else 0.0


def to_sitk_image(array: np.ndarray, ijk_to_ras: np.ndarray):
    """A SimpleITK image (LPS geometry) for a ``(K, J, I)`` array on a RAS grid."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    spacing, origin, direction = sitk_geometry_from_ijk_to_ras(ijk_to_ras)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction)
    return image


def to_sitk_transform(field: DisplacementField):
    """The field as a ``sitk.DisplacementFieldTransform`` (LPS, fixed -> moving points)."""
    import SimpleITK as sitk

    lps = (field.vectors_ras.astype(np.float64) * RAS_TO_LPS_VECTOR)
    image = sitk.GetImageFromArray(lps, isVector=True)
    spacing, origin, direction = sitk_geometry_from_ijk_to_ras(field.ijk_to_ras)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction)
    return sitk.DisplacementFieldTransform(image)


def from_sitk_displacement(image) -> DisplacementField:
    """A SimpleITK vector image of LPS displacements -> :class:`DisplacementField`."""
    import SimpleITK as sitk

    vectors = sitk.GetArrayFromImage(image).astype(np.float32) * RAS_TO_LPS_VECTOR.astype(np.float32)
    return DisplacementField(vectors, ijk_to_ras_from_sitk(image))


def transform_to_field(transform, ijk_to_ras: np.ndarray, shape) -> DisplacementField:
    """Sample any SimpleITK transform (LPS, fixed -> moving) as a field on a RAS grid of
    ``shape`` (K, J, I)."""
    import SimpleITK as sitk

    reference = to_sitk_image(np.zeros(tuple(shape), dtype=np.uint8), ijk_to_ras)
    converter = sitk.TransformToDisplacementFieldFilter()
    converter.SetReferenceImage(reference)
    converter.SetOutputPixelType(sitk.sitkVectorFloat64)
    return from_sitk_displacement(converter.Execute(transform))


def resample_field(field: DisplacementField, ijk_to_ras: np.ndarray, shape) -> DisplacementField:
    """The same mapping sampled on another grid (linear interpolation of the vectors;
    zero displacement outside the source grid)."""
    return transform_to_field(to_sitk_transform(field), ijk_to_ras, shape)


def warp(moving: np.ndarray, moving_ijk_to_ras: np.ndarray, field: DisplacementField,
         labels: bool = False, default: float = 0.0) -> np.ndarray:
    """The moving image resampled onto the field's grid: ``out[x] = moving(x + d(x))``.
    Linear interpolation, or nearest neighbour for label maps (``labels=True``)."""
    import SimpleITK as sitk

    source = to_sitk_image(moving, moving_ijk_to_ras)
    reference = to_sitk_image(np.zeros(field.shape, dtype=np.uint8), field.ijk_to_ras)
    interpolator = sitk.sitkNearestNeighbor if labels else sitk.sitkLinear
    out = sitk.Resample(source, reference, to_sitk_transform(field), interpolator, default,
                        source.GetPixelID())
    return sitk.GetArrayFromImage(out)
