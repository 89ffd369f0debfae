"""MedSAM's input and output around segment-anything's ViT-B (facts from MedSAM's
``MedSAM_Inference.py``; the code is ours).

Input: the slice's 8-bit grey levels (see :mod:`..slicewise.intensity`), resized to S x S
(S = 1024) with scikit-image's ``resize(order=3, preserve_range=True, anti_aliasing=True)``,
cast to ``uint8``, min-max scaled to [0, 1] and repeated to three channels -- fed to the image
encoder directly, without SAM's pixel mean/std or padding. MedSAM resizes the three-channel
image; the three channels being equal, one channel is resized here (about 10x less work). The
two differ only by float rounding before the ``uint8`` cast: at most one grey level, on well
under 0.1 % of pixels.

Prompts: a box in input pixels (slice pixel coordinates times S / W and S / H); the decoder
runs with ``multimask_output=False``.

Output: the decoder's low-resolution logits [1, 1, S/4, S/4] go through a sigmoid, are resized
bilinearly (align_corners=False) to the slice's H x W and thresholded at 0.5.
"""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F
from skimage import transform

from ..slicewise import sam_network
from ..slicewise.frame import Frame

FIX = ("download medsam_vit_b.pth again (see `slicerfm-backend weights fetch medsam`) and import it "
       "with `slicerfm-backend weights import medsam FILE`")


def prepare_pixels(pixels: np.ndarray, size: int) -> np.ndarray:
    """MedSAM's network input of a 2-D ``uint8`` slice: float32 ``(size, size)`` in [0, 1]."""
    resized = transform.resize(pixels, (size, size), order=3, preserve_range=True,
                               anti_aliasing=True).astype(np.uint8)
    low, high = float(resized.min()), float(resized.max())
    return ((resized - low) / np.clip(high - low, 1e-8, None)).astype(np.float32)


class MedSamNetwork(sam_network.SamNetwork):
    """MedSAM: segment-anything's ViT-B with MedSAM's preprocessing and mask output."""

    def prepare(self, pixels: np.ndarray, spacing: Tuple[float, float]) -> Tuple[torch.Tensor, Frame]:
        """Network input ``[3, S, S]`` of a ``uint8`` slice (H, W), and its frame (the whole
        square: MedSAM stretches every slice to it; ``spacing`` plays no part)."""
        size = self.input_size
        plane = torch.from_numpy(prepare_pixels(pixels, size))
        return plane[None].expand(3, size, size).contiguous(), Frame(tuple(pixels.shape), (size, size), size)

    @torch.inference_mode()
    def to_mask(self, logits: torch.Tensor, frame: Frame) -> np.ndarray:
        """Boolean ``(H, W)``: sigmoid, bilinear resize to the slice, > 0.5."""
        probability = F.interpolate(torch.sigmoid(logits), size=frame.shape, mode="bilinear", align_corners=False)
        return (probability[0, 0] > 0.5).cpu().numpy()


def load_network(path: Path, device: str = "cpu", precision: str = "fp32") -> MedSamNetwork:
    """segment-anything's ViT-B with ``path`` (medsam_vit_b.pth, a plain state dict) loaded
    strictly, on ``device``."""
    model = sam_network.load_state("vit_b", path, "medsam_vit_b.pth", FIX)
    return MedSamNetwork(model, device, precision)
