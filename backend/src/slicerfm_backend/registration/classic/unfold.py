"""Local removal of folds: smooth the field only around voxels with det(I + dd/dx) <= 0.

Demons with a light regularisation fits fine structures well but leaves folded voxels
(≈1.6 % on the brain pair with the default schedule). Smoothing the whole field removes them only with a visible loss
of accuracy; here each cluster of folded voxels, grown by ``grow`` voxels, takes the
Gaussian-smoothed (``sigma`` voxels) field, and the determinant is recomputed there, for
up to ``rounds`` rounds. Vectors are RAS mm ``(K, J, I, 3)`` float32 on ``ijk_to_ras``.
"""

from __future__ import annotations

import math
from typing import Tuple

import numpy as np

from ..base import DisplacementField
from ..field import jacobian_determinant

SIGMA_VOXELS = 1.0
GROW_VOXELS = 2
ROUNDS = 5


def _expand(box, by: int, shape) -> Tuple[slice, ...]:
    return tuple(slice(max(0, s.start - by), min(n, s.stop + by)) for s, n in zip(box, shape))


def _determinant_in(vectors: np.ndarray, ijk_to_ras, box) -> np.ndarray:
    """det on ``box`` as the whole-grid computation gives it (one voxel of halo for the
    central differences; at the grid's own border the halo is absent, as it should be)."""
    shape = vectors.shape[:3]
    halo = _expand(box, 1, shape)
    det = jacobian_determinant(DisplacementField(vectors[halo], ijk_to_ras), workers=1)
    inner = tuple(slice(b.start - h.start, b.stop - h.start) for b, h in zip(box, halo))
    return det[inner]


def _bounding_box(mask: np.ndarray):
    box = []
    for axis in range(3):
        hits = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        if hits.size == 0:
            return None
        box.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)


def unfold(vectors: np.ndarray, ijk_to_ras, det: np.ndarray, sigma: float = SIGMA_VOXELS,
           grow: int = GROW_VOXELS, rounds: int = ROUNDS) -> dict:
    """Smooth ``vectors`` in place around folded voxels; ``det`` (the determinant of
    ``vectors``, ``(K, J, I)``) is updated in place. Returns ``{"rounds", "voxels_smoothed",
    "folded_before", "folded_after"}`` (voxel counts)."""
    from scipy import ndimage

    shape = vectors.shape[:3]
    margin = grow + int(math.ceil(3 * sigma)) + 1
    folded_before = int(np.count_nonzero(det <= 0))
    smoothed_total, done = 0, 0
    for done in range(1, rounds + 1):
        area = _bounding_box(det <= 0)
        if area is None:
            done -= 1
            break
        area = _expand(area, grow, shape)
        region = ndimage.binary_dilation(det[area] <= 0, iterations=grow)
        clusters, _ = ndimage.label(region)
        for index, found in enumerate(ndimage.find_objects(clusters), start=1):
            local = tuple(slice(a.start + f.start, a.start + f.stop) for a, f in zip(area, found))
            work = _expand(local, margin, shape)
            block = vectors[work]
            selected = np.zeros(block.shape[:3], dtype=bool)
            inside = tuple(slice(part.start - w.start, part.stop - w.start) for part, w in zip(local, work))
            selected[inside] = clusters[found] == index
            for component in range(3):
                smooth = ndimage.gaussian_filter(block[..., component], sigma, mode="nearest")
                block[..., component][selected] = smooth[selected]
            smoothed_total += int(selected.sum())
            changed = _expand(local, 1, shape)
            det[changed] = _determinant_in(vectors, ijk_to_ras, changed)
    return {"rounds": done, "voxels_smoothed": smoothed_total, "folded_before": folded_before,
            "folded_after": int(np.count_nonzero(det <= 0))}
