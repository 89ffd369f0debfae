"""The classic engine's working grid: a lazily filled, block-averaged copy of the image.

The engine segments on a grid of roughly ``target_mm`` voxels: ``COARSE_MM`` for large
structures, so that one interaction costs about the same on a 3 mm and on a 0.7 mm CT, and
``FINE_MM`` for small or thin ones (see ``engine.py``). Each working voxel is the mean of an
``f_k x f_j x f_i`` block of image voxels (integer factors, 1 where the image is already
coarse). Blocks are filled tile by tile, only where a region of interest (ROI) asks for
them, and kept in the engine's per-image cache for the next interaction.

Coordinates: image voxel ``(k, j, i)`` lies in working voxel ``(k // f_k, j // f_j, i // f_i)``.
"""

from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np

COARSE_MM = 2.0  # working voxel size aimed at for large structures (mm); coarser images are used as they are
FINE_MM = 1.0  # ... and for small or thin structures
TILE = 16  # working voxels per tile edge; the unit in which the cache is filled
MAX_CACHE_BYTES = 256 * 2**20  # above this the grid gets coarser factors instead


def choose_factors(shape: Sequence[int], spacing_kji: Sequence[float],
                   target_mm: float = COARSE_MM) -> Tuple[int, int, int]:
    """Integer block factors per axis that bring ``spacing_kji`` (mm) close to ``target_mm``."""
    factors = [max(1, int(round(target_mm / max(float(s), 1e-6)))) for s in spacing_kji]
    # Bound the cache: float32 working grid of at most MAX_CACHE_BYTES.
    while 4 * math.prod(-(-n // f) for n, f in zip(shape, factors)) > MAX_CACHE_BYTES:
        factors = [f * 2 for f in factors]
    return tuple(factors)


class WorkingGrid:
    """Block-averaged float32 image over the whole grid, filled on demand tile by tile."""

    def __init__(self, image: np.ndarray, spacing_kji: Sequence[float], target_mm: float = COARSE_MM):
        self.image = image
        self.target_mm = target_mm
        self.factors = choose_factors(image.shape, spacing_kji, target_mm)
        self.spacing = tuple(float(s) * f for s, f in zip(spacing_kji, self.factors))
        self.shape = tuple(-(-n // f) for n, f in zip(image.shape, self.factors))
        self.data = np.zeros(self.shape, dtype=np.float32)
        self.filled = np.zeros(tuple(-(-n // TILE) for n in self.shape), dtype=bool)

    def crop(self, lo: Sequence[int], hi: Sequence[int]) -> np.ndarray:
        """Working-grid values in ``[lo, hi)`` (working voxels), filling missing tiles first."""
        t_lo = [a // TILE for a in lo]
        t_hi = [-(-b // TILE) for b in hi]
        sub = self.filled[t_lo[0]:t_hi[0], t_lo[1]:t_hi[1], t_lo[2]:t_hi[2]]
        if not sub.all():
            # Fill the bounding box of the missing tiles in one vectorised pass.
            miss = np.argwhere(~sub)
            m_lo = [t + int(v) for t, v in zip(t_lo, miss.min(0))]
            m_hi = [t + int(v) + 1 for t, v in zip(t_lo, miss.max(0))]
            self._fill([a * TILE for a in m_lo], [min(b * TILE, n) for b, n in zip(m_hi, self.shape)])
            self.filled[m_lo[0]:m_hi[0], m_lo[1]:m_hi[1], m_lo[2]:m_hi[2]] = True
        return self.data[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]

    def _fill(self, lo: Sequence[int], hi: Sequence[int]) -> None:
        f = self.factors
        src = self.image[tuple(slice(a * s, min(b * s, n)) for a, b, s, n in zip(lo, hi, f, self.image.shape))]
        pad = [(0, (b - a) * s - n) for a, b, s, n in zip(lo, hi, f, src.shape)]
        if any(p[1] for p in pad):
            src = np.pad(src, pad, mode="edge")  # last partial block: repeat the edge voxels
        if f == (1, 1, 1):
            block = src.astype(np.float32)
        else:
            sh = [b - a for a, b in zip(lo, hi)]
            block = src.reshape(sh[0], f[0], sh[1], f[1], sh[2], f[2]).mean(
                axis=(1, 3, 5), dtype=np.float32
            )
        self.data[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = block

    def to_image_bbox(self, lo: Sequence[int], hi: Sequence[int]):
        """Image-voxel bbox ``(start, stop)`` covered by working voxels ``[lo, hi)``, clipped."""
        start = tuple(a * f for a, f in zip(lo, self.factors))
        stop = tuple(min(b * f, n) for b, f, n in zip(hi, self.factors, self.image.shape))
        return start, stop

    def downsample_mask(self, mask: np.ndarray, lo: Sequence[int], hi: Sequence[int]) -> np.ndarray:
        """Working-grid mask over ``[lo, hi)`` from the image-resolution ``mask`` of that region.

        ``mask`` has the shape of ``to_image_bbox(lo, hi)``; a working voxel is set when at
        least half of its block is.
        """
        if self.factors == (1, 1, 1):
            return mask.astype(bool, copy=True)
        sh = [b - a for a, b in zip(lo, hi)]
        f = self.factors
        pad = [(0, n * s - m) for n, s, m in zip(sh, f, mask.shape)]
        full = np.pad(mask, pad, mode="edge") if any(p[1] for p in pad) else mask
        fraction = full.reshape(sh[0], f[0], sh[1], f[1], sh[2], f[2]).mean(axis=(1, 3, 5), dtype=np.float32)
        return fraction >= 0.5

    def upsample(self, mask: np.ndarray, lo: Sequence[int], hi: Sequence[int]) -> np.ndarray:
        """Nearest-neighbour copy of a working-grid mask over ``[lo, hi)`` at image resolution."""
        out = mask
        for axis, f in enumerate(self.factors):
            if f > 1:
                out = np.repeat(out, f, axis=axis)
        start, stop = self.to_image_bbox(lo, hi)
        return out[tuple(slice(0, b - a) for a, b in zip(start, stop))]
