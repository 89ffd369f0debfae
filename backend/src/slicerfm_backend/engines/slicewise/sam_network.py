"""segment-anything's network (pip ``segment-anything`` 1.0): building, strict checkpoint
loading, and the encoder / prompt-encoder + mask-decoder calls both slice engines make.

Only the package's network modules (``segment_anything.modeling`` and ``build_sam``) are
used. They are loaded under a private package name without running the package's
``__init__``, which imports ``SamPredictor`` and, through its transforms, torchvision: the
torchvision wheel on PyPI cannot load beside the CPU build of torch (its compiled operators
need torch's CUDA libraries), while the network itself needs nothing but torch. The
modules are the package's own files, unchanged; a process that can import
``segment_anything`` normally still can.

Checkpoints: SAM's released files and MedSAM's ``medsam_vit_b.pth`` are plain state dicts of
``Sam``. They are loaded on the CPU (``map_location``: files saved on a GPU load on a CPU-only
host, which the package's own loader cannot do) and strictly: every key and shape must fit.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from contextlib import nullcontext
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import torch

from ...weights.state_dict import load_checkpoint, state_dict_problems
from ...errors import CheckpointError, EngineError

PRIVATE_PACKAGE = "slicerfm_backend.engines.slicewise._segment_anything"
VARIANTS = ("vit_b", "vit_l", "vit_h")
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_import_lock = threading.Lock()


def modules() -> Tuple[types.ModuleType, types.ModuleType]:
    """``(build_sam, modeling)`` of pip segment-anything, loaded without its ``__init__``."""
    with _import_lock:
        if PRIVATE_PACKAGE not in sys.modules:
            spec = importlib.util.find_spec("segment_anything")
            if spec is None or not spec.submodule_search_locations:
                raise EngineError("the medsam and sam engines need the segment-anything package: "
                                  "pip install 'slicerfm-backend[medsam]'")
            package = types.ModuleType(PRIVATE_PACKAGE)
            package.__path__ = list(spec.submodule_search_locations)
            package.__package__ = PRIVATE_PACKAGE
            sys.modules[PRIVATE_PACKAGE] = package
        build = importlib.import_module(PRIVATE_PACKAGE + ".build_sam")
        modeling = importlib.import_module(PRIVATE_PACKAGE + ".modeling")
    return build, modeling


def build(variant: str) -> torch.nn.Module:
    """A ``Sam`` of ``variant`` ("vit_b", "vit_l", "vit_h") with random weights, eval mode;
    the package's builder with ``checkpoint=None`` (it never downloads)."""
    if variant not in VARIANTS:
        raise EngineError(f"unknown SAM variant {variant!r}; use one of {', '.join(VARIANTS)}")
    registry, _ = modules()
    return registry.sam_model_registry[variant](checkpoint=None).eval()


def load_state(variant: str, path: Path, what: str, fix: str) -> torch.nn.Module:
    """A ``Sam`` of ``variant`` with the plain state dict at ``path`` loaded strictly;
    CheckpointError naming the file, the problem and ``fix`` otherwise (``what`` names the
    expected file). The file is read before the network is built, so an unreadable one is
    refused at once."""
    state = load_checkpoint(Path(path), fix)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict) and "optimizer" in state:
        raise CheckpointError(f"checkpoint {path} is a training checkpoint ({{'model', 'optimizer', ...}}); "
                              f"pass its 'model' state dict saved on its own, or {what}; {fix}")
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, not a state dict; {fix}")
    model = build(variant)
    problems = state_dict_problems(model.state_dict(), state)
    if problems:
        raise CheckpointError(f"checkpoint {path} does not fit the network: {'; '.join(problems)}; "
                              f"is it {what}? {fix}")
    model.load_state_dict(state, strict=True)
    return model


class SamNetwork:
    """A loaded ``Sam`` on a device: batched image encoder, prompt encoder + mask decoder.

    ``precision`` ("fp32", "bf16", "fp16") runs the network under autocast on CUDA; on the
    CPU it always runs in float32 ("fp16" is refused there). Embeddings are kept in the
    dtype the encoder returns (bfloat16/float16 under autocast: half the cache bytes).
    Subclasses add the engine's own preprocessing (``prepare``) and mask output (``to_mask``).
    """

    def __init__(self, model: torch.nn.Module, device: str = "cpu", precision: str = "fp32"):
        if precision not in PRECISIONS:
            raise EngineError(f"precision {precision!r} unknown; use one of {', '.join(PRECISIONS)}")
        self.device = torch.device(device)
        if self.device.type == "cpu" and precision == "fp16":
            raise EngineError("precision fp16 needs CUDA; use fp32 on the CPU")
        self.precision = precision if self.device.type == "cuda" else "fp32"
        self.model = model.to(self.device).eval()
        self.input_size = int(model.image_encoder.img_size)

    def _autocast(self):
        if self.precision == "fp32":
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=PRECISIONS[self.precision])

    @torch.inference_mode()
    def encode(self, inputs: List[torch.Tensor]) -> List[torch.Tensor]:
        """Embeddings ``[1, 256, S/16, S/16]`` of network inputs ``[3, S, S]`` (float32,
        S = ``input_size``), encoded as one batch."""
        batch = torch.stack([x.to(self.device) for x in inputs])
        with self._autocast():
            out = self.model.image_encoder(batch)
        return [e[None] for e in out]

    @torch.inference_mode()
    def decode_logits(self, embedding: torch.Tensor, box: Optional[np.ndarray], coords: Optional[np.ndarray],
                      labels: Optional[np.ndarray], multimask: bool = False) -> torch.Tensor:
        """Low-resolution logits ``[1, 1, 4 S/16, 4 S/16]`` (float32) for a box ``(x0, y0, x1,
        y1)`` and/or points ``coords`` (N, 2) x, y with ``labels`` (N,) (1 inside, 0 outside),
        all in input pixels. With ``multimask`` the decoder's three masks are made and the one
        with the highest predicted IoU is kept (SAM's advice for a single point)."""
        points = None
        if coords is not None:
            points = (torch.as_tensor(coords[None], device=self.device),
                      torch.as_tensor(labels[None], device=self.device))
        boxes = None if box is None else torch.as_tensor(np.asarray(box, np.float32)[None], device=self.device)
        with self._autocast():
            sparse, dense = self.model.prompt_encoder(points=points, boxes=boxes, masks=None)
            low, iou = self.model.mask_decoder(
                image_embeddings=embedding, image_pe=self.model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask)
        low = low.float()
        if multimask:
            best = int(torch.argmax(iou[0]))
            low = low[:, best:best + 1]
        return low

