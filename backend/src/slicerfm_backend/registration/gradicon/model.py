"""The uniGradICON / multiGradICON network from pip ``unigradicon``, built without the
package's downloader, and its released checkpoint loaded strictly.

The released files (``Step_2_final.trch``, docs/MODELS.md §3) hold a plain torch state dict
for ``regis_net`` of ``unigradicon.make_network([1, 1, 175, 175, 175], include_last_step=True)``
(≈70.7 M parameters; multiGradICON has the same architecture). Every way the file can be
wrong -- unreadable or truncated, another layout, missing or unexpected keys, a tensor of the
wrong shape -- raises :class:`CheckpointError` naming the file, the problem and the fix.

Network tensors: images ``[1, 1, D0, D1, D2]`` in numpy ``(k, j, i)`` order of the images'
arrays, resized to the network shape; ``phi_AB(identity_map)`` is ``[1, 3, D0, D1, D2]``,
component ``c`` the coordinate along tensor axis ``c``, in units where the grid spans [0, 1]
(voxel ``q`` at ``q / (D - 1)``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Sequence, Tuple

from ...errors import CheckpointError, EngineError
from ...weights.state_dict import load_checkpoint, state_dict_problems

NETWORK_SHAPE = (175, 175, 175)
MIN_SIDE = 66  # the U-Nets pool five times below the quarter-resolution step



def check_shape(shape: Sequence[int]) -> Tuple[int, int, int]:
    """``shape`` as three ints; EngineError when it is not 3-D or too small for the network."""
    try:
        out = tuple(int(n) for n in shape)
    except (TypeError, ValueError):
        raise EngineError(f"network_shape must be three integers, got {shape!r}") from None
    if len(out) != 3 or min(out) < MIN_SIDE:
        raise EngineError(f"network_shape must be three sides of at least {MIN_SIDE} voxels, got {shape!r}")
    return out


def build_network(shape: Sequence[int] = NETWORK_SHAPE, similarity: str = "lncc"):
    """The package's network (``GradientICONSparse`` around ``regis_net``) for images of
    ``shape`` (D0, D1, D2), random weights, the IO similarity ``similarity``; nothing is
    downloaded (``make_network`` only builds)."""
    import unigradicon

    return unigradicon.make_network([1, 1, *check_shape(shape)], include_last_step=True,
                                    loss_fn=make_similarity(similarity))


def make_similarity(similarity: str):
    """The package's IO similarity: "lncc" (LNCC, sigma 5), "lncc2" (squared LNCC) or "mind"
    (MIND-SSC); EngineError for anything else."""
    import unigradicon

    if similarity not in ("lncc", "lncc2", "mind"):
        raise EngineError(f"similarity {similarity!r} unknown; use lncc, lncc2 or mind")
    return unigradicon.make_sim(similarity)


def read_state_dict(path: Path, fix: str) -> Dict[str, Any]:
    """The ``regis_net`` state dict in the file at ``path`` (tensors on the CPU)."""
    import torch

    state = load_checkpoint(path, fix)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        found = type(state).__name__ if not isinstance(state, dict) else sorted(state)[:5]
        raise CheckpointError(f"checkpoint {path} is not a state dict of tensors (found {found}); {fix}")
    return state


def load_regis_net(network, path: Path, fix: str) -> None:
    """Load the checkpoint at ``path`` into ``network.regis_net`` after checking that it has
    exactly the network's keys and shapes."""
    state = read_state_dict(path, fix)
    problems = state_dict_problems(network.regis_net.state_dict(), state)
    if problems:
        raise CheckpointError(f"checkpoint {path} does not fit the GradICON network: "
                              f"{'; '.join(problems)}; is it Step_2_final.trch? {fix}")
    network.regis_net.load_state_dict(state)


def use_device(device: str):
    """A ``torch.device`` for ``device`` ("cpu", "cuda", "cuda:N"), also set as
    ``icon_registration.config.device`` (the package draws its random ICON samples there;
    the setting is process-wide, so one process serves these engines on one device)."""
    import torch
    from icon_registration import config

    target = torch.device(device)
    if target.type == "cuda" and not torch.cuda.is_available():
        raise EngineError(f"device {device} requested but CUDA is not available")
    config.device = target
    return target


def load_network(path: Path, device: str, shape: Sequence[int], fix: str):
    """The network for ``shape`` with the checkpoint at ``path``, in eval mode on ``device``."""
    network = build_network(shape)
    load_regis_net(network, path, fix)
    network.to(use_device(device))
    network.eval()
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    return network
