"""Geometry on the wire: validation of ijk_to_ras and content ids."""

import numpy as np
import pytest

from slicerfm_client import geometry


def an_oblique_matrix():
    angle = np.deg2rad(30)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    matrix = np.eye(4)
    matrix[:3, :3] = rotation @ np.diag([0.7, 0.9, 3.0])
    matrix[:3, 3] = [1, 2, 3]
    return matrix


def test_an_oblique_anisotropic_grid_is_accepted_and_its_spacing_is_read_in_kji_order():
    matrix = geometry.validate_ijk_to_ras(an_oblique_matrix())
    assert geometry.spacing_kji(matrix) == pytest.approx((3.0, 0.9, 0.7))


@pytest.mark.parametrize("change, message", [
    (lambda m: m.__setitem__((0, 0), np.nan), "NaN"),
    (lambda m: m.__setitem__((slice(0, 3), 1), 0.0), "singular"),
    (lambda m: m.__setitem__((slice(0, 3), 1), m[:3, 0] * 2), "singular"),
    (lambda m: m.__setitem__((0, 1), m[0, 1] + 0.3), "not orthogonal"),
    (lambda m: m.__setitem__((3, 0), 1.0), "affine"),
])
def test_unusable_geometries_are_rejected_with_the_reason(change, message):
    matrix = an_oblique_matrix()
    change(matrix)
    with pytest.raises(geometry.GeometryError, match=message):
        geometry.validate_ijk_to_ras(matrix)


def test_a_matrix_of_the_wrong_shape_is_rejected():
    with pytest.raises(geometry.GeometryError, match="4x4"):
        geometry.validate_ijk_to_ras(np.eye(3))


def test_the_content_id_depends_on_voxels_geometry_dtype_and_shape_only():
    base = geometry.image_id("int16", (2, 3, 4), np.eye(4), "a" * 64)
    float_noise = np.eye(4)
    float_noise[0, 3] += 1e-9  # below the 1e-6 mm rounding: the same grid
    assert base == geometry.image_id("int16", [2, 3, 4], float_noise, "a" * 64)
    shifted = np.eye(4)
    shifted[0, 3] = 1
    assert len({base,
                geometry.image_id("int16", (2, 3, 4), shifted, "a" * 64),
                geometry.image_id("int32", (2, 3, 4), np.eye(4), "a" * 64),
                geometry.image_id("int16", (4, 3, 2), np.eye(4), "a" * 64),
                geometry.image_id("int16", (2, 3, 4), np.eye(4), "b" * 64)}) == 5


def test_the_canonical_geometry_is_a_plain_string_any_language_can_reproduce():
    matrix = np.diag([-0.8, -0.8, 2.5, 1.0])
    matrix[0, 3] = -1e-9  # rounds to negative zero, written as 0.000000
    assert geometry.canonical_geometry("int16", (2, 3, 4), matrix) == (
        b"int16|2,3,4|-0.800000,0.000000,0.000000,0.000000,0.000000,-0.800000,0.000000,0.000000,"
        b"0.000000,0.000000,2.500000,0.000000,0.000000,0.000000,0.000000,1.000000")


def test_boxes_are_start_inclusive_stop_exclusive_and_their_helpers_agree():
    mask = np.zeros((6, 7, 8), bool)
    mask[1:3, 2:5, 3:4] = True
    box = geometry.tight_bbox(mask)
    assert box == ((1, 2, 3), (3, 5, 4)) and geometry.tight_bbox(np.zeros((2, 2, 2), bool)) is None
    assert mask[geometry.bbox_slices(box)].all() and geometry.bbox_shape(box) == (2, 3, 1)
    assert geometry.clip_bbox(((-2, 0, 5), (3, 9, 20)), mask.shape) == ((0, 0, 5), (3, 7, 8))
    other = ((2, 0, 0), (4, 3, 4))
    assert geometry.bbox_union(box, other) == ((1, 0, 0), (4, 5, 4))
    assert geometry.bbox_intersection(box, other) == ((2, 2, 3), (3, 3, 4))
    assert geometry.bbox_intersection(box, ((5, 5, 5), (6, 6, 6))) is None
    outer = geometry.bbox_union(box, other)
    block = np.zeros(geometry.bbox_shape(outer), bool)
    block[geometry.slices_within(box, outer)] = True
    assert block.sum() == mask.sum() and block[0, 2, 3] and not block[0, 0, 0]
