"""SAM's own input and output around segment-anything's network (facts from the package's
``SamPredictor``, ``ResizeLongestSide`` and ``Sam.preprocess`` / ``postprocess_masks``).

Input: the slice's 8-bit grey levels (see :mod:`..slicewise.intensity`) as an RGB image
(three equal channels), resized with PIL's bilinear filter so that its longest side is S
(S = 1024; the other side ``int(side * S / longest + 0.5)``), then ``Sam.preprocess``:
minus the pixel mean, over the pixel std, zero-padded at the bottom and right to S x S.
``ResizeLongestSide.apply_image`` does this resize through torchvision, whose PIL path calls
PIL's bilinear resize; it is called on PIL directly here (torchvision is not needed). The
one addition: slices whose pixels are not square in millimetres (a coronal or sagittal
slice of an anisotropic volume) are resized to their physical aspect, so SAM sees anatomy
in its true shape; square pixels give exactly SAM's own size.

Prompts: points and boxes in input pixels (slice pixel coordinates times the resize
factor of each axis, as ``apply_coords`` does). A single point without a box asks the
decoder for its three masks and keeps the one with the highest predicted IoU (SAM's advice
for ambiguous prompts); otherwise ``multimask_output=False``.

Output: ``Sam.postprocess_masks`` (upscale to S x S, remove the padding, resize to the
slice's H x W, bilinear) and ``> Sam.mask_threshold`` (0.0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

import numpy as np
import torch
from PIL import Image

from ..slicewise import sam_network
from ..slicewise.frame import Frame

FILES = {"vit_b": "sam_vit_b_01ec64.pth", "vit_l": "sam_vit_l_0b3195.pth", "vit_h": "sam_vit_h_4b8939.pth"}


def longest_side_shape(height: float, width: float, size: int) -> Tuple[int, int]:
    """``(h, w)`` with the longest side ``size`` and the aspect of ``height`` x ``width``
    (ResizeLongestSide's rule: each side times ``size / longest``, rounded half up)."""
    scale = size * 1.0 / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def resized_shape(shape: Tuple[int, int], spacing: Tuple[float, float], size: int) -> Tuple[int, int]:
    """The resized ``(h, w)`` of a slice of ``shape`` pixels of ``spacing`` (row mm, col mm):
    by pixels when they are square (SAM's own rule), else by millimetres."""
    if np.isclose(spacing[0], spacing[1], rtol=1e-6, atol=0):
        return longest_side_shape(shape[0], shape[1], size)
    return longest_side_shape(shape[0] * spacing[0], shape[1] * spacing[1], size)


class SamSliceNetwork(sam_network.SamNetwork):
    """SAM with its own preprocessing and mask output, on slices."""

    @torch.inference_mode()
    def prepare(self, pixels: np.ndarray, spacing: Tuple[float, float]) -> Tuple[torch.Tensor, Frame]:
        """Network input ``[3, S, S]`` (on the network's device) of a ``uint8`` slice (H, W)
        with pixel ``spacing`` (row mm, col mm), and its frame."""
        size = self.input_size
        h, w = resized_shape(pixels.shape, spacing, size)
        resized = np.asarray(Image.fromarray(np.ascontiguousarray(pixels)).resize((w, h), Image.Resampling.BILINEAR))
        image = torch.from_numpy(resized.astype(np.float32))[None].expand(3, h, w).to(self.device)
        return self.model.preprocess(image), Frame(tuple(pixels.shape), (h, w), size)

    @torch.inference_mode()
    def to_mask(self, logits: torch.Tensor, frame: Frame) -> np.ndarray:
        """Boolean ``(H, W)``: SAM's postprocessing and threshold."""
        masks = self.model.postprocess_masks(logits, frame.resized, frame.shape)
        return (masks[0, 0] > self.model.mask_threshold).cpu().numpy()


def load_network(path: Path, variant: str, device: str = "cpu", precision: str = "fp32") -> SamSliceNetwork:
    """segment-anything's ``variant`` with ``path`` (a plain state dict) loaded strictly."""
    fix = (f"fetch it again with `slicerfm-backend weights fetch sam-vit-{variant[-1]}`, or choose the "
           f"variant the file was made for (--engine-option sam.model=vit_b|vit_l|vit_h)")
    model = sam_network.load_state(variant, path, FILES[variant], fix)
    return SamSliceNetwork(model, device, precision)
