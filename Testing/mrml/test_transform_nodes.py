"""Displacement fields -> grid transform nodes, warped volumes and carried segments.

Convention under test: the field on the fixed grid maps the fixed world point x to the
moving world point x + d(x) (RAS mm), i.e. the grid transform node's transform FROM parent.
"""

import numpy as np
import pytest
import vtk
from logic_helpers import dice
from mrml_registration_pair import (CENTRE, FIXED_GRID, FIXED_SHAPE, SHIFT, add_pair, ball,
                                    grid_points)

from SlicerFMLib.editor_settings import locked_segment_ids, set_segment_locked
from SlicerFMLib.segment_io import apply_mask_update, segment_to_mask
from SlicerFMLib.transform_nodes import (carry_segments, create_grid_transform_node,
                                         displacement_transform, place_registration,
                                         resample_segments, resample_volume)
from SlicerFMLib.volume_io import volume_to_array


def transform_point(transform, point):
    return np.array(transform.TransformPoint(*[float(v) for v in point]))


def world_to_node(node):
    """World RAS -> the node's own frame, straight from MRML (independent of the code under test)."""
    from slicer import vtkMRMLTransformNode

    transform = vtk.vtkGeneralTransform()
    vtkMRMLTransformNode.GetTransformBetweenNodes(None, node.GetParentTransformNode(), transform)
    return transform


@pytest.fixture
def a_registration_pair(a_scene):
    """(fixed volume, moving volume, field (K, J, I, 3), field grid): the moving scan shows
    the fixed scan's object moved by SHIFT, so the exact field is the constant SHIFT."""
    fixed, moving = add_pair(a_scene)
    field = np.broadcast_to(SHIFT, FIXED_SHAPE + (3,)).astype(np.float32)
    return fixed, moving, field, FIXED_GRID


def test_a_known_shift_makes_a_node_that_maps_fixed_points_to_moving_points(a_scene):
    field = np.broadcast_to(SHIFT, FIXED_SHAPE + (3,)).astype(np.float32)
    node = create_grid_transform_node(a_scene.scene, field, FIXED_GRID, "shift")
    assert node.IsA("vtkMRMLGridTransformNode")
    from_parent = node.GetTransformFromParent()
    to_parent = node.GetTransformToParent()
    for kji in [(0, 0, 0), (10, 12, 5), (21, 29, 33), (3.5, 17.25, 20.75)]:
        x = grid_points((1, 1, 1), FIXED_GRID @ np.array(
            [[1, 0, 0, kji[2]], [0, 1, 0, kji[1]], [0, 0, 1, kji[0]], [0, 0, 0, 1]]))[0, 0, 0]
        np.testing.assert_allclose(transform_point(from_parent, x), x + SHIFT, atol=1e-4)
        np.testing.assert_allclose(transform_point(to_parent, x + SHIFT), x, atol=1e-3)


def test_a_varying_field_on_an_oblique_anisotropic_grid_is_interpolated_at_any_point(a_scene):
    """An affine field d(x) = B x + c is reproduced exactly by linear interpolation, so any
    point inside the grid must map to x + B x + c; the grid's i axis is flipped."""
    rng = np.random.default_rng(3)
    matrix = rng.normal(0, 0.03, (3, 3))
    offset = np.array([2.0, -1.0, 3.0])
    points = grid_points(FIXED_SHAPE, FIXED_GRID)
    field = (points @ matrix.T + offset).astype(np.float32)
    node = create_grid_transform_node(a_scene.scene, field, FIXED_GRID)
    transform = node.GetTransformFromParent()
    for _ in range(25):
        kji = rng.uniform([0, 0, 0], np.array(FIXED_SHAPE) - 1)
        x = (FIXED_GRID @ np.array([kji[2], kji[1], kji[0], 1.0]))[:3]
        np.testing.assert_allclose(transform_point(transform, x), x + matrix @ x + offset,
                                   atol=1e-3)


def test_the_moving_volume_keeps_its_linear_parent_and_still_lands_on_x_plus_d(
        a_registration_pair, a_scene, a_parent_transform):
    _, moving, field, grid = a_registration_pair
    parent = a_scene.add_linear_transform(a_parent_transform)
    moving.SetAndObserveTransformNodeID(parent.GetID())
    rng = np.random.default_rng(0)
    matrix = rng.normal(0, 0.02, (3, 3))
    varying = (field + grid_points(FIXED_SHAPE, grid) @ matrix.T).astype(np.float32)
    node = place_registration(moving, varying, grid, "registration")
    assert moving.GetParentTransformNode() is node
    assert node.GetParentTransformNode() is parent
    to_local = world_to_node(moving)
    for kji in [(2, 3, 4), (11, 15, 17), (20, 28, 30)]:
        x = (grid @ np.array([kji[2], kji[1], kji[0], 1.0]))[:3]
        moved = x + varying[kji]
        expected = (np.linalg.inv(a_parent_transform) @ np.append(moved, 1.0))[:3]
        np.testing.assert_allclose(transform_point(to_local, x), expected, atol=1e-3)


def test_hardening_resamples_the_moving_volume_onto_the_fixed_grid(a_registration_pair):
    fixed, moving, field, grid = a_registration_pair
    assert volume_to_array(moving)[0].max() > 900.0
    node = place_registration(moving, field, grid)
    fixed_array, fixed_geometry = volume_to_array(fixed, copy=True)
    assert fixed_array.max() > 900.0
    warped = resample_volume(moving, fixed_array.shape, fixed_geometry, "warped")
    warped_array, warped_geometry = volume_to_array(warped)
    np.testing.assert_allclose(warped_geometry, fixed_geometry)
    assert warped.GetParentTransformNode() is None
    # linear interpolation of a smooth object on a coarse grid: within 3 % of its peak
    assert np.abs(warped_array - fixed_array).max() < 30.0
    moving.SetAndObserveTransformNodeID(None)
    unregistered = resample_volume(moving, fixed_array.shape, fixed_geometry, "unregistered")
    assert np.abs(volume_to_array(unregistered)[0] - fixed_array).max() > 300.0
    # the registration can also be applied to a volume that is not under the node
    again = resample_volume(moving, fixed_array.shape, fixed_geometry, "again", transform_node=node)
    np.testing.assert_allclose(volume_to_array(again)[0], warped_array, atol=1e-3)


def test_a_segment_drawn_on_the_moving_scan_is_carried_onto_the_fixed_scan(
        a_registration_pair, a_scene):
    fixed, moving, field, grid = a_registration_pair
    moving_array, moving_geometry = volume_to_array(moving)
    drawn = a_scene.add_segmentation("organ", "empty", name="on moving")
    organ = ball(moving_array.shape, moving_geometry, CENTRE + SHIFT, 8.0)
    apply_mask_update(drawn, "organ", [[0, 0, 0], list(organ.shape)], organ, moving_geometry)
    drawn.GetSegmentation().GetSegment("organ").SetColor(0.2, 0.7, 0.1)
    set_segment_locked(drawn, "organ")
    node = place_registration(moving, field, grid)
    fixed_array, fixed_geometry = volume_to_array(fixed)

    carried = carry_segments(drawn, node, fixed_array.shape, fixed_geometry)
    target = ball(fixed_array.shape, fixed_geometry, CENTRE, 8.0)
    result = segment_to_mask(carried, "organ", fixed_array.shape, fixed_geometry)
    assert dice(result, target) > 0.85
    segment = carried.GetSegmentation().GetSegment("organ")
    assert segment.GetName() == "organ"
    np.testing.assert_allclose(segment.GetColor(), (0.2, 0.7, 0.1))
    assert locked_segment_ids(carried) == ()            # the copy is ready to be edited
    assert not segment_to_mask(carried, "empty", fixed_array.shape, fixed_geometry).any()
    # without the registration the drawn organ misses the fixed organ
    plain = segment_to_mask(drawn, "organ", fixed_array.shape, fixed_geometry)
    assert dice(plain, target) < 0.2
    # the source is left as it was
    assert drawn.GetParentTransformNode() is None


def test_carrying_works_for_a_segmentation_under_its_own_transform_on_another_grid(
        a_registration_pair, a_scene, a_parent_transform):
    """The segmentation drawn on the moving scan sits under a linear transform (its labelmap
    in that transform's frame): the world position the user saw is what gets carried."""
    fixed, moving, field, grid = a_registration_pair
    parent = a_scene.add_linear_transform(a_parent_transform)
    drawn = a_scene.add_segmentation("organ", name="transformed")
    drawn.SetAndObserveTransformNodeID(parent.GetID())
    moving_array, moving_geometry = volume_to_array(moving)
    organ = ball(moving_array.shape, moving_geometry, CENTRE + SHIFT, 8.0)
    apply_mask_update(drawn, "organ", [[0, 0, 0], list(organ.shape)], organ, moving_geometry)
    node = place_registration(moving, field, grid)
    fixed_array, fixed_geometry = volume_to_array(fixed)
    masks = resample_segments(drawn, fixed_array.shape, fixed_geometry, node)
    assert dice(masks["organ"], ball(fixed_array.shape, fixed_geometry, CENTRE, 8.0)) > 0.85


def test_bad_fields_and_grids_are_refused_with_clear_errors(a_scene):
    good = np.zeros((4, 5, 6, 3), np.float32)
    with pytest.raises(ValueError, match=r"shape \(K, J, I, 3\)"):
        displacement_transform(np.zeros((4, 5, 6)), np.eye(4))
    nan = good.copy()
    nan[1, 2, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        displacement_transform(nan, np.eye(4))
    sheared = np.eye(4)
    sheared[0, 1] = 0.5
    with pytest.raises(ValueError, match="sheared"):
        displacement_transform(good, sheared)
    with pytest.raises(ValueError, match="zero voxel spacing"):
        displacement_transform(good, np.diag([1.0, 0.0, 1.0, 1.0]))


def test_a_node_under_another_transform_cannot_be_put_under_the_registration(
        a_registration_pair, a_scene):
    _, moving, field, grid = a_registration_pair
    node = place_registration(moving, field, grid, apply=False)
    other = a_scene.add_linear_transform(np.eye(4))
    volume = a_scene.add("vtkMRMLScalarVolumeNode", "elsewhere")
    volume.SetAndObserveTransformNodeID(other.GetID())
    from SlicerFMLib.transform_nodes import apply_to_node

    with pytest.raises(ValueError, match="under the transform"):
        apply_to_node(node, volume)
