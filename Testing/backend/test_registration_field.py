"""Displacement-field helpers: Jacobian determinant in physical space, warping convention,
SimpleITK round trip (LPS <-> RAS)."""

import numpy as np
import pytest

from slicerfm_backend.registration import field as F
from slicerfm_backend.registration.base import DisplacementField


def oblique_grid():
    angle = np.deg2rad(20)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    m = np.eye(4)
    m[:3, :3] = rotation @ np.diag([0.8, 1.3, 2.5])
    m[:3, 3] = [10.0, -20.0, 5.0]
    return m


def ras_points(shape, m):
    k, j, i = np.indices(shape)
    ijk = np.stack([i, j, k, np.ones_like(i)], axis=-1).astype(float)
    return (ijk @ m.T)[..., :3]


@pytest.mark.parametrize("linear", [np.diag([1.2, 0.7, 1.1]),
                                    np.array([[1.0, 0.3, 0.0], [0.1, 0.9, 0.2], [0.0, -0.2, 1.4]]),
                                    np.diag([-0.5, 1.0, 1.0])])
def test_an_affine_map_has_its_determinant_everywhere_on_an_oblique_grid(linear):
    shape, m = (12, 14, 16), oblique_grid()
    x = ras_points(shape, m)
    vectors = (x @ linear.T - x).astype(np.float32)  # x -> linear @ x
    det = F.jacobian_determinant(DisplacementField(vectors, m))
    np.testing.assert_allclose(det, np.linalg.det(linear), rtol=1e-4, atol=1e-4)
    folding = F.negative_jacobian_fraction(DisplacementField(vectors, m))
    assert folding == (1.0 if np.linalg.det(linear) <= 0 else 0.0)


def test_the_folding_fraction_counts_only_inside_the_mask():
    shape, m = (10, 10, 10), np.eye(4)
    x = ras_points(shape, m)
    vectors = np.zeros(shape + (3,), np.float32)
    vectors[:, :, 5:, 0] = -2.0 * x[:, :, 5:, 0]  # x -> -x along R on the right half: folds
    mask = np.zeros(shape, bool)
    mask[:, :, :4] = True
    field = DisplacementField(vectors, m)
    assert F.negative_jacobian_fraction(field, mask) == 0.0
    assert 0.5 <= F.negative_jacobian_fraction(field) <= 0.6  # columns 5-9, and 4 by central differences
    with pytest.raises(ValueError, match="mask shape"):
        F.negative_jacobian_fraction(field, mask[:5])


def test_warping_reads_the_moving_image_at_x_plus_d_and_the_sitk_round_trip_is_exact():
    shape, m = (12, 14, 16), oblique_grid()
    x = ras_points(shape, m)
    moving = (x @ np.array([1.0, 2.0, -0.5]) + 100.0).astype(np.float32)  # linear in RAS
    shift = np.array([1.5, -0.8, 2.0], np.float32)
    field = DisplacementField(np.broadcast_to(shift, shape + (3,)).copy(), m)
    warped = F.warp(moving, m, field)
    expected = ((x + shift) @ np.array([1.0, 2.0, -0.5]) + 100.0)
    inside = (slice(3, -3),) * 3
    np.testing.assert_allclose(warped[inside], expected[inside], atol=1e-3)
    again = F.resample_field(field, m, shape)  # through a SimpleITK (LPS) displacement transform
    np.testing.assert_allclose(again.ijk_to_ras, m, atol=1e-9)
    np.testing.assert_allclose(again.vectors_ras, field.vectors_ras, atol=1e-5)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_slab_wise_determinant_equals_a_whole_grid_reference(workers):
    """Random field on an oblique grid whose k size is not a multiple of the slab: the
    threaded slab computation equals np.linalg.det of the whole-grid Jacobian."""
    rng = np.random.default_rng(1)
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    m = np.eye(4)
    m[:3, :3] = rotation @ np.diag([0.8, 1.3, 2.5])
    vectors = rng.normal(0, 0.7, (35, 9, 12, 3)).astype(np.float32)
    by_index = [np.gradient(vectors.astype(np.float64), axis=axis) for axis in (2, 1, 0)]
    to_phys = np.linalg.inv(m[:3, :3])
    jac = np.einsum("nkjic,nd->kjicd", np.stack(by_index), to_phys) + np.eye(3)
    reference = np.linalg.det(jac)
    det = F.jacobian_determinant(DisplacementField(vectors, m), workers=workers)
    np.testing.assert_allclose(det, reference, atol=1e-4)
    mask = rng.random(vectors.shape[:3]) > 0.5
    assert F.negative_jacobian_fraction(DisplacementField(vectors, m), mask, workers) == pytest.approx(
        float(np.mean(reference[mask] <= 0)))
    assert 0 < float(np.mean(reference <= 0)) < 1
