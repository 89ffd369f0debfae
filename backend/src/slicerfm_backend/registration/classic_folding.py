"""Folding of a displacement field, computed slab by slab in float32.

Same quantity as :func:`.field.jacobian_determinant` (det(I + dd/dx) with derivatives in
physical space, central differences inside the grid, one-sided at its border), but without
building a ``(K, J, I, 3, 3)`` array or calling ``np.linalg.det`` per voxel: for a 224 x
192 x 160 field it takes a fraction of the time and memory.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

SLAB = 16


def _derivative(block: np.ndarray, axis: int) -> np.ndarray:
    if block.shape[axis] < 2:
        return np.zeros_like(block)
    return np.gradient(block, axis=axis)


def jacobian_determinant(vectors_ras: np.ndarray, ijk_to_ras: np.ndarray) -> np.ndarray:
    """det(I + dd/dx) per voxel, ``(K, J, I)`` float32, for RAS vectors ``(K, J, I, 3)`` on
    the grid ``ijk_to_ras``."""
    vectors = np.asarray(vectors_ras, dtype=np.float32)
    grid_to_phys = np.linalg.inv(np.asarray(ijk_to_ras, dtype=np.float64)[:3, :3]).astype(np.float32)
    size_k = vectors.shape[0]
    out = np.empty(vectors.shape[:3], dtype=np.float32)
    for k0 in range(0, size_k, SLAB):
        k1 = min(size_k, k0 + SLAB)
        lo, hi = max(0, k0 - 1), min(size_k, k1 + 1)
        block = vectors[lo:hi]
        inner = slice(k0 - lo, k0 - lo + (k1 - k0))
        by_index = [_derivative(block, axis)[inner] for axis in (2, 1, 0)]  # d/di, d/dj, d/dk
        jac = [[None] * 3 for _ in range(3)]
        for component in range(3):
            for column in range(3):
                value = (by_index[0][..., component] * grid_to_phys[0, column]
                         + by_index[1][..., component] * grid_to_phys[1, column]
                         + by_index[2][..., component] * grid_to_phys[2, column])
                if component == column:
                    value += np.float32(1.0)
                jac[component][column] = value
        out[k0:k1] = (jac[0][0] * (jac[1][1] * jac[2][2] - jac[1][2] * jac[2][1])
                      - jac[0][1] * (jac[1][0] * jac[2][2] - jac[1][2] * jac[2][0])
                      + jac[0][2] * (jac[1][0] * jac[2][1] - jac[1][1] * jac[2][0]))
    return out


def negative_jacobian_fraction(vectors_ras: np.ndarray, ijk_to_ras: np.ndarray,
                               mask: Optional[np.ndarray] = None) -> float:
    """Fraction of voxels (inside the boolean ``mask`` when given) with det <= 0."""
    det = jacobian_determinant(vectors_ras, ijk_to_ras)
    if mask is not None:
        if mask.shape != det.shape:
            raise ValueError(f"mask shape {mask.shape} differs from the field grid {det.shape}")
        det = det[mask]
    return float(np.mean(det <= 0)) if det.size else 0.0
