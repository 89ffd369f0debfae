"""Label overlap before and after a registration (``evaluate-registration``, benchmarks).

Label maps are numpy ``(K, J, I)`` integer arrays with their ``ijk_to_ras``. The moving
label map is carried onto the fixed grid with nearest neighbour: through the field for
"after", through the identity (same RAS position) for "before".
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional

import numpy as np

from .base import DisplacementField
from .field import warp


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """2|A∩B| / (|A| + |B|) of two boolean arrays; 1.0 when both are empty."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def common_labels(fixed_labels: np.ndarray, moving_labels: np.ndarray) -> List[int]:
    """Non-zero labels present in both label maps, ascending."""
    return sorted(set(np.unique(fixed_labels).tolist()) & set(np.unique(moving_labels).tolist()) - {0})


def parse_labels(text: Optional[str]) -> Optional[List[int]]:
    """``"2,3,4"`` -> ``[2, 3, 4]``; None for None; ValueError for anything else."""
    if text is None:
        return None
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--labels must be comma-separated integers, got {text!r}") from None
    if not values:
        raise ValueError("--labels is empty")
    return values


def identity_field(ijk_to_ras: np.ndarray, shape) -> DisplacementField:
    return DisplacementField(np.zeros(tuple(shape) + (3,), dtype=np.float32), np.asarray(ijk_to_ras, dtype=np.float64))


def dice_per_label(fixed_labels: np.ndarray, carried: np.ndarray, labels: Iterable[int]) -> Dict[int, float]:
    return {int(label): dice(fixed_labels == label, carried == label) for label in labels}


def overlap_report(fixed_labels: np.ndarray, fixed_ijk_to_ras, moving_labels: np.ndarray, moving_ijk_to_ras,
                   field: DisplacementField, labels: Optional[List[int]] = None) -> dict:
    """``{"labels", "dice_before", "dice_after", "mean_dice_before", "mean_dice_after"}`` for
    the moving label map carried onto the fixed grid (ValueError for a label in neither map
    or label maps not on the images' grids)."""
    if labels is None:
        labels = common_labels(fixed_labels, moving_labels)
        if not labels:
            raise ValueError("the fixed and moving label maps share no non-zero label")
    present = set(np.unique(fixed_labels).tolist()) | set(np.unique(moving_labels).tolist())
    missing = [label for label in labels if label not in present]
    if missing:
        raise ValueError(f"label(s) {missing} are in neither label map")
    if tuple(field.shape) != tuple(fixed_labels.shape):
        raise ValueError(f"the field grid {field.shape} differs from the fixed label map {fixed_labels.shape}")
    before_map = warp(moving_labels, moving_ijk_to_ras, identity_field(fixed_ijk_to_ras, fixed_labels.shape),
                      labels=True)
    after_map = warp(moving_labels, moving_ijk_to_ras, field, labels=True)
    before = dice_per_label(fixed_labels, before_map, labels)
    after = dice_per_label(fixed_labels, after_map, labels)
    return {
        "labels": [int(label) for label in labels],
        "dice_before": before, "dice_after": after,
        "mean_dice_before": float(np.mean(list(before.values()))),
        "mean_dice_after": float(np.mean(list(after.values()))),
    }
