"""The ``medsam`` engine: MedSAM ViT-B, a box on a slice, propagated through the volume.

Prompts and propagation: :mod:`..slicewise.engine` (shared with ``sam``); network input
and output: :mod:`.model`. MedSAM was trained with boxes only: points are passed to its
(SAM's) prompt encoder as given, but a box is what it segments well from.

Options (``--engine-option medsam.KEY=VALUE``): ``precision`` ("bf16" default on CUDA,
"fp32", "fp16"; always fp32 on the CPU), ``embedding_cache_mb`` (256, per image),
``max_slices`` (128 per direction), ``encoder_batch`` (slices encoded at once while
propagating: 4 on CUDA, 1 on the CPU), ``min_overlap`` (0.5), ``max_growth`` (3),
``box_padding`` (5 input pixels), ``ct_window`` ("40,400": level, width in HU).
"""

from __future__ import annotations

from ..base import EngineCapabilities
from ..slicewise.engine import SliceEngine

NAME = "medsam"


class MedSamEngine(SliceEngine):
    """MedSAM (segment-anything ViT-B fine-tuned on medical images), slice by slice."""

    name = NAME
    capabilities = EngineCapabilities(
        prompt_kinds=("box", "point"),
        modalities=("CT", "MR"),
        needs_weights=True,
        devices=("cuda", "cpu"),
        description="MedSAM (ViT-B): a box on one slice (axial, coronal or sagittal), propagated "
                    "slice by slice as a background job with progress and cancel; points refine a "
                    "slice. On a CPU every new slice takes seconds; a GPU takes milliseconds.",
    )

    def load(self) -> None:
        from .model import load_network

        self.warn_if_cpu()
        self.network = load_network(self.checkpoint(), self.device, self.default_precision())
