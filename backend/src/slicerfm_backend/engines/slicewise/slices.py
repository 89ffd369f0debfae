"""Slices of a volume along one voxel axis: extraction, pixel spacing, plane names, and the
way back from a slice mask to a 3-D box.

A volume is a numpy array ``(K, J, I)``. A slice on ``axis`` (0 = k, 1 = j, 2 = i) at
``index`` is the 2-D array of the two other axes, in their order: rows then columns, i.e.
``(J, I)`` on axis 0, ``(K, I)`` on axis 1 and ``(K, J)`` on axis 2. Pixel ``(row, col)``
of a slice is voxel ``(index, row, col)`` on axis 0, ``(row, index, col)`` on axis 1 and
``(row, col, index)`` on axis 2. Slices are the image's own voxel slices: on an oblique image
they are oblique in RAS, which is what a slice view aligned with the volume shows.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from ..base import BBox

AXIS_NAMES = ("k", "j", "i")


def plane_axes(axis: int) -> Tuple[int, int]:
    """The (row, column) voxel axes of a slice on ``axis``."""
    rows, cols = (a for a in range(3) if a != axis)
    return rows, cols


def slice_of(array: np.ndarray, axis: int, index: int) -> np.ndarray:
    """The 2-D slice ``(rows, cols)`` of ``array`` (K, J, I) on ``axis`` at ``index`` (a view)."""
    return np.take(array, int(index), axis=int(axis))


def pixel_spacing(spacing_kji: Sequence[float], axis: int) -> Tuple[float, float]:
    """``(row mm, column mm)`` of a slice on ``axis`` from the voxel size along (k, j, i)."""
    rows, cols = plane_axes(axis)
    return float(spacing_kji[rows]), float(spacing_kji[cols])


def to_pixel(point_kji: Sequence[float], axis: int) -> Tuple[int, float, float]:
    """``(slice index, row, col)`` of a voxel coordinate ``(k, j, i)``: the slice is the
    nearest one on ``axis``; row and column keep their fractions."""
    rows, cols = plane_axes(axis)
    return int(np.floor(float(point_kji[axis]) + 0.5)), float(point_kji[rows]), float(point_kji[cols])


def plane_name(ijk_to_ras: np.ndarray, axis: int) -> str:
    """"axial", "coronal" or "sagittal": the anatomical plane nearest to slices on ``axis``
    (its normal is the image's ``axis`` direction; the largest RAS component decides)."""
    column = 2 - int(axis)  # ijk_to_ras columns are (i, j, k)
    normal = np.abs(np.asarray(ijk_to_ras, float).reshape(4, 4)[:3, column])
    return ("sagittal", "coronal", "axial")[int(np.argmax(normal))]


def mask_box(mask: np.ndarray) -> Optional[Tuple[int, int, int, int]]:
    """``(row0, col0, row1, col1)`` inclusive pixel bounds of a 2-D boolean mask; None when empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]), int(cols[-1])


def slab_bbox(axis: int, first: int, last: int, rows: Tuple[int, int], cols: Tuple[int, int]) -> BBox:
    """The 3-D box (numpy k, j, i; stop exclusive) of slices ``first..last`` (inclusive) on
    ``axis``, limited to pixel rows ``rows`` and columns ``cols`` (start, stop exclusive)."""
    r, c = plane_axes(axis)
    start, stop = [0, 0, 0], [0, 0, 0]
    start[axis], stop[axis] = int(first), int(last) + 1
    start[r], stop[r] = int(rows[0]), int(rows[1])
    start[c], stop[c] = int(cols[0]), int(cols[1])
    return tuple(start), tuple(stop)


def stack(slices: Sequence[np.ndarray], axis: int) -> np.ndarray:
    """2-D slices (consecutive indices, in order) as the 3-D array of their slab on ``axis``."""
    return np.stack(list(slices), axis=int(axis))
