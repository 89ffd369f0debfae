"""SAM-Med3D's low-resolution logits -> masks, computed where the logits are (CPU or GPU).

The decoder's logits ``(32, 32, 32)`` (crop order a, b, c) stand for a 128³ mask: trilinear
upsampling (``align_corners=False``) and ``logit > 0`` (``sigmoid > 0.5``). That mask is
never built in full on the way to the image grid:

* :func:`border_faces` -- the faces of the 128³ mask the prediction touches. Upsampling
  clamps at the borders, so face 0 of the 128³ volume along an axis is the 2-D upsampling of
  logits plane 0 (and face 127 of plane 31): six 128² planes instead of 128³ voxels.
* :func:`paste` -- crops whose axes follow the image's axes (flips and permutations, any
  spacing) are pasted through per-axis index tables: for each image axis, the crop index of
  every image voxel in the footprint; trilinear upsampling is separable, so the values at
  those indices are three small matrix products with 1-D interpolation weights, computed
  on the distinct indices only and then repeated. The nearest-centre rule between
  overlapping crops runs on the same device; only the pasted box comes back to the CPU.
  Oblique crops take the full 128³ upsampling and :func:`.pipeline.paste`'s general path.
* :func:`upsample` -- the full 128³ mask (a CPU array), for the extension seed and the
  oblique path.

Logits may be numpy arrays (stand-in networks) or torch tensors on any device; work
happens on the logits' device. Masks returned are numpy (k, j, i) booleans on the CPU.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..base import BBox, ImageData
from .pipeline import CROP, _axis_map, footprint, ijk_to_ras

LOWRES = 32


def as_tensor(logits):
    """``logits`` as a float32 torch tensor (a numpy array is wrapped, on the CPU)."""
    import torch

    if isinstance(logits, torch.Tensor):
        return logits.float()
    return torch.from_numpy(np.ascontiguousarray(logits, np.float32))


def weights(indices: np.ndarray, device) -> "torch.Tensor":  # noqa: F821 - torch imported lazily
    """``(len(indices), 32)`` float32: row ``r`` holds the linear interpolation weights of
    128-voxel index ``indices[r]`` over the 32 low-resolution samples (align_corners=False:
    source = (u + 0.5) / 4 - 0.5, clamped at 0; the upper neighbour clamped at 31)."""
    import torch

    source = np.maximum((np.asarray(indices, np.float64) + 0.5) * (LOWRES / CROP) - 0.5, 0.0)
    low = np.floor(source).astype(np.int64)
    high = np.minimum(low + 1, LOWRES - 1)
    fraction = source - low
    out = np.zeros((len(indices), LOWRES), np.float32)
    rows = np.arange(len(indices))
    np.add.at(out, (rows, low), 1.0 - fraction)
    np.add.at(out, (rows, high), fraction)
    return torch.from_numpy(out).to(device)


def upsample_at(logits, tables: Sequence[np.ndarray]) -> "torch.Tensor":  # noqa: F821
    """Boolean tensor ``(len(t0), len(t1), len(t2))``: the upsampled mask at the 128-voxel
    indices ``tables[d]`` along logits axis ``d``, on the logits' device."""
    import torch

    values = as_tensor(logits)
    device = values.device
    distinct, inverse = zip(*(np.unique(t, return_inverse=True) for t in tables))
    w0, w1, w2 = (weights(d, device) for d in distinct)
    out = torch.tensordot(w0, values, dims=([1], [0]))              # (u0, 32, 32)
    out = torch.einsum("jy,kyz->kjz", w1, out)                      # (u0, u1, 32)
    out = torch.matmul(out, w2.T) > 0                                # (u0, u1, u2)
    for axis, index in enumerate(inverse):
        if len(index) != out.shape[axis] or not np.array_equal(index, np.arange(len(index))):
            out = out.index_select(axis, torch.from_numpy(np.asarray(index, np.int64)).to(device))
    return out


def upsample(logits) -> np.ndarray:
    """The whole 128³ boolean mask (crop order a, b, c) on the CPU."""
    import torch
    import torch.nn.functional as F

    x = as_tensor(logits)[None, None]
    return (F.interpolate(x, size=(CROP,) * 3, mode="trilinear", align_corners=False) > 0)[0, 0].cpu().numpy()


def border_faces(logits, min_voxels: int = 1) -> List[Tuple[int, int]]:
    """Faces ``(axis, direction)`` (direction -1 low, +1 high) of the upsampled 128³ mask
    holding at least ``min_voxels`` foreground voxels, from the six boundary planes."""
    import torch
    import torch.nn.functional as F

    values = as_tensor(logits)
    planes = torch.stack([values.select(axis, index) for axis in range(3) for index in (0, LOWRES - 1)])
    faces = F.interpolate(planes[:, None], size=(CROP, CROP), mode="bilinear", align_corners=False) > 0
    counts = faces.flatten(1).sum(dim=1).cpu().tolist()
    return [(axis, direction) for n, (axis, direction) in enumerate((a, d) for a in range(3) for d in (-1, 1))
            if counts[n] >= min_voxels]


def paste(image: ImageData, crops: Sequence, logits: Sequence) -> Optional[Tuple[BBox, np.ndarray, np.ndarray]]:
    """Crop masks (given as logits) resampled by nearest neighbour onto the image grid;
    the same contract as :func:`.pipeline.paste`: ``(bbox, mask, covered)`` over the union of
    the crops' footprints, where overlapping crops leave each voxel to the crop whose centre
    is nearest (Chebyshev distance in crop voxels); None when no crop meets the image."""
    from . import pipeline

    boxes = [footprint(image, c) for c in crops]
    present = [b for b in boxes if b is not None]
    if not present:
        return None
    m = ijk_to_ras(image)
    if not all(_axis_map(crop, m) is not None for crop in crops):
        return pipeline.paste(image, crops, [upsample(value) for value in logits])
    lo = np.min([b[0] for b in present], axis=0)
    hi = np.max([b[1] for b in present], axis=0)
    mask, covered = _paste_tables(crops, logits, boxes, m, lo, hi)
    return (tuple(int(v) for v in lo), tuple(int(v) for v in hi)), mask, covered


def _paste_tables(crops, logits, boxes, m, lo, hi):
    """The separable paste on the logits' device; ``(mask, covered)`` numpy arrays."""
    import torch

    device = as_tensor(logits[0]).device
    shape = tuple(int(v) for v in hi - lo)
    mask = torch.zeros(shape, dtype=torch.bool, device=device)
    covered = torch.zeros(shape, dtype=torch.bool, device=device)
    best = torch.full(shape, float("inf"), dtype=torch.float32, device=device)
    for crop, values, box in zip(crops, logits, boxes):
        if box is None:
            continue
        a, b = _axis_map(crop, m)
        region = tuple(slice(int(box[0][q] - lo[q]), int(box[1][q] - lo[q])) for q in range(3))
        axes, tables, inside, score = [], [], [], []
        for q in range(3):  # numpy axis q of the image is ijk axis 2 - q
            p = 2 - q
            n = int(np.argmax(np.abs(a[:, p])))  # the crop axis that follows it
            index = np.floor(a[n, p] * np.arange(box[0][q], box[1][q]) + b[n] + 0.5).astype(int)
            axes.append(n)
            tables.append(np.clip(index, 0, CROP - 1))
            inside.append(torch.from_numpy((index >= 0) & (index < CROP)).to(device))
            score.append(torch.from_numpy(np.abs(index - (CROP - 1) / 2).astype(np.float32)).to(device))
        grid_inside = inside[0][:, None, None] & inside[1][None, :, None] & inside[2][None, None, :]
        grid_score = torch.maximum(torch.maximum(score[0][:, None, None], score[1][None, :, None]),
                                   score[2][None, None, :])
        here = best[region]
        take = grid_inside & (grid_score < here)
        crop_mask = upsample_at(as_tensor(values).to(device).permute(*axes), tables)
        mask[region] = torch.where(take, crop_mask, mask[region])
        covered[region] |= take
        here.copy_(torch.where(take, grid_score, here))
    return mask.cpu().numpy(), covered.cpu().numpy()
