"""The ``sam`` engine: Meta's Segment Anything on slices, with propagation.

Prompts and propagation: :mod:`..slicewise.engine` (shared with ``medsam``); network input
and output: :mod:`.model`. Points (positive/negative) are SAM's native prompt; a box on a
slice works as for ``medsam``.

Options: ``model`` ("vit_h" default, as segment-anything's own default; "vit_l", "vit_b":
about 2x and 4x less encoder work), and the options of ``medsam`` (``precision``,
``embedding_cache_mb``, ``max_slices``, ``encoder_batch``, ``min_overlap``, ``max_growth``,
``box_padding``, ``ct_window``). The weights are the catalogue's ``sam-vit-h``,
``sam-vit-l`` or ``sam-vit-b``; ``--checkpoint sam=PATH`` loads a fine-tuned file of the
chosen variant instead.
"""

from __future__ import annotations

from typing import Sequence

from ..base import EngineCapabilities
from ...engine_core.options import choice
from ..slicewise.engine import SliceEngine

NAME = "sam"
DEFAULT_MODEL = "vit_h"


class SamEngine(SliceEngine):
    """Segment Anything (ViT-B/L/H), slice by slice."""

    name = NAME
    capabilities = EngineCapabilities(
        prompt_kinds=("point", "box"),
        modalities=("CT", "MR"),
        needs_weights=True,
        devices=("cuda", "cpu"),
        description="Segment Anything (ViT-H, -L or -B): points or a box on one slice (axial, "
                    "coronal or sagittal), propagated slice by slice as a background job with "
                    "progress and cancel. On a CPU every new slice takes seconds (ViT-H: tens of "
                    "seconds); a GPU takes milliseconds.",
    )
    option_types = {**SliceEngine.option_types, "model": choice("vit_b", "vit_l", "vit_h")}

    @property
    def variant(self) -> str:
        return str(self.options.get("model", DEFAULT_MODEL))

    def weights_name(self) -> str:
        return f"sam-vit-{self.variant[-1]}"

    def multimask(self, has_box: bool, points: Sequence) -> bool:
        return not has_box and len(points) == 1

    def load(self) -> None:
        from .model import load_network

        self.warn_if_cpu()
        self.network = load_network(self.checkpoint(), self.variant, self.device, self.default_precision())
