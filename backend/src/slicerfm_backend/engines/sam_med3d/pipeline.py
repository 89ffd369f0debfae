"""SAM-Med3D geometry: the 128³ crop at 1.5 mm in RAS orientation, and the way back.

A :class:`Crop` is a grid of ``CROP`` voxels per side, ``SPACING_MM`` apart, whose tensor
axes ``(a, b, c)`` point to Right, Anterior and Superior (the "canonical RAS" orientation
SAM-Med3D was trained in). Crop voxel ``(a, b, c)`` has its centre at RAS
``origin_ras + SPACING_MM * (a, b, c)``. A crop made for a point puts that point at crop
voxel ``(HALF, HALF, HALF)`` = (64, 64, 64).

The official pipeline resamples the whole image to 1.5 mm, reorients it to RAS, then crops
or pads to 128³ (pad 0). We resample the crop directly from the original image with linear
interpolation and 0 outside it, which gives the same values on the crop without resampling
the whole volume. For an oblique image the crop grid is aligned with the RAS axes (not with
the image's own, rotated axes).

Arrays of the original image are numpy ``(k, j, i)``; ``ijk_to_ras`` maps homogeneous
``(i, j, k, 1)`` to RAS mm. SimpleITK works in LPS: ``lps = diag(-1, -1, 1) @ ras``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from ..base import BBox, ImageData

CROP = 128  # crop voxels per side
HALF = CROP // 2  # crop index of the point a crop is made for
SPACING_MM = 1.5  # crop voxel size (mm)
RAS_TO_LPS = np.array([-1.0, -1.0, 1.0])


@dataclass(frozen=True)
class Crop:
    """A 128³ RAS-aligned crop; ``origin_ras`` is the RAS mm centre of crop voxel (0, 0, 0)."""

    origin_ras: Tuple[float, float, float]

    @staticmethod
    def around(point_ras: Sequence[float]) -> "Crop":
        """The crop with ``point_ras`` at crop voxel (64, 64, 64)."""
        origin = np.asarray(point_ras, float) - HALF * SPACING_MM
        return Crop(tuple(round(float(v), 4) for v in origin))

    def shifted(self, axis: int, voxels: int) -> "Crop":
        """The same crop moved by ``voxels`` crop voxels along crop axis ``axis`` (0=R, 1=A, 2=S)."""
        origin = np.asarray(self.origin_ras, float)
        origin[axis] += voxels * SPACING_MM
        return Crop(tuple(round(float(v), 4) for v in origin))

    def ras_to_index(self, ras: np.ndarray) -> np.ndarray:
        """Continuous crop indices ``(..., 3)`` (a, b, c) of RAS points ``(..., 3)``."""
        return (np.asarray(ras, float) - np.asarray(self.origin_ras)) / SPACING_MM

    def index_to_ras(self, index: np.ndarray) -> np.ndarray:
        """RAS mm ``(..., 3)`` of crop indices ``(..., 3)`` (a, b, c)."""
        return np.asarray(self.origin_ras) + SPACING_MM * np.asarray(index, float)

    def contains(self, ras: Sequence[float], margin: float = 0.0) -> bool:
        """Whether the nearest crop voxel of ``ras`` lies inside the crop, at least
        ``margin`` crop voxels from its faces."""
        index = np.floor(self.ras_to_index(np.asarray(ras, float)) + 0.5)
        return bool(np.all(index >= margin) and np.all(index <= CROP - 1 - margin))


def ijk_to_ras(image: ImageData) -> np.ndarray:
    """The image's 4x4 ``(i, j, k, 1) -> RAS`` matrix as float64."""
    return np.asarray(image.ijk_to_ras, float).reshape(4, 4)


def kji_to_ras(image: ImageData, points_kji: np.ndarray) -> np.ndarray:
    """RAS mm ``(N, 3)`` of numpy-order voxel coordinates ``(N, 3)`` (k, j, i)."""
    m = ijk_to_ras(image)
    ijk = np.asarray(points_kji, float).reshape(-1, 3)[:, ::-1]
    return ijk @ m[:3, :3].T + m[:3, 3]


def to_sitk(image: ImageData) -> sitk.Image:
    """The image as a float32 SimpleITK image with its LPS geometry (index x, y, z = i, j, k)."""
    m = ijk_to_ras(image)
    out = sitk.GetImageFromArray(np.asarray(image.array, np.float32))
    columns = m[:3, :3]
    spacing = np.linalg.norm(columns, axis=0)
    direction = (RAS_TO_LPS[:, None] * columns) / spacing
    out.SetSpacing([float(s) for s in spacing])
    out.SetDirection([float(v) for v in direction.ravel()])
    out.SetOrigin([float(v) for v in RAS_TO_LPS * m[:3, 3]])
    return out


def extract(source: sitk.Image, crop: Crop) -> np.ndarray:
    """The crop's image values, float32 ``(128, 128, 128)`` in crop order (a, b, c) = (R, A, S).

    Linear interpolation of ``source`` (see :func:`to_sitk`); 0 outside the image.
    """
    out = sitk.Resample(
        source, [CROP] * 3, sitk.Transform(), sitk.sitkLinear,
        [float(v) for v in RAS_TO_LPS * np.asarray(crop.origin_ras)], [SPACING_MM] * 3,
        [-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0], 0.0, sitk.sitkFloat32,
    )
    return np.ascontiguousarray(sitk.GetArrayFromImage(out).transpose(2, 1, 0))


def znormalise(values: np.ndarray) -> np.ndarray:
    """``(x - mean) / std`` with mean and std of the voxels > 0 (all voxels when none is),
    applied to every voxel (no intensity windowing); float32, same shape."""
    foreground = values[values > 0]
    sample = foreground if foreground.size else values
    mean, std = float(sample.mean()), float(sample.std())
    return ((values - mean) / (std if std > 0 else 1.0)).astype(np.float32)


def footprint(image: ImageData, crop: Crop) -> Optional[BBox]:
    """Bounding box (numpy k, j, i) of the image voxels whose nearest crop voxel is in the
    crop, clipped to the image; None when the crop misses the image."""
    corners = np.array([[a, b, c] for a in (-0.5, CROP - 0.5) for b in (-0.5, CROP - 0.5)
                        for c in (-0.5, CROP - 0.5)])
    ras = crop.index_to_ras(corners)
    m = ijk_to_ras(image)
    ijk = (ras - m[:3, 3]) @ np.linalg.inv(m[:3, :3]).T
    kji = ijk[:, ::-1]
    shape = np.array(image.array.shape)
    lo = np.maximum(np.floor(kji.min(axis=0)).astype(int), 0)
    hi = np.minimum(np.ceil(kji.max(axis=0)).astype(int) + 1, shape)
    if np.any(hi <= lo):
        return None
    return tuple(int(v) for v in lo), tuple(int(v) for v in hi)


def paste(image: ImageData, crops: Sequence[Crop],
          masks: Sequence[np.ndarray]) -> Optional[Tuple[BBox, np.ndarray, np.ndarray]]:
    """Nearest-neighbour resampling of crop masks onto the original image grid.

    ``masks[n]`` is boolean ``(128, 128, 128)`` in crop order (a, b, c) of ``crops[n]``.
    Where crops overlap, each image voxel takes the value of the crop whose centre is
    nearest (Chebyshev distance in crop voxels). Returns ``(bbox, mask, covered)``: the
    union of the crops' footprints, and two boolean arrays of its shape (k, j, i) -- the
    pasted mask and which voxels any crop covers; None when no crop meets the image.
    """
    boxes = [footprint(image, c) for c in crops]
    present = [b for b in boxes if b is not None]
    if not present:
        return None
    lo = np.min([b[0] for b in present], axis=0)
    hi = np.max([b[1] for b in present], axis=0)
    shape = tuple(int(v) for v in hi - lo)
    mask = np.zeros(shape, bool)
    covered = np.zeros(shape, bool)
    m = ijk_to_ras(image)
    if all(_axis_map(crop, m) is not None for crop in crops):
        _paste_separable(crops, masks, boxes, m, lo, hi, mask, covered)
        bbox = (tuple(int(v) for v in lo), tuple(int(v) for v in hi))
        return bbox, mask, covered
    m = ijk_to_ras(image)
    j, i = np.meshgrid(np.arange(lo[1], hi[1]), np.arange(lo[2], hi[2]), indexing="ij")
    for z, k in enumerate(range(int(lo[0]), int(hi[0]))):
        ijk = np.stack([i, j, np.full_like(i, k)], axis=-1).astype(float)
        ras = ijk @ m[:3, :3].T + m[:3, 3]
        best = np.full(i.shape, np.inf)
        for crop, crop_mask, box in zip(crops, masks, boxes):
            if box is None or not box[0][0] <= k < box[1][0]:
                continue
            index = np.floor(crop.ras_to_index(ras) + 0.5).astype(int)
            inside = np.all((index >= 0) & (index < CROP), axis=-1)
            score = np.max(np.abs(index - (CROP - 1) / 2), axis=-1)
            take = inside & (score < best)
            a, b, c = (index[..., n][take] for n in range(3))
            mask[z][take] = crop_mask[a, b, c]
            covered[z] |= take
            best[take] = score[take]
    bbox = (tuple(int(v) for v in lo), tuple(int(v) for v in hi))
    return bbox, mask, covered


def _axis_map(crop: Crop, m: np.ndarray):
    """``(A, b)`` with crop index = ``A @ ijk + b`` when every crop axis follows exactly one
    image axis (no rotation other than flips/permutations); None otherwise (oblique)."""
    a = m[:3, :3] / SPACING_MM
    if np.count_nonzero(np.abs(a) > 1e-9 * np.abs(a).max()) != 3 or \
            not np.all(np.count_nonzero(np.abs(a) > 1e-9 * np.abs(a).max(), axis=1) == 1):
        return None
    return a, (m[:3, 3] - np.asarray(crop.origin_ras)) / SPACING_MM


def separable_tables(crop: Crop, m: np.ndarray, box, lo):
    """Per image axis (numpy order k, j, i), for a crop whose axes follow the image's:
    ``(region, axes, index, inside, score)`` -- the slices of the pasted region the crop's
    ``box`` covers (relative to ``lo``), the crop axis that follows each image axis, the
    crop index nearest each image voxel (clipped to the crop), whether it lies inside the
    crop, and its distance from the crop's centre (float32, the nearest-centre rule)."""
    a, b = _axis_map(crop, m)
    region = tuple(slice(int(box[0][q] - lo[q]), int(box[1][q] - lo[q])) for q in range(3))
    axes, index, inside, score = [], [], [], []
    for q in range(3):  # numpy axis q of the image is ijk axis 2 - q
        p = 2 - q
        n = int(np.argmax(np.abs(a[:, p])))  # the crop axis that follows it
        idx = np.floor(a[n, p] * np.arange(box[0][q], box[1][q]) + b[n] + 0.5).astype(int)
        axes.append(n)
        index.append(np.clip(idx, 0, CROP - 1))
        inside.append((idx >= 0) & (idx < CROP))
        score.append(np.abs(idx - (CROP - 1) / 2).astype(np.float32))
    return region, axes, index, inside, score


def _paste_separable(crops, masks, boxes, m, lo, hi, mask, covered) -> None:
    """:func:`paste` for crops whose axes follow the image's axes: per image axis, a 1-D
    table of crop indices; the same nearest-voxel and nearest-centre rules, in place. Each
    crop only touches its own footprint inside the pasted region."""
    best = np.full(mask.shape, np.inf, dtype=np.float32)
    for crop, crop_mask, box in zip(crops, masks, boxes):
        if box is None:
            continue
        region, axes, index, inside, score = separable_tables(crop, m, box, lo)
        grid_inside = inside[0][:, None, None] & inside[1][None, :, None] & inside[2][None, None, :]
        grid_score = np.maximum(np.maximum(score[0][:, None, None], score[1][None, :, None]),
                                score[2][None, None, :])
        here = best[region]
        take = grid_inside & (grid_score < here)
        values = np.transpose(crop_mask, axes)[np.ix_(*index)]
        mask[region][take] = values[take]
        covered[region] |= take
        np.copyto(here, grid_score, where=take)


def box_region(image: ImageData, boxes_kji: Iterable[Tuple[Sequence[float], Sequence[float]]],
               bbox: BBox) -> np.ndarray:
    """Boolean array of ``bbox``'s shape (k, j, i): voxels inside any of the boxes
    (two opposite inclusive corners each, numpy voxel coordinates)."""
    out = np.zeros(tuple(b - a for a, b in zip(*bbox)), bool)
    for a, b in boxes_kji:
        lo = np.rint(np.minimum(a, b)).astype(int) - np.array(bbox[0])
        hi = np.rint(np.maximum(a, b)).astype(int) + 1 - np.array(bbox[0])
        lo, hi = np.maximum(lo, 0), np.maximum(hi, 0)
        out[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = True
    return out
