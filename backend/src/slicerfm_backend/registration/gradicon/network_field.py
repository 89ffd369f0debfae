"""The network's map ``phi_AB`` as a SlicerFM :class:`~..base.DisplacementField`.

Geometry (all index vectors in numpy ``(k, j, i)`` order):

- A network voxel ``q`` of a ``D``-voxel axis covers image index ``(q + 0.5) * N / D - 0.5``
  of the image's ``N``-voxel axis (the ``align_corners=False`` resize), in both images.
- ``phi_AB`` maps a fixed-network voxel ``q`` to the moving-network position
  ``q + u(q)``, with ``u = (phi_AB(identity) - identity) * (D - 1)`` in network voxels;
  between voxels ``u`` is interpolated trilinearly, clamped at the border (what ITK's
  displacement-field transform does inside the grid).
- The moving point is then ``moving_ijk_to_ras`` applied to the moving index of ``q + u(q)``,
  and the RAS displacement is that point minus the fixed point: fixed ``x`` -> moving
  ``x + d(x)``, the SlicerFM convention (:mod:`..base`).

This is the same mapping as the package's ITK composite transform (``create_itk_transform``:
to network space, displacement field, back to physical space), computed directly in RAS.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from ..base import DisplacementField

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


def field_from_network(displacement, fixed_shape: Sequence[int], fixed_ijk_to_ras: np.ndarray,
                       moving_shape: Sequence[int], moving_ijk_to_ras: np.ndarray,
                       output_grid: str = "fixed") -> DisplacementField:
    """The RAS displacement field for network displacement ``u`` (``[3, D0, D1, D2]`` tensor).

    ``output_grid``: "fixed" (the fixed image's grid, ``fixed_shape`` K, J, I) or "native"
    (the network grid laid over the fixed image, see :func:`native_ijk_to_ras`).

    On the fixed grid, voxel ``g`` sits at network position ``q = (g + 0.5) * D / N - 0.5``,
    which is exactly where a trilinear ``align_corners=False`` resize of ``u`` to the fixed
    shape samples (clamped at the border), so ``u`` is brought to the fixed grid that way.
    The rest is affine: ``d(g) = L g + c + M u(g)`` with ``M`` the network-voxel -> moving-RAS
    axes; it is evaluated slab by slab as per-axis terms.
    """
    import torch
    import torch.nn.functional as F

    network_shape = np.asarray(displacement.shape[1:], dtype=np.float64)
    fixed_shape_a = np.asarray(fixed_shape, dtype=np.float64)
    moving_shape_a = np.asarray(moving_shape, dtype=np.float64)
    if output_grid == "fixed":
        grid_shape: Tuple[int, ...] = tuple(int(n) for n in fixed_shape_a)
        grid_to_ras = np.asarray(fixed_ijk_to_ras, dtype=np.float64)
        s, c = network_shape / fixed_shape_a, 0.5 * network_shape / fixed_shape_a - 0.5
    elif output_grid == "native":
        grid_shape = tuple(int(n) for n in network_shape)
        grid_to_ras = native_ijk_to_ras(fixed_ijk_to_ras, fixed_shape_a, network_shape)
        s, c = np.ones(3), np.zeros(3)
    else:
        raise ValueError(f"output_grid must be 'fixed' or 'native', got {output_grid!r}")

    # Network position (k, j, i) -> moving RAS: moving index = (q + 0.5) * N_m / D - 0.5.
    to_moving = moving_shape_a / network_shape
    moving_ras = np.asarray(moving_ijk_to_ras, dtype=np.float64)
    net_to_ras = moving_ras[:3, :3][:, ::-1] * to_moving[None, :]
    net_offset = moving_ras[:3, :3][:, ::-1] @ (0.5 * to_moving - 0.5) + moving_ras[:3, 3]
    grid_axes = grid_to_ras[:3, :3][:, ::-1]  # grid index (k, j, i) -> RAS
    # d = net_to_ras @ (g * s + c + u) + net_offset - (grid_axes @ g + origin)
    linear = net_to_ras * s[None, :] - grid_axes
    constant = net_to_ras @ c + net_offset - grid_to_ras[:3, 3]

    u = displacement.float()
    out = np.empty(grid_shape + (3,), dtype=np.float32)
    plane = grid_shape[1] * grid_shape[2]
    rows = max(1, SLAB_VOXELS // plane)
    device = u.device
    per_axis = [torch.as_tensor(np.arange(n)[:, None] * linear[:, axis][None, :], dtype=torch.float32,
                                device=device) for axis, n in enumerate(grid_shape)]  # [n, 3] each
    base = (per_axis[1][:, None, :] + per_axis[2][None, :, :]
            + torch.as_tensor(constant, dtype=torch.float32, device=device))  # [J, I, 3]
    matrix = torch.as_tensor(net_to_ras.T.copy(), dtype=torch.float32, device=device)
    for k0 in range(0, grid_shape[0], rows):
        k1 = min(grid_shape[0], k0 + rows)
        if output_grid == "native":
            u_slab = u[:, k0:k1]
        else:
            u_slab = _resize_rows(u, grid_shape, k0, k1, F)
        d = torch.einsum("ckji,cr->kjir", u_slab, matrix)
        d += base[None] + per_axis[0][k0:k1, None, None, :]
        out[k0:k1] = d.cpu().numpy()
    return DisplacementField(out, grid_to_ras.copy())


def _resize_rows(u, grid_shape, k0, k1, F):
    """Rows ``k0:k1`` of ``u`` resized to ``grid_shape`` (trilinear, align_corners=False),
    computed from the network planes those rows read (the same values as a full resize)."""
    import math

    n0, size0 = u.shape[1], grid_shape[0]
    scale = n0 / size0
    first = max(0, math.floor((k0 + 0.5) * scale - 0.5))
    last = min(n0 - 1, math.floor((k1 - 1 + 0.5) * scale - 0.5) + 1)
    if k0 == 0 and k1 == size0:
        return F.interpolate(u[None], size=tuple(grid_shape), mode="trilinear", align_corners=False)[0]
    # In-plane resize of the planes needed, then linear interpolation along k by hand.
    planes = F.interpolate(u[:, first:last + 1], size=tuple(grid_shape[1:]), mode="bilinear",
                           align_corners=False)
    import torch

    rows = torch.arange(k0, k1, dtype=torch.float64)
    position = ((rows + 0.5) * scale - 0.5).clamp(min=0.0)
    lower = position.floor().long().clamp(max=n0 - 1)
    upper = (lower + 1).clamp(max=n0 - 1)
    weight = (position - lower.double()).to(u.dtype).to(u.device)[None, :, None, None]
    return planes[:, lower - first] * (1 - weight) + planes[:, upper - first] * weight
