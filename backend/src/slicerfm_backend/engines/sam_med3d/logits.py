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
  those indices come from two taps per index along each axis in turn (weights multiples of
  1/8), computed on the distinct indices only, thresholded, then repeated. The nearest-centre
  rule between overlapping crops runs on the same device; only the pasted box comes back.
  Oblique crops take the full 128³ upsampling and :func:`.pipeline.paste`'s general path.
* :func:`upsample` -- the full 128³ mask (a CPU array), for the extension seed and the
  oblique path.

Logits may be numpy arrays (stand-in networks) or torch tensors on any device; the paste
runs on the logits' accelerator (torch), or with numpy for logits on the CPU (these small
operations cost less in the calling thread than in torch's thread pool on a busy CPU).
Masks returned are numpy (k, j, i) booleans on the CPU.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..base import BBox, ImageData
from .pipeline import CROP, _axis_map, footprint, ijk_to_ras, separable_tables

LOWRES = 32


def as_tensor(logits):
    """``logits`` as a float32 torch tensor (a numpy array is wrapped, on the CPU)."""
    import torch

    if isinstance(logits, torch.Tensor):
        return logits.float()
    return torch.from_numpy(np.ascontiguousarray(logits, np.float32))


class _Ops:
    """The few array operations of the paste, on numpy for logits on the CPU and on torch
    for logits on an accelerator. (On a shared CPU, torch's thread pool costs more than
    these small operations: numpy runs them in the calling thread.)"""

    def __init__(self, logits):
        self.torch = type(logits).__module__.startswith("torch") and logits.device.type != "cpu"
        self.device = logits.device if self.torch else None

    def array(self, values: np.ndarray):
        if not self.torch:
            return values
        import torch

        return torch.from_numpy(np.ascontiguousarray(values)).to(self.device)

    def logits(self, values):
        if self.torch:
            import torch

            return torch.as_tensor(values, dtype=torch.float32, device=self.device)
        return values.numpy() if hasattr(values, "numpy") else np.asarray(values, np.float32)

    def full(self, shape, value, dtype):
        if not self.torch:
            return np.full(shape, value, dtype)
        import torch

        return torch.full(shape, value, dtype=getattr(torch, np.dtype(dtype).name), device=self.device)

    def take(self, values, index: np.ndarray, axis: int):
        if not self.torch:
            return np.take(values, index, axis=axis)
        return values.index_select(axis, self.array(np.asarray(index, np.int64)))

    def transpose(self, values, axes):
        return values.permute(*axes) if self.torch else np.transpose(values, axes)

    def maximum(self, a, b):
        if not self.torch:
            return np.maximum(a, b)
        import torch

        return torch.maximum(a, b)

    def put(self, target, values, where) -> None:
        """``target[where] = values[where]`` in place (``target`` a view of the result)."""
        if not self.torch:
            np.copyto(target, values, where=where)
            return
        import torch

        target.copy_(torch.where(where, values, target))

    def numpy(self, values) -> np.ndarray:
        return values.cpu().numpy() if self.torch else values


def taps(indices: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(low, high, low weight, high weight)`` of the 128-voxel indices ``indices``: each is
    interpolated linearly between two of the 32 low-resolution samples (align_corners=False:
    source = (u + 0.5) / 4 - 0.5, clamped at 0; the upper neighbour clamped at 31). The
    weights are multiples of 1/8, exact in float32."""
    source = np.maximum((np.asarray(indices, np.float64) + 0.5) * (LOWRES / CROP) - 0.5, 0.0)
    low = np.floor(source).astype(np.int64)
    high = np.minimum(low + 1, LOWRES - 1)
    fraction = (source - low).astype(np.float32)
    return low, high, (np.float32(1.0) - fraction), fraction


def _interpolate(values, axis: int, indices: np.ndarray, ops: _Ops):
    """``values`` linearly interpolated along ``axis`` at the 128-voxel ``indices``."""
    low, high, w_low, w_high = taps(indices)
    shape = [1] * values.ndim
    shape[axis] = -1
    w_low, w_high = ops.array(w_low.reshape(shape)), ops.array(w_high.reshape(shape))
    return w_low * ops.take(values, low, axis) + w_high * ops.take(values, high, axis)


def upsample_at(logits, tables: Sequence[np.ndarray], ops: Optional[_Ops] = None):
    """Boolean ``(len(t0), len(t1), len(t2))``: the upsampled mask at the 128-voxel indices
    ``tables[d]`` along logits axis ``d`` -- a numpy array, or a tensor on the logits'
    accelerator. Computed on the distinct indices (two taps per index and axis, the last
    axis first as torch's trilinear kernel nests them), thresholded, then repeated."""
    ops = ops or _Ops(logits)
    out = ops.logits(logits)
    distinct, inverse = zip(*(np.unique(t, return_inverse=True) for t in tables))
    for axis in (2, 1, 0):
        out = _interpolate(out, axis, distinct[axis], ops)
    out = out > 0
    for axis, index in enumerate(inverse):
        index = np.asarray(index).reshape(-1)
        if len(index) != out.shape[axis] or not np.array_equal(index, np.arange(len(index))):
            out = ops.take(out, index, axis)
    return out


def upsample(logits) -> np.ndarray:
    """The whole 128³ boolean mask (crop order a, b, c) on the CPU."""
    import torch.nn.functional as F

    x = as_tensor(logits)[None, None]
    return (F.interpolate(x, size=(CROP,) * 3, mode="trilinear", align_corners=False) > 0)[0, 0].cpu().numpy()


def border_faces(logits, min_voxels: int = 1) -> List[Tuple[int, int]]:
    """Faces ``(axis, direction)`` (direction -1 low, +1 high) of the upsampled 128³ mask
    holding at least ``min_voxels`` foreground voxels, from the six boundary planes."""
    ops = _Ops(logits)
    values = ops.logits(logits)
    every = np.arange(CROP)
    out = []
    for axis in range(3):
        for direction, index in ((-1, 0), (1, LOWRES - 1)):
            plane = ops.take(values, np.array([index]), axis)  # (1, 32, 32) in some order
            for other in (a for a in (2, 1, 0) if a != axis):
                plane = _interpolate(plane, other, every, ops)
            if int((plane > 0).sum()) >= min_voxels:
                out.append((axis, direction))
    return out


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
    """The separable paste where the logits are; ``(mask, covered)`` numpy arrays."""
    ops = _Ops(logits[0])
    shape = tuple(int(v) for v in hi - lo)
    mask = ops.full(shape, False, bool)
    covered = ops.full(shape, False, bool)
    best = ops.full(shape, np.inf, np.float32)
    for crop, values, box in zip(crops, logits, boxes):
        if box is None:
            continue
        region, axes, tables, inside, score = separable_tables(crop, m, box, lo)
        inside, score = [ops.array(v) for v in inside], [ops.array(v) for v in score]
        grid_inside = inside[0][:, None, None] & inside[1][None, :, None] & inside[2][None, None, :]
        grid_score = ops.maximum(ops.maximum(score[0][:, None, None], score[1][None, :, None]),
                                 score[2][None, None, :])
        here = best[region]
        take = grid_inside & (grid_score < here)
        crop_mask = upsample_at(ops.transpose(ops.logits(values), axes), tables, ops)
        ops.put(mask[region], crop_mask, take)
        covered[region] |= take
        ops.put(here, grid_score, take)
    return ops.numpy(mask), ops.numpy(covered)
