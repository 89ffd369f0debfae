"""The VISTA3D network: built with ``monai.networks.nets.vista3d132``, its released checkpoint
loaded strictly, and run one window at a time with AMP on CUDA.

The released ``model.pt`` is a plain ``state_dict`` of ``vista3d132(encoder_embed_dim=48,
in_channels=1)`` (no wrapper dict). A file that is not readable, holds something else, or does
not fit the network raises :class:`CheckpointError` naming the file, what is wrong and how to
fix it. Windows are tensors in MONAI order ``[1, 1, X, Y, Z]`` (see :mod:`.grid`).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np
import torch

from ...errors import CheckpointError
from ...weights.state_dict import load_checkpoint, state_dict_problems

log = logging.getLogger(__name__)

FIX = ("fetch the released weights with 'slicerfm-backend weights fetch vista3d', or pass "
       "--checkpoint vista3d=PATH to a plain state_dict of monai's vista3d132")



def build_network(encoder_embed_dim: int = 48) -> torch.nn.Module:
    """A freshly initialised ``vista3d132`` (about 218 M parameters), eval mode, on the CPU."""
    from monai.networks.nets import vista3d132

    return vista3d132(encoder_embed_dim=encoder_embed_dim, in_channels=1).eval()


def read_state_dict(path: Path) -> Dict[str, torch.Tensor]:
    """The state dict stored at ``path`` (tensors on the CPU); CheckpointError otherwise."""
    state = load_checkpoint(path, FIX)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        raise CheckpointError(f"checkpoint {path} is a training checkpoint ({{'model': ...}}); the "
                              f"released model.pt is a plain state_dict; {FIX}")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"checkpoint {path} is not a plain state_dict of tensors; {FIX}")
    return state


def check_state_dict(model: torch.nn.Module, state: Dict[str, Any], path: Path) -> None:
    """CheckpointError unless ``state`` has exactly the model's keys and shapes."""
    problems = state_dict_problems(model.state_dict(), state)
    if problems:
        raise CheckpointError(f"checkpoint {path} does not fit VISTA3D (vista3d132): "
                              f"{'; '.join(problems)}; is it the bundle's model.pt? {FIX}")


class Vista3DNetwork:
    """A loaded VISTA3D on a device; every call is one network forward on one window.

    On CUDA the forward runs under autocast (float16, as the bundle's ``amp: true``); on the
    CPU it runs in float32 (``amp`` is False and :attr:`precision` says "fp32 (CPU)").
    Outputs are float32 logits on the CPU.
    """

    def __init__(self, model: torch.nn.Module, device: str = "cpu", amp: Optional[bool] = None):
        self.device = torch.device(device)
        self.amp = self.device.type == "cuda" if amp is None else bool(amp and self.device.type == "cuda")
        self.model = model.to(self.device).eval()

    @property
    def precision(self) -> str:
        if self.device.type != "cuda":
            return "fp32 (CPU)"
        return "amp fp16 (CUDA)" if self.amp else "fp32 (CUDA)"

    def _autocast(self):
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=torch.float16)

    @torch.inference_mode()
    def classes(self, window: torch.Tensor, class_ids: Sequence[int]) -> torch.Tensor:
        """Logits ``[C, X, Y, Z]`` (float32, CPU) of ``class_ids`` on ``window`` ``[1, 1, X, Y, Z]``
        (scaled intensities); one forward of the encoder and the class head."""
        vector = torch.tensor([[int(c)] for c in class_ids], device=self.device)
        with self._autocast():
            out = self.model(window.to(self.device), class_vector=vector, transpose=True)
        return out[0].float().cpu()

    def __call__(self, *args, **kwargs):
        """The raw network under this device's autocast (used as the predictor of
        ``monai.apps.vista3d.inferer.point_based_window_inferer``)."""
        with torch.inference_mode(), self._autocast():
            return self.model(*[a.to(self.device) if isinstance(a, torch.Tensor) else a for a in args],
                              **{k: v.to(self.device) if isinstance(v, torch.Tensor) else v
                                 for k, v in kwargs.items()}).float()


def load_network(path: Path, device: str = "cpu", amp: Optional[bool] = None) -> Vista3DNetwork:
    """Build vista3d132, load ``path`` strictly, move it to ``device``."""
    state = read_state_dict(Path(path))  # before building: a bad file fails fast
    model = build_network()
    check_state_dict(model, state, Path(path))
    model.load_state_dict(state, strict=True)
    network = Vista3DNetwork(model, device, amp)
    if network.device.type == "cpu":
        log.warning("vista3d runs on the CPU in float32: expect tens of seconds per 128^3 window")
    return network


def as_window(array: np.ndarray) -> torch.Tensor:
    """``[1, 1, X, Y, Z]`` float32 tensor from a numpy window in MONAI order (X, Y, Z)."""
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
