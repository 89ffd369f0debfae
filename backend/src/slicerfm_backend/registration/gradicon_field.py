"""The network's map ``phi_AB`` as a SlicerFM :class:`~.base.DisplacementField`.

Geometry (all index vectors in numpy ``(k, j, i)`` order):

- A network voxel ``q`` of a ``D``-voxel axis covers image index ``(q + 0.5) * N / D - 0.5``
  of the image's ``N``-voxel axis (the ``align_corners=False`` resize), in both images.
- ``phi_AB`` maps a fixed-network voxel ``q`` to the moving-network position
  ``q + u(q)``, with ``u = (phi_AB(identity) - identity) * (D - 1)`` in network voxels;
  between voxels ``u`` is interpolated trilinearly, clamped at the border (what ITK's
  displacement-field transform does inside the grid).
- The moving point is then ``moving_ijk_to_ras`` applied to the moving index of ``q + u(q)``,
  and the RAS displacement is that point minus the fixed point: fixed ``x`` -> moving
  ``x + d(x)``, the SlicerFM convention (:mod:`.base`).

This is the same mapping as the package's ITK composite transform (``create_itk_transform``:
to network space, displacement field, back to physical space), computed directly in RAS.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from .base import DisplacementField

SLAB_VOXELS = 1 << 22  # fixed-grid voxels converted per slab (bounds temporary memory)


def network_displacement(phi, identity):
    """``[3, D0, D1, D2]`` float32 tensor: ``u`` in network voxels from ``phi_AB(identity)``."""
    import torch

    sides = torch.tensor(identity.shape[2:], dtype=phi.dtype, device=phi.device) - 1
    return ((phi - identity)[0] * sides[:, None, None, None]).float()


def native_ijk_to_ras(fixed_ijk_to_ras: np.ndarray, fixed_shape: Sequence[int],
                      network_shape: Sequence[int]) -> np.ndarray:
    """4x4 ``(i, j, k, 1)`` -> RAS of the network grid laid over the fixed image."""
    scale_kji = np.asarray(fixed_shape, dtype=np.float64) / np.asarray(network_shape, dtype=np.float64)
    scale_ijk = scale_kji[::-1]
    native_to_fixed = np.eye(4)
    native_to_fixed[:3, :3] = np.diag(scale_ijk)
    native_to_fixed[:3, 3] = 0.5 * scale_ijk - 0.5
    return np.asarray(fixed_ijk_to_ras, dtype=np.float64) @ native_to_fixed


def _index_to_network(index_kji, image_shape, network_shape):
    """Image index -> network voxel, per axis (broadcasting over the leading dimensions)."""
    scale = network_shape / image_shape
    return (index_kji + 0.5) * scale - 0.5


def _sample(displacement, points_kji):
    """``u`` at network positions ``points_kji`` (``[M, 3]``, k, j, i): ``[M, 3]``."""
    import torch
    import torch.nn.functional as F

    sides = torch.tensor(displacement.shape[1:], dtype=points_kji.dtype, device=points_kji.device)
    grid = (points_kji / (sides - 1) * 2 - 1).flip(-1)  # grid_sample wants (x, y, z) = (i, j, k)
    sampled = F.grid_sample(displacement[None], grid[None, :, None, None, :].to(displacement.dtype),
                            mode="bilinear", padding_mode="border", align_corners=True)
    return sampled[0, :, :, 0, 0].T


def field_from_network(displacement, fixed_shape: Sequence[int], fixed_ijk_to_ras: np.ndarray,
                       moving_shape: Sequence[int], moving_ijk_to_ras: np.ndarray,
                       output_grid: str = "fixed") -> DisplacementField:
    """The RAS displacement field for network displacement ``u`` (``[3, D0, D1, D2]`` tensor).

    ``output_grid``: "fixed" (the fixed image's grid, ``fixed_shape`` K, J, I) or "native"
    (the network grid laid over the fixed image, see :func:`native_ijk_to_ras`).
    """
    import torch

    device = displacement.device
    network_shape = np.asarray(displacement.shape[1:], dtype=np.float64)
    fixed_shape = np.asarray(fixed_shape, dtype=np.float64)
    moving_shape = np.asarray(moving_shape, dtype=np.float64)
    if output_grid == "fixed":
        grid_shape: Tuple[int, ...] = tuple(int(n) for n in fixed_shape)
        grid_to_ras = np.asarray(fixed_ijk_to_ras, dtype=np.float64)
    elif output_grid == "native":
        grid_shape = tuple(int(n) for n in network_shape)
        grid_to_ras = native_ijk_to_ras(fixed_ijk_to_ras, fixed_shape, network_shape)
    else:
        raise ValueError(f"output_grid must be 'fixed' or 'native', got {output_grid!r}")

    # moving index (k, j, i) = network position * scale + offset; RAS = M @ (i, j, k) + t
    to_moving = moving_shape / network_shape
    moving_ras = np.asarray(moving_ijk_to_ras, dtype=np.float64)
    # Composite affine: network position (k, j, i) -> moving RAS.
    net_to_ras = moving_ras[:3, :3][:, ::-1] * to_moving[None, :]
    net_offset = moving_ras[:3, :3][:, ::-1] @ (0.5 * to_moving - 0.5) + moving_ras[:3, 3]
    grid_axes = grid_to_ras[:3, :3][:, ::-1]  # grid index (k, j, i) -> RAS
    # RAS displacement = net_to_ras @ (q + u) + net_offset - (grid_axes @ g + grid_origin),
    # with q = g * s + c: linear in g plus net_to_ras @ u.
    if output_grid == "fixed":
        s, c = network_shape / fixed_shape, 0.5 * network_shape / fixed_shape - 0.5
    else:
        s, c = np.ones(3), np.zeros(3)
    linear = net_to_ras * s[None, :] - grid_axes
    constant = net_to_ras @ c + net_offset - grid_to_ras[:3, 3]

    dtype = torch.float64 if device.type == "cpu" else torch.float32
    to_t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)  # noqa: E731
    net_to_ras_t, linear_t, constant_t = to_t(net_to_ras), to_t(linear), to_t(constant)
    s_t, c_t = to_t(s), to_t(c)
    out = np.empty(grid_shape + (3,), dtype=np.float32)
    plane = grid_shape[1] * grid_shape[2]
    rows = max(1, SLAB_VOXELS // plane)
    jj, ii = torch.meshgrid(torch.arange(grid_shape[1], device=device, dtype=dtype),
                            torch.arange(grid_shape[2], device=device, dtype=dtype), indexing="ij")
    for k0 in range(0, grid_shape[0], rows):
        k1 = min(grid_shape[0], k0 + rows)
        kk = torch.arange(k0, k1, device=device, dtype=dtype)[:, None, None].expand(-1, *jj.shape)
        g = torch.stack([kk, jj.expand_as(kk), ii.expand_as(kk)], dim=-1).reshape(-1, 3)
        q = g * s_t + c_t
        u = _sample(displacement, q).to(dtype)
        d = g @ linear_t.T + constant_t + u @ net_to_ras_t.T
        out[k0:k1] = d.reshape(k1 - k0, grid_shape[1], grid_shape[2], 3).float().cpu().numpy()
    return DisplacementField(out, grid_to_ras)
