"""Test helpers for the GradICON engines: synthetic pairs, random-weight checkpoints in the
released layout, a small network of the same family for fast IO tests, and the package's own
reference pipeline (``unigradicon.preprocess`` + ``icon_registration.itk_wrapper.register_pair``).
"""

from pathlib import Path

import numpy as np
import torch

from slicerfm_backend.imaging import sitk_geometry_from_ijk_to_ras

LPS = np.array([-1.0, -1.0, 1.0])
SMALL_SHAPE = (24, 24, 24)


def blob_image(shape, centre, radius, seed, amplitude=100.0, offset=0.0):
    """``(K, J, I)`` float32: a Gaussian blob plus a ramp and noise (no flat regions)."""
    rng = np.random.default_rng(seed)
    k, j, i = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    dist2 = (k - centre[0]) ** 2 + (j - centre[1]) ** 2 + (i - centre[2]) ** 2
    image = amplitude * np.exp(-dist2 / radius ** 2) + 0.3 * i + offset + rng.normal(0, 2.0, shape)
    return image.astype(np.float32)


def oblique_geometry(spacing_ijk, origin_ras, angle_rad):
    """4x4 ijk_to_ras: a rotation about S times the spacing, plus the origin."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    matrix = np.eye(4)
    matrix[:3, :3] = rotation @ np.diag(spacing_ijk)
    matrix[:3, 3] = origin_ras
    return matrix


def a_pair():
    """``(fixed, fixed_ijk_to_ras, moving, moving_ijk_to_ras)``: two blobs on different,
    anisotropic, rotated grids of different shapes."""
    fixed = blob_image((30, 36, 28), (15, 17, 13), 8.0, seed=1)
    moving = blob_image((34, 30, 38), (17, 14, 20), 9.0, seed=2)
    return (fixed, oblique_geometry((1.5, 1.2, 2.0), (-30.0, -20.0, 10.0), 0.2),
            moving, oblique_geometry((1.3, 1.4, 1.6), (-28.0, -25.0, 8.0), -0.1))


def randomise(network, last_std, seed=0):
    """Give every parameter of ``network.regis_net`` random values (the package zeroes each
    U-Net's last convolution, which would make the map the identity); ``last_std`` scales
    those last convolutions and so the size of the displacements."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in network.regis_net.named_parameters():
            if "lastConv" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * last_std)
            elif "batchNorms" not in name:
                parameter.add_(torch.randn(parameter.shape, generator=generator) * 1e-3)
    return network


def save_checkpoint(network, path: Path) -> Path:
    """``network.regis_net``'s state dict in the released layout (a plain torch state dict)."""
    torch.save(network.regis_net.state_dict(), str(path))
    return path


def small_network(shape=SMALL_SHAPE, similarity="lncc"):
    """A GradICON network of the package's own classes (``GradientICONSparse`` around a
    two-level ``UNet2``), cheap enough for instance optimisation in a test."""
    import icon_registration as icon
    import icon_registration.networks as networks
    import unigradicon

    inner = icon.FunctionFromVectorField(networks.UNet2(2, [[2, 8, 16], [8, 8]], 3))
    network = unigradicon.GradientICONSparse(inner, unigradicon.make_sim(similarity), lmbda=1.5)
    network.assign_identity_map([1, 1, *shape])
    return network


def to_itk(array, ijk_to_ras):
    """An ITK float image (LPS geometry) for a ``(K, J, I)`` array on a RAS grid."""
    import itk

    image = itk.image_from_array(np.ascontiguousarray(array, dtype=np.float32))
    spacing, origin, direction = sitk_geometry_from_ijk_to_ras(ijk_to_ras)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(itk.matrix_from_array(np.array(direction).reshape(3, 3)))
    return image


def reference_transform(network, fixed, fixed_ijk_to_ras, moving, moving_ijk_to_ras,
                        modality="mri", io_steps=None, fixed_mask=None, moving_mask=None):
    """The package's pipeline: ``unigradicon.preprocess`` then ``register_pair``; returns
    ``phi_AB`` (ITK, LPS, fixed point -> moving point)."""
    import icon_registration.itk_wrapper as itk_wrapper
    import unigradicon

    def mask_image(mask, geometry):
        return None if mask is None else to_itk(mask.astype(np.float32), geometry)

    fixed_in = unigradicon.preprocess(to_itk(fixed, fixed_ijk_to_ras), modality,
                                      mask_image(fixed_mask, fixed_ijk_to_ras))
    moving_in = unigradicon.preprocess(to_itk(moving, moving_ijk_to_ras), modality,
                                       mask_image(moving_mask, moving_ijk_to_ras))
    phi_ab, _ = itk_wrapper.register_pair(network, moving_in, fixed_in, finetune_steps=io_steps)
    return phi_ab


def map_points(transform, points_ras):
    """An ITK transform (LPS) applied to ``[N, 3]`` RAS points; ``[N, 3]`` RAS."""
    import itk

    out = [np.array(transform.TransformPoint(itk.Point[itk.D, 3]((p * LPS).tolist()))) * LPS
           for p in np.asarray(points_ras, dtype=np.float64)]
    return np.array(out)


def field_points(field, index_kji):
    """``(fixed RAS points, mapped RAS points)`` of a field at integer voxels ``[N, 3]`` (k, j, i)."""
    index_kji = np.asarray(index_kji)
    homogeneous = np.c_[index_kji[:, ::-1], np.ones(len(index_kji))]
    points = (np.asarray(field.ijk_to_ras) @ homogeneous.T).T[:, :3]
    return points, points + field.vectors_ras[index_kji[:, 0], index_kji[:, 1], index_kji[:, 2]]


def random_voxels(shape, count, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, n, count) for n in shape], axis=1)


def state_copy(network):
    """A detached copy of every tensor in ``network.state_dict()``."""
    return {k: v.detach().clone() for k, v in network.state_dict().items()}


def same_state(network, state) -> bool:
    current = network.state_dict()
    return current.keys() == state.keys() and all(torch.equal(current[k], state[k]) for k in state)


def use_small_network(monkeypatch, folder: Path, last_std=5e-2) -> Path:
    """Make the engines build :func:`small_network` (at ``SMALL_SHAPE`` by default) and write
    a random checkpoint for it in the released layout; returns the checkpoint's path."""
    from slicerfm_backend.registration.gradicon import model as gradicon_model

    def build(shape=SMALL_SHAPE, similarity="lncc"):
        return small_network(tuple(shape), similarity)

    monkeypatch.setattr(gradicon_model, "MIN_SIDE", 8)
    monkeypatch.setattr(gradicon_model, "NETWORK_SHAPE", SMALL_SHAPE)
    monkeypatch.setattr(gradicon_model, "build_network", build)
    torch.manual_seed(1)
    return save_checkpoint(randomise(build(), last_std=last_std, seed=1), Path(folder) / "small.trch")
