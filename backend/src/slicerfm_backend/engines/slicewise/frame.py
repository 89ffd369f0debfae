"""Where a slice sits in the network's square input, and prompts in the network's pixels.

The network input is ``input_size`` x ``input_size`` pixels (1024 for every released SAM
and MedSAM checkpoint). A slice of ``shape`` (H, W) pixels is resized to ``resized``
(h, w) and placed at the input's top-left corner: MedSAM stretches every slice to the whole
square (h = w = 1024); SAM keeps the slice's physical aspect with its longest side at 1024
and pads the rest. A slice pixel ``(row, col)`` is at input ``(x, y) = (col * w / W,
row * h / H)`` -- the scaling both upstream pipelines apply to coordinates (MedSAM's
``box / [W, H, W, H] * 1024``, SAM's ``ResizeLongestSide.apply_coords``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from .prompts import PixelBox, PixelPoint


@dataclass(frozen=True)
class Frame:
    """A slice of ``shape`` (H, W) resized to ``resized`` (h, w) inside a square input of
    ``input_size`` pixels."""

    shape: Tuple[int, int]
    resized: Tuple[int, int]
    input_size: int

    @property
    def scale(self) -> Tuple[float, float]:
        """``(row scale, column scale)``: input pixels per slice pixel."""
        return self.resized[0] / self.shape[0], self.resized[1] / self.shape[1]

    def box(self, box: PixelBox, padding: float = 0.0) -> np.ndarray:
        """``(x0, y0, x1, y1)`` float32 in input pixels of a slice box ``(row0, col0, row1,
        col1)``, grown by ``padding`` input pixels on every side and kept on the slice's
        resized area."""
        sr, sc = self.scale
        h, w = self.resized
        x0, y0 = box[1] * sc - padding, box[0] * sr - padding
        x1, y1 = box[3] * sc + padding, box[2] * sr + padding
        return np.array([np.clip(x0, 0, w), np.clip(y0, 0, h), np.clip(x1, 0, w), np.clip(y1, 0, h)],
                        np.float32)

    def points(self, points: Sequence[PixelPoint]) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        """``(coords (N, 2) float32 x, y in input pixels, labels (N,) int64)``, or
        ``(None, None)`` without points."""
        if not points:
            return None, None
        sr, sc = self.scale
        coords = np.array([[col * sc, row * sr] for row, col, _ in points], np.float32)
        labels = np.array([label for _, _, label in points], np.int64)
        return coords, labels
