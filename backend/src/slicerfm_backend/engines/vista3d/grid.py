"""VISTA3D's working grid: the image at 1.5 mm with its axes permuted and flipped to the
nearest RAS order, the bundle's foreground crop and intensity scaling, and the way back.

Coordinate systems
    * image: numpy ``(k, j, i)`` array, ``ijk_to_ras`` maps homogeneous ``(i, j, k, 1)`` to
      RAS mm.
    * working grid: MONAI order ``(x, y, z)``; working axis ``x`` is the image axis closest to
      R (increasing towards R), ``y`` to A, ``z`` to S. Each working axis is one image axis,
      resampled to 1.5 mm steps (a permutation, flips and scales: oblique images stay oblique,
      as with MONAI's ``Spacingd`` + ``Orientationd(RAS)`` in the bundle). ``work_to_ras`` maps
      homogeneous ``(x, y, z, 1)`` to RAS mm.

Because every working axis is one image axis, resampling is separable (linear, plane by
plane, so memory stays at the size of the working volume) and the way back is separable too
(nearest working voxel per image index): the working crop maps to an axis-aligned box of the
image, which is what :func:`to_image_grid` reports as computed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

SPACING_MM = 1.5
A_MIN, A_MAX = -963.8247715525971, 1053.678477684517  # bundle ScaleIntensityRanged (HU)
FOREGROUND_MARGIN = 10  # bundle CropForegroundd margin, working voxels


@dataclass
class WorkingGrid:
    """Mapping between an image and its 1.5 mm RAS-ordered working grid.

    ``axes[w]`` is the image axis (0 = i, 1 = j, 2 = k) of working axis ``w`` (x, y, z);
    working index ``n`` along ``w`` is the continuous image index ``start[w] + step[w] * n``
    along that image axis (``step`` is negative for a flipped axis). ``shape`` is the working
    shape ``(X, Y, Z)``; ``image_shape_kji`` the image's numpy shape.
    """

    axes: Tuple[int, int, int]
    start: Tuple[float, float, float]
    step: Tuple[float, float, float]
    shape: Tuple[int, int, int]
    image_shape_kji: Tuple[int, int, int]
    ijk_to_ras: np.ndarray

    @classmethod
    def for_image(cls, shape_kji, ijk_to_ras, spacing_mm: float = SPACING_MM) -> "WorkingGrid":
        matrix = np.asarray(ijk_to_ras, dtype=np.float64)
        columns = matrix[:3, :3]
        spacing = np.linalg.norm(columns, axis=0)  # mm along i, j, k
        direction = columns / spacing
        best = max(itertools.permutations(range(3)),
                   key=lambda perm: sum(abs(direction[ras, perm[ras]]) for ras in range(3)))
        size_ijk = tuple(int(n) for n in reversed(shape_kji))
        start, step, shape = [], [], []
        for ras, axis in enumerate(best):
            sign = 1.0 if direction[ras, axis] >= 0 else -1.0
            index_step = spacing_mm / spacing[axis]
            count = max(1, int(round(size_ijk[axis] * spacing[axis] / spacing_mm)))
            first = -0.5 + index_step / 2 if sign > 0 else size_ijk[axis] - 0.5 - index_step / 2
            start.append(first)
            step.append(sign * index_step)
            shape.append(count)
        return cls(tuple(best), tuple(start), tuple(step), tuple(shape),
                   tuple(int(n) for n in shape_kji), matrix)

    @property
    def work_to_ijk(self) -> np.ndarray:
        """4x4: homogeneous working ``(x, y, z, 1)`` to continuous image ``(i, j, k, 1)``."""
        out = np.zeros((4, 4))
        for w, axis in enumerate(self.axes):
            out[axis, w] = self.step[w]
            out[axis, 3] = self.start[w]
        out[3, 3] = 1.0
        return out

    @property
    def work_to_ras(self) -> np.ndarray:
        """4x4: homogeneous working ``(x, y, z, 1)`` to RAS mm."""
        return self.ijk_to_ras @ self.work_to_ijk

    def positions(self, w: int) -> np.ndarray:
        """Continuous image indices sampled along working axis ``w``."""
        return self.start[w] + self.step[w] * np.arange(self.shape[w])

    def to_working(self, points_kji: np.ndarray) -> np.ndarray:
        """Image voxel coordinates ``(N, 3)`` (k, j, i) to working coordinates ``(N, 3)`` (x, y, z)."""
        pts = np.asarray(points_kji, dtype=np.float64).reshape(-1, 3)
        ijk = pts[:, ::-1]
        return np.stack([(ijk[:, axis] - self.start[w]) / self.step[w]
                         for w, axis in enumerate(self.axes)], axis=1)

    def working_index(self, w: int) -> np.ndarray:
        """For each image index along the image axis of working axis ``w``: the nearest
        working index (may lie outside ``0..shape[w]-1`` at the borders)."""
        size = self.image_shape_kji[2 - self.axes[w]]
        return np.rint((np.arange(size) - self.start[w]) / self.step[w]).astype(np.int64)


def _interp_axis(array: np.ndarray, axis: int, positions: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``array`` along ``axis`` at continuous ``positions`` (clamped
    to the first/last sample); float32."""
    n = array.shape[axis]
    pos = np.clip(positions, 0, n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    frac = (pos - lo).astype(np.float32)
    shape = [1] * array.ndim
    shape[axis] = -1
    a = np.take(array, lo, axis=axis).astype(np.float32)
    b = np.take(array, hi, axis=axis).astype(np.float32)
    return a + (b - a) * frac.reshape(shape)


def resample(array_kji: np.ndarray, grid: WorkingGrid) -> np.ndarray:
    """The image on the working grid, float32 ``(X, Y, Z)``; linear, plane by plane along k
    so that only one working plane per step is held besides the result."""
    wk = grid.axes.index(2)  # the working axis that runs along image k
    wj = grid.axes.index(1)
    wi = grid.axes.index(0)
    pk, pj, pi = grid.positions(wk), grid.positions(wj), grid.positions(wi)
    out_kji = np.empty((len(pk), len(pj), len(pi)), np.float32)
    nk = array_kji.shape[0]
    for index, p in enumerate(pk):
        p = min(max(p, 0.0), nk - 1)
        lo = int(np.floor(p))
        hi = min(lo + 1, nk - 1)
        frac = np.float32(p - lo)
        plane = array_kji[lo].astype(np.float32)
        if frac > 0 and hi != lo:
            plane += (array_kji[hi].astype(np.float32) - plane) * frac
        plane = _interp_axis(plane, 0, pj)
        out_kji[index] = _interp_axis(plane, 1, pi)
    # (k, j, i)-ordered working samples -> (x, y, z)
    order = {2: 0, 1: 1, 0: 2}  # image axis -> axis of out_kji
    return np.ascontiguousarray(np.transpose(out_kji, [order[a] for a in grid.axes]))


def foreground_box(working: np.ndarray, margin: int = FOREGROUND_MARGIN
                   ) -> Optional[Tuple[Tuple[int, int, int], Tuple[int, int, int]]]:
    """The bundle's foreground crop: box of working voxels > 0 (raw HU) grown by ``margin``
    voxels, clipped; ``((x0, y0, z0), (x1, y1, z1))`` stop-exclusive, or None when no voxel
    is above 0."""
    start, stop = [], []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hits = np.flatnonzero((working > 0).any(axis=other))
        if hits.size == 0:
            return None
        start.append(max(0, int(hits[0]) - margin))
        stop.append(min(working.shape[axis], int(hits[-1]) + 1 + margin))
    return tuple(start), tuple(stop)


def scale_intensity(working: np.ndarray) -> np.ndarray:
    """Bundle intensity scaling: HU ``[A_MIN, A_MAX]`` to ``[0, 1]``, clipped; in place, float32."""
    working -= np.float32(A_MIN)
    working *= np.float32(1.0 / (A_MAX - A_MIN))
    np.clip(working, 0.0, 1.0, out=working)
    return working


def to_image_grid(labels_xyz: np.ndarray, grid: WorkingGrid, box_xyz) -> Tuple[np.ndarray, Optional[List[List[int]]]]:
    """Paste working labels of the crop ``box_xyz`` back onto the image grid (nearest).

    Returns ``(labels_kji, computed_bbox_kji)``: the label map with the image's shape and the
    labels' dtype (0 outside the crop), and the image box ``[[k0, j0, i0], [k1, j1, i1]]``
    (stop-exclusive) whose voxels were computed (None when none was).
    """
    (x0, y0, z0), (x1, y1, z1) = box_xyz
    lo, hi = (x0, y0, z0), (x1, y1, z1)
    index_kji: List[np.ndarray] = [None, None, None]  # type: ignore[list-item]
    inside_kji: List[np.ndarray] = [None, None, None]  # type: ignore[list-item]
    for w, axis in enumerate(grid.axes):
        idx = grid.working_index(w)
        inside = (idx >= lo[w]) & (idx < hi[w])
        index_kji[2 - axis] = np.clip(idx - lo[w], 0, hi[w] - lo[w] - 1)
        inside_kji[2 - axis] = inside
    out = np.zeros(grid.image_shape_kji, labels_xyz.dtype)
    if not all(m.any() for m in inside_kji):
        return out, None
    bbox = [[int(np.flatnonzero(m)[0]) for m in inside_kji],
            [int(np.flatnonzero(m)[-1]) + 1 for m in inside_kji]]
    # labels in (k, j, i) axis order: working axis of image axis a is grid.axes.index(a)
    order = [grid.axes.index(2), grid.axes.index(1), grid.axes.index(0)]
    labels_kji = np.transpose(labels_xyz, order)
    for k in range(bbox[0][0], bbox[1][0]):
        plane = labels_kji[index_kji[0][k]]
        rows = plane[index_kji[1][bbox[0][1]:bbox[1][1]]]
        out[k, bbox[0][1]:bbox[1][1], bbox[0][2]:bbox[1][2]] = rows[:, index_kji[2][bbox[0][2]:bbox[1][2]]]
    return out, bbox
