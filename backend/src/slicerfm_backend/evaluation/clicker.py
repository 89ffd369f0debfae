"""A simulated user: where the next click goes, given a reference mask and a prediction.

Rules (the usual protocol for interactive segmentation benchmarks):

* first click: the voxel of the reference farthest from the reference's boundary;
* each next click: in the largest error region (connected component of false negatives or
  of false positives, by voxel count), at its voxel farthest from the region's boundary;
  positive when the region is missed object (false negative), negative when it is overflow
  (false positive).

Distances are Euclidean in millimetres (``spacing_kji``); the image border counts as
boundary. All arrays are numpy ``(k, j, i)``.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

Click = Tuple[Tuple[int, int, int], bool]


def dice(reference: np.ndarray, prediction: np.ndarray) -> float:
    """Dice coefficient of two boolean arrays (1.0 when both are empty)."""
    reference = reference.astype(bool, copy=False)
    prediction = prediction.astype(bool, copy=False)
    total = int(reference.sum()) + int(prediction.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(reference, prediction).sum()) / total


def _deepest_voxel(region: np.ndarray, spacing_kji: Sequence[float]) -> Tuple[int, int, int]:
    """Voxel of ``region`` farthest (mm) from its boundary; the array border is boundary."""
    padded = np.pad(region, 1)
    distance = ndimage.distance_transform_edt(padded, sampling=spacing_kji)[1:-1, 1:-1, 1:-1]
    return tuple(int(v) for v in np.unravel_index(int(np.argmax(distance)), region.shape))


def _crop_to(mask: np.ndarray, margin: int = 1):
    """Slices of the bounding box of ``mask`` grown by ``margin`` voxels (None when empty)."""
    hits = np.nonzero(mask)
    if hits[0].size == 0:
        return None
    return tuple(
        slice(max(0, int(h.min()) - margin), min(n, int(h.max()) + 1 + margin))
        for h, n in zip(hits, mask.shape)
    )


def first_click(reference: np.ndarray, spacing_kji: Sequence[float]) -> Click:
    """Positive click at the reference voxel farthest from the reference boundary."""
    reference = reference.astype(bool, copy=False)
    box = _crop_to(reference)
    if box is None:
        raise ValueError("the reference mask is empty: there is nothing to click on")
    local = _deepest_voxel(reference[box], spacing_kji)
    return tuple(int(s.start + v) for s, v in zip(box, local)), True


def next_click(
    reference: np.ndarray, prediction: Optional[np.ndarray], spacing_kji: Sequence[float]
) -> Optional[Click]:
    """Where the simulated user clicks next; None when the prediction is already perfect."""
    reference = reference.astype(bool, copy=False)
    if prediction is None or not prediction.any():
        return first_click(reference, spacing_kji)
    prediction = prediction.astype(bool, copy=False)
    box = _crop_to(np.logical_or(reference, prediction))
    ref, pred = reference[box], prediction[box]
    best = None  # (size, positive, labels, label)
    structure = ndimage.generate_binary_structure(3, 1)
    for positive, errors in ((True, ref & ~pred), (False, pred & ~ref)):
        labels, count = ndimage.label(errors, structure=structure)
        if count == 0:
            continue
        sizes = np.bincount(labels.ravel())[1:]
        label = int(np.argmax(sizes)) + 1
        if best is None or sizes[label - 1] > best[0]:
            best = (int(sizes[label - 1]), positive, labels, label)
    if best is None:
        return None
    _, positive, labels, label = best
    region = labels == label
    inner = _crop_to(region)
    local = _deepest_voxel(region[inner], spacing_kji)
    point = tuple(int(b.start + s.start + v) for b, s, v in zip(box, inner, local))
    return point, positive


def clicks_to_reach(dices: Sequence[float], threshold: float) -> Optional[int]:
    """1-based number of clicks after which Dice first reaches ``threshold`` (None: never)."""
    for index, value in enumerate(dices):
        if value >= threshold:
            return index + 1
    return None
