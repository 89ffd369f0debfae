"""The SAM-Med3D(-turbo) network from pip ``medim``, built without medim's downloader, and
its checkpoint loaded strictly.

The checkpoint is a torch file holding ``{"model_state_dict": OrderedDict}`` with keys under
``image_encoder.``, ``prompt_encoder.`` and ``mask_decoder.`` (docs/MODELS.md §1). Every
way it can be wrong -- unreadable or truncated file, another layout, missing or unexpected
keys, a tensor of the wrong shape -- raises :class:`CheckpointError` with the file, what is
wrong and how to fix it.

:class:`SamMed3DNetwork` is what the engine calls: ``encode`` (image encoder, once per crop)
and ``decode`` (prompt encoder + mask decoder, once per click). Tensors: image
``[1, 1, 128, 128, 128]`` in crop order (a, b, c) = (R, A, S); embedding ``[1, 384, 8, 8, 8]``;
points ``[1, N, 3]`` as crop voxel indices in the same (a, b, c) order, labels ``[1, N]``
(1 positive, 0 negative); mask prompt and output low-resolution logits ``[1, 1, 32, 32, 32]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import numpy as np
import torch

from ...errors import CheckpointError, EngineError
from ...weights.state_dict import load_checkpoint, state_dict_problems

STATE_KEY = "model_state_dict"
LOWRES = 32  # side of the low-resolution logits
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
FIX = "fetch it again with `slicerfm-backend weights fetch sam-med3d`"



def build_network() -> torch.nn.Module:
    """SAM-Med3D (ViT-B 3D, ≈100.5 M parameters) with random weights; medim's downloader is
    never called (``pretrained=False``)."""
    from medim.models.sam_med3d import build_sam3D_vit_b_ori  # medim 0.1.x

    return build_sam3D_vit_b_ori(pretrained=False)


def read_state_dict(path: Path) -> Dict[str, torch.Tensor]:
    """The ``model_state_dict`` of the checkpoint at ``path`` (tensors on the CPU)."""
    checkpoint = load_checkpoint(path, FIX)
    if not isinstance(checkpoint, dict) or STATE_KEY not in checkpoint:
        found = sorted(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(f"checkpoint {path} is not a SAM-Med3D checkpoint: expected a dict "
                              f"with {STATE_KEY!r}, found {found}; {FIX}")
    return checkpoint[STATE_KEY]


def check_state_dict(model: torch.nn.Module, state: Dict[str, Any], path: Path) -> None:
    """CheckpointError unless ``state`` has exactly the model's keys with the model's shapes."""
    problems = state_dict_problems(model.state_dict(), state)
    if problems:
        raise CheckpointError(f"checkpoint {path} does not fit SAM-Med3D: {'; '.join(problems)}; "
                              f"is it sam_med3d_turbo.pth? {FIX}")


def load_network(path: Path, device: str = "cpu", precision: str = "fp32") -> "SamMed3DNetwork":
    """Build the network, load ``path`` strictly, move it to ``device``; eval mode."""
    model = build_network()
    state = read_state_dict(Path(path))
    check_state_dict(model, state, Path(path))
    model.load_state_dict(state, strict=True)
    return SamMed3DNetwork(model, device, precision)


class SamMed3DNetwork:
    """Image encoder and prompt encoder + mask decoder of a loaded SAM-Med3D.

    ``precision`` ("fp32", "bf16", "fp16") applies autocast on CUDA; on the CPU the network
    always runs in float32 ("fp16" is refused there).
    """

    def __init__(self, model: torch.nn.Module, device: str = "cpu", precision: str = "fp32"):
        if precision not in PRECISIONS:
            raise EngineError(f"precision {precision!r} unknown; use one of {', '.join(PRECISIONS)}")
        self.device = torch.device(device)
        if self.device.type == "cpu" and precision == "fp16":
            raise EngineError("precision fp16 needs CUDA; use fp32 (or bf16) on the CPU")
        self.precision = precision if self.device.type == "cuda" else "fp32"
        self.model = model.to(self.device).eval()

    def _autocast(self):
        enabled = self.precision != "fp32"
        return torch.autocast(device_type=self.device.type, dtype=PRECISIONS[self.precision], enabled=enabled)

    @torch.inference_mode()
    def encode(self, image: np.ndarray) -> torch.Tensor:
        """Embedding ``[1, 384, 8, 8, 8]`` (float32, on the device) of a z-normalised crop
        ``(128, 128, 128)`` in crop order (a, b, c)."""
        x = torch.from_numpy(np.ascontiguousarray(image, np.float32))[None, None].to(self.device)
        with self._autocast():
            return self.model.image_encoder(x).float()

    @torch.inference_mode()
    def decode(self, embedding: torch.Tensor, points: np.ndarray, labels: np.ndarray,
               logits) -> torch.Tensor:
        """Low-resolution logits ``(32, 32, 32)`` (float32 tensor, crop order, on the device:
        the next decode and the paste use them there) for ``points`` ``(N, 3)`` crop voxel
        indices (a, b, c), ``labels`` ``(N,)`` (1/0) and the previous logits ``(32, 32, 32)``
        (a tensor or an array; zeros when None) as mask prompt. On CUDA the call waits for
        the result, so the time around it is the decoder's."""
        coords = torch.as_tensor(np.asarray(points, np.float32)[None], device=self.device)
        marks = torch.as_tensor(np.asarray(labels, np.int64)[None], device=self.device)
        if logits is None:
            mask = torch.zeros((1, 1) + (LOWRES,) * 3, dtype=torch.float32, device=self.device)
        else:
            mask = torch.as_tensor(logits, dtype=torch.float32, device=self.device)[None, None]
        with self._autocast():
            sparse, dense = self.model.prompt_encoder(points=(coords, marks), boxes=None, masks=mask)
            low, _ = self.model.mask_decoder(
                image_embeddings=embedding, image_pe=self.model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=False)
        out = low[0, 0].float()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return out
