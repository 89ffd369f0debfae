"""Automatic (class-prompt) VISTA3D inference with bounded memory.

The result equals MONAI's ``sliding_window_inference`` (windows of ``roi`` with ``overlap``,
constant blending, zero padding of axes shorter than the window) followed by
``VistaPostTransformd`` (negative logits to 0, arg-max over classes, background where no
class is positive, class index to its id) -- but without ever holding the logits of all
classes for the whole volume:

* windows run in order along the *band axis* (the longest working axis); a band of
  ``roi`` planes accumulates the windows' logits and their count, and every plane that no
  later window touches is finished at once (mean, threshold, arg-max) into a uint8 label
  map, so the accumulator holds ``classes x roi x (the two other axes)`` floats whatever the
  volume's length;
* when that band would exceed ``accumulator_bytes`` the classes are split into groups that
  are run one after the other (each group re-runs the windows: the price of the bound), and
  the groups are merged with a running maximum (float32) and arg-max per voxel;
* window outputs move to the CPU right after each forward (the GPU holds one window).

Arrays are in MONAI working order ``(X, Y, Z)`` (see :mod:`.grid`).
"""

from __future__ import annotations

import contextlib
import itertools
import math
from dataclasses import dataclass
from typing import Callable, ContextManager, List, Optional, Sequence, Tuple

import numpy as np
import torch

ROI = (128, 128, 128)
OVERLAP = 0.25
DEFAULT_ACCUMULATOR_BYTES = 3 << 30


@dataclass
class AutoPlan:
    """Windows and class groups of one run; ``windows`` are start corners ``(x, y, z)`` on the
    padded volume, sorted along ``band_axis``."""

    padded_shape: Tuple[int, int, int]
    pad: Tuple[Tuple[int, int], ...]
    windows: List[Tuple[int, int, int]]
    band_axis: int
    groups: List[List[int]]

    @property
    def total_steps(self) -> int:
        return len(self.windows) * len(self.groups)


def scan_starts(size: int, roi: int, overlap: float) -> List[int]:
    """Window starts along one axis as MONAI's sliding window places them."""
    if roi >= size:
        return [0]
    interval = max(1, int(roi * (1 - overlap)))
    starts, index = [], 0
    while True:
        start = index * interval
        if start + roi >= size:
            starts.append(size - roi)
            break
        starts.append(start)
        index += 1
    return starts


def plan(shape_xyz: Sequence[int], class_ids: Sequence[int], roi: Sequence[int] = ROI,
         overlap: float = OVERLAP, accumulator_bytes: int = DEFAULT_ACCUMULATOR_BYTES) -> AutoPlan:
    """Windows and class groups for a volume of ``shape_xyz`` (after the foreground crop)."""
    pad = []
    padded = []
    for n, r in zip(shape_xyz, roi):
        diff = max(int(r) - int(n), 0)
        pad.append((diff // 2, diff - diff // 2))
        padded.append(int(n) + diff)
    band_axis = int(np.argmax(padded))
    starts = [scan_starts(n, int(r), overlap) for n, r in zip(padded, roi)]
    windows = sorted(itertools.product(*starts), key=lambda s: s[band_axis])
    cross = int(np.prod([padded[a] for a in range(3) if a != band_axis]))
    per_class = 4 * int(roi[band_axis]) * cross  # float32 band of one class
    per_group = max(1, int((accumulator_bytes - 4 * int(roi[band_axis]) * cross) // per_class))
    ids = list(class_ids)
    groups = [ids[i:i + per_group] for i in range(0, len(ids), per_group)]
    return AutoPlan(tuple(padded), tuple(pad), windows, band_axis, groups)


def _finish(acc: np.ndarray, count: np.ndarray, planes: int, ids: Sequence[int],
            labels: np.ndarray, best: Optional[np.ndarray], first_group: bool) -> None:
    """Finish ``planes`` leading planes of the band (axis 1 of ``acc``) into ``labels`` /
    ``best`` (views of the same planes). Divides those planes of ``acc`` in place (they are
    discarded afterwards), so finishing allocates no copy of the band."""
    mean = acc[:, :planes]
    mean /= count[None, :planes]
    # arg-max over classes class by class: numpy's argmax over axis 0 would copy the band
    value = mean[0].copy()
    top = np.zeros(value.shape, np.int64)
    for index in range(1, mean.shape[0]):
        better = mean[index] > value  # strict: ties keep the first class, as argmax does
        value[better] = mean[index][better]
        top[better] = index
    lookup = np.asarray(ids, dtype=labels.dtype)
    if best is None:  # one group: VistaPostTransformd directly
        labels[...] = np.where(value > 0, lookup[top], 0)
        return
    if first_group:
        best[...] = value
        labels[...] = np.where(value > 0, lookup[top], 0)
        return
    better = (value > best) & (value > 0)
    best[better] = value[better]
    labels[better] = lookup[top][better]


def run(volume: np.ndarray, class_ids: Sequence[int],
        forward: Callable[[torch.Tensor, Sequence[int]], torch.Tensor],
        roi: Sequence[int] = ROI, overlap: float = OVERLAP,
        accumulator_bytes: int = DEFAULT_ACCUMULATOR_BYTES,
        progress: Optional[Callable[[int, int], None]] = None,
        step: Callable[[], ContextManager] = contextlib.nullcontext,
        the_plan: Optional[AutoPlan] = None) -> np.ndarray:
    """Labels ``(X, Y, Z)`` (uint8, class ids, 0 = background) of scaled ``volume`` ``(X, Y, Z)``.

    ``forward(window [1, 1, rx, ry, rz], ids) -> logits [len(ids), rx, ry, rz]`` (CPU float32)
    is one network call; it runs inside ``step()`` (e.g. a device scheduler slot).
    ``progress(done, total)`` is called after every window (and may raise to cancel).
    """
    p = the_plan or plan(volume.shape, class_ids, roi, overlap, accumulator_bytes)
    padded = np.pad(volume, p.pad, mode="constant") if any(sum(x) for x in p.pad) else volume
    axis = p.band_axis
    depth = int(roi[axis])
    cross = [padded.shape[a] for a in range(3) if a != axis]
    labels_band_first = np.zeros([padded.shape[axis]] + cross, np.uint8)  # band axis first
    best = np.empty(labels_band_first.shape, np.float32) if len(p.groups) > 1 else None
    done, total = 0, p.total_steps
    for group_index, ids in enumerate(p.groups):
        acc = np.zeros([len(ids), depth] + cross, np.float32)
        count = np.zeros([depth] + cross, np.float32)
        base = 0  # band axis index of acc's first plane
        for start in p.windows:
            s = start[axis]
            if s > base:  # planes before s are complete
                finished = s - base
                sl = slice(base, s)
                _finish(acc, count, finished, ids, labels_band_first[sl],
                        None if best is None else best[sl], group_index == 0)
                for plane in range(depth - finished):  # shift plane by plane: no band copy
                    acc[:, plane] = acc[:, plane + finished]
                    count[plane] = count[plane + finished]
                acc[:, depth - finished:] = 0
                count[depth - finished:] = 0
                base = s
            window = tuple(slice(a, a + int(r)) for a, r in zip(start, roi))
            patch = torch.from_numpy(np.ascontiguousarray(padded[window]))[None, None]
            with step():
                logits = forward(patch, ids)
            out = np.moveaxis(logits.numpy(), axis + 1, 1)  # [C, band, a, b]
            other = [window[a] for a in range(3) if a != axis]
            offset = s - base
            acc[(slice(None), slice(offset, offset + depth), *other)] += out
            count[(slice(offset, offset + depth), *other)] += 1
            del logits, out  # before the next forward: only one window's logits at a time
            done += 1
            if progress is not None:
                progress(done, total)
        remaining = padded.shape[axis] - base
        sl = slice(base, padded.shape[axis])
        _finish(acc, count, remaining, ids, labels_band_first[sl],
                None if best is None else best[sl], group_index == 0)
        del acc, count
    labels = np.moveaxis(labels_band_first, 0, axis)
    crop = tuple(slice(lo, n - hi) for (lo, hi), n in zip(p.pad, labels.shape))
    return np.ascontiguousarray(labels[crop])


def memory_estimate(the_plan: AutoPlan, roi: Sequence[int] = ROI) -> int:
    """Bytes of the accumulators of one group (band of logits and counts), for reports."""
    axis = the_plan.band_axis
    cross = int(np.prod([the_plan.padded_shape[a] for a in range(3) if a != axis]))
    biggest = max(len(g) for g in the_plan.groups)
    return 4 * int(roi[axis]) * cross * (biggest + 1)


def window_count(shape_xyz: Sequence[int], roi: Sequence[int] = ROI, overlap: float = OVERLAP) -> int:
    return math.prod(len(scan_starts(max(int(n), int(r)), int(r), overlap)) for n, r in zip(shape_xyz, roi))
