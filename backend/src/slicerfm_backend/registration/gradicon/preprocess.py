"""uniGradICON input preparation (docs/MODELS.md §3): intensities to [0, 1], optional mask,
resize to the network grid.

- CT: clamp to [-1000, 1000] HU, then map linearly to [0, 1].
- MR and "other": clamp to [image minimum, 99th percentile], then map to [0, 1]. The
  percentile is the package's: the ``int(0.99 * N)``-th smallest of the N voxels (1-based).
- A mask (boolean, same grid) multiplies the normalised image (False voxels become 0).
- The arithmetic is the package's (clamp in float32, ``(x - low) / (high - low)`` in float64,
  stored as float32), so both give bit-identical inputs; instance optimisation with Adam is
  sensitive enough for that to matter.
- Resize: trilinear, ``align_corners=False``, from the image's ``(K, J, I)`` array to the
  network shape ``(D0, D1, D2)``, so network voxel ``q`` along an axis of N voxels sits at
  image index ``(q + 0.5) * N / D - 0.5``.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from slicerfm_client import protocol

from ...errors import EngineError

CT_WINDOW = (-1000.0, 1000.0)
MR_UPPER_QUANTILE = 0.99
MODALITIES = protocol.MODALITIES
SLAB_PLANES = 16


def intensity_window(array: np.ndarray, modality: str) -> Tuple[float, float]:
    """``(low, high)`` clamping window of ``array`` for ``modality``; EngineError when the image
    is empty, holds NaN/inf, or has no intensity range."""
    if modality not in MODALITIES:
        raise EngineError(f"modality {modality!r} unknown; use one of {', '.join(MODALITIES)}")
    if array.ndim != 3 or array.size == 0:
        raise EngineError(f"expected a non-empty 3-D image, got shape {array.shape}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise EngineError("the image contains NaN or infinite voxels; replace them before registering")
    if modality == "CT":
        low, high = CT_WINDOW
    else:
        flat = array.reshape(-1)
        rank = max(1, min(int(MR_UPPER_QUANTILE * flat.size), flat.size))  # 1-based, as upstream
        low = float(flat.min())
        high = float(np.partition(flat, rank - 1)[rank - 1])
    if not high > low:
        raise EngineError(f"the {modality} image has no intensity range to normalise "
                          f"(window [{low:g}, {high:g}]); is it empty or constant?")
    return float(low), float(high)


def normalise(array: np.ndarray, modality: str, mask: Optional[np.ndarray] = None) -> np.ndarray:
    """``(K, J, I)`` float32 in [0, 1]: clamped and rescaled, times ``mask`` when given."""
    low, high = intensity_window(array, modality)
    shift, scale = -low, 1.0 / (high - low)
    out = np.empty(array.shape, dtype=np.float32)
    for k in range(0, array.shape[0], SLAB_PLANES):  # float64 arithmetic, float32 result
        slab = np.clip(array[k:k + SLAB_PLANES].astype(np.float32), np.float32(low), np.float32(high))
        out[k:k + SLAB_PLANES] = (slab.astype(np.float64) + shift) * scale
    if mask is not None:
        if mask.shape != array.shape:
            raise EngineError(f"mask shape {mask.shape} differs from the image shape {array.shape}")
        out *= mask.astype(bool)
        if not out.any():
            raise EngineError("the masked image is empty (the mask selects no voxel above the window's low end)")
    return out


def to_network(normalised: np.ndarray, shape: Sequence[int], device):
    """``[1, 1, D0, D1, D2]`` float32 tensor on ``device``: ``normalised`` resized trilinearly."""
    import torch
    import torch.nn.functional as F

    tensor = torch.from_numpy(np.ascontiguousarray(normalised, dtype=np.float32))[None, None]
    tensor = tensor.to(device)
    return F.interpolate(tensor, size=tuple(int(n) for n in shape), mode="trilinear", align_corners=False)
