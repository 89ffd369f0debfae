"""Voxel values to the 8-bit grey levels MedSAM was trained on (and SAM's RGB input).

MedSAM's preprocessing (its ``pre_CT_MR.py``):

- CT: clip to the window ``[L - W/2, L + W/2]`` (level 40, width 400 HU by default), scale
  to 0..255;
- MR (and other modalities): clip to the 0.5 and 99.5 percentiles of the positive voxels
  of the volume (upstream selects ``> 0``; MR has no negative values), scale to 0..255, and keep zero voxels at 0;
- then cast to ``uint8`` (truncation, as numpy's cast does). The arithmetic is float64 in
  upstream's order (clip, subtract, divide, times 255), so the truncation agrees exactly.

Upstream scales by the clipped volume's own minimum and maximum; with the window or
percentile bounds that is the same as scaling by the bounds whenever the volume reaches
both of them (CT with air and bone always does; the percentiles always do). Scaling by the
bounds makes every slice's grey levels independent of the others, so embeddings can be
cached per slice.

An image of modality "other" (not known) is treated as CT when it holds values <= -500 (air
in Hounsfield units), else as MR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

CT_WINDOW = (40.0, 400.0)  # level, width (HU)
MR_PERCENTILES = (0.5, 99.5)
AIR_HU = -500.0
PERCENTILE_SAMPLE = 1 << 24  # voxels: above this the percentiles use an evenly strided sample


def ct_to_uint8(values: np.ndarray, level: float = CT_WINDOW[0], width: float = CT_WINDOW[1]) -> np.ndarray:
    """``uint8`` grey levels of CT values (HU) in the window ``level`` +- ``width`` / 2."""
    low, high = level - width / 2.0, level + width / 2.0
    scaled = (np.clip(np.asarray(values, np.float64), low, high) - low) / (high - low) * 255.0
    return scaled.astype(np.uint8)


def mr_bounds(volume: np.ndarray) -> Tuple[float, float]:
    """The 0.5 and 99.5 percentiles of the volume's positive voxels; ``(0, 0)`` when none is
    positive. Volumes above 2^24 voxels are sampled with an even stride (the
    percentiles of 16 M voxels are stable to far below one grey level)."""
    flat = np.asarray(volume).reshape(-1)
    if flat.size > PERCENTILE_SAMPLE:
        flat = flat[:: int(np.ceil(flat.size / PERCENTILE_SAMPLE))]
    positive = flat[flat > 0]
    if positive.size == 0:
        return 0.0, 0.0
    low, high = np.percentile(positive.astype(np.float64), MR_PERCENTILES)
    return float(low), float(high)


def mr_to_uint8(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """``uint8`` grey levels of MR values clipped to ``[low, high]``; zero voxels stay 0."""
    values = np.asarray(values, np.float64)
    if not high > low:  # a constant volume: its non-zero voxels are all alike
        return np.where(values != 0, 255, 0).astype(np.uint8)
    scaled = (np.clip(values, low, high) - low) / (high - low) * 255.0
    scaled[values == 0] = 0
    return scaled.astype(np.uint8)


@dataclass(frozen=True)
class Intensity:
    """How one image's voxels become grey levels: ``kind`` "CT" (window ``level``/``width``)
    or "MR" (bounds ``low``/``high``)."""

    kind: str
    level: float = CT_WINDOW[0]
    width: float = CT_WINDOW[1]
    low: float = 0.0
    high: float = 0.0

    @staticmethod
    def for_image(volume: np.ndarray, modality: str, window: Tuple[float, float] = CT_WINDOW) -> "Intensity":
        """The mapping for a volume of ``modality`` ("CT", "MR" or "other")."""
        if modality == "CT" or (modality not in ("CT", "MR") and float(np.min(volume)) <= AIR_HU):
            return Intensity("CT", level=float(window[0]), width=float(window[1]))
        low, high = mr_bounds(volume)
        return Intensity("MR", low=low, high=high)

    def to_uint8(self, values: np.ndarray) -> np.ndarray:
        """Grey levels ``uint8`` of ``values`` (any shape)."""
        if self.kind == "CT":
            return ct_to_uint8(values, self.level, self.width)
        return mr_to_uint8(values, self.low, self.high)
