"""Markups points and ROIs -> (k, j, i) prompts, through transforms, on slicer-core."""

import numpy as np
import pytest
from mrml_helpers import rotation

from SlicerFMLib.prompts import (kji_to_ras, markups_to_points, ras_to_kji, roi_to_box,
                                 set_prompt_polarity)
from SlicerFMLib.volume_io import volume_to_array, world_to_node_matrix
from SlicerFMLib.vtk_arrays import numpy_to_matrix

VOXELS_KJI = [(0, 0, 0), (11, 16, 22), (3, 7, 12), (9, 2, 5)]


@pytest.fixture
def a_point_list_under_its_own_transform(a_scene):
    """An empty markups point list under a linear transform unrelated to the volume's."""
    node = a_scene.add("vtkMRMLMarkupsFiducialNode", "clicks")
    matrix = rotation("x", -25)
    matrix[:3, 3] = [30.0, 2.0, -4.0]
    node.SetAndObserveTransformNodeID(a_scene.add_linear_transform(matrix).GetID())
    return node


def test_a_world_point_at_a_voxel_centre_maps_back_to_that_exact_voxel(an_oblique_volume):
    volume, _ = an_oblique_volume
    _, ijk_to_ras_world = volume_to_array(volume)
    for k, j, i in VOXELS_KJI:
        world = ijk_to_ras_world @ [i, j, k, 1.0]
        np.testing.assert_allclose(ras_to_kji(world[:3], ijk_to_ras_world), (k, j, i),
                                   atol=1e-9)
        np.testing.assert_allclose(kji_to_ras((k, j, i), ijk_to_ras_world), world[:3])


def test_a_point_half_a_voxel_along_k_lies_between_two_slices(an_oblique_volume):
    volume, _ = an_oblique_volume
    _, ijk_to_ras_world = volume_to_array(volume)
    world = ijk_to_ras_world @ [4, 5, 6.5, 1.0]
    np.testing.assert_allclose(ras_to_kji(world[:3], ijk_to_ras_world), (6.5, 5, 4), atol=1e-9)


def test_control_points_are_read_in_world_coordinates_through_both_transforms(
        an_oblique_volume, a_point_list_under_its_own_transform):
    volume, _ = an_oblique_volume
    _, ijk_to_ras_world = volume_to_array(volume)
    points = a_point_list_under_its_own_transform
    for k, j, i in VOXELS_KJI:
        index = points.AddControlPoint(0.0, 0.0, 0.0)
        points.SetNthControlPointPositionWorld(index, *(ijk_to_ras_world @ [i, j, k, 1.0])[:3])
    local = [0.0, 0.0, 0.0]
    points.GetNthControlPointPosition(1, local)
    assert not np.allclose(local, (ijk_to_ras_world @ [22, 16, 11, 1.0])[:3], atol=1.0)
    got = markups_to_points(points, ijk_to_ras_world)
    assert [positive for _, positive in got] == [True] * len(VOXELS_KJI)
    np.testing.assert_allclose([kji for kji, _ in got], VOXELS_KJI, atol=1e-9)


def test_a_negative_point_list_gives_negative_prompts_and_undefined_points_are_skipped(
        an_oblique_volume, a_point_list_under_its_own_transform):
    volume, _ = an_oblique_volume
    _, ijk_to_ras_world = volume_to_array(volume)
    points = a_point_list_under_its_own_transform
    set_prompt_polarity(points, positive=False)
    points.AddControlPoint(*(ijk_to_ras_world @ [1, 2, 3, 1.0])[:3])
    points.AddControlPoint(0.0, 0.0, 0.0)
    points.UnsetNthControlPointPosition(1)                   # e.g. being placed
    got = markups_to_points(points, ijk_to_ras_world)
    assert len(got) == 1 and got[0][1] is False
    assert markups_to_points(points, ijk_to_ras_world, positive=True)[0][1] is True


def _roi_along_the_volume_axes(a_scene, volume, low_kji, high_kji, margin=0.3):
    """A ROI whose faces lie ``margin`` voxel outside the centres low..high (inclusive),
    oriented along the volume's axes, under the volume's transform."""
    roi = a_scene.add("vtkMRMLMarkupsROINode", "box")
    roi.SetAndObserveTransformNodeID(volume.GetParentTransformNode().GetID())
    directions = np.eye(4)
    ijk_to_ras = np.array(volume_to_array(volume)[1])
    local = world_to_node_matrix(volume) @ ijk_to_ras      # volume's own IJK->RAS
    spacing = np.linalg.norm(local[:3, :3], axis=0)
    directions[:3, :3] = local[:3, :3] / spacing
    low_ijk, high_ijk = np.array(low_kji[::-1], float), np.array(high_kji[::-1], float)
    centre = local @ np.append((low_ijk + high_ijk) / 2, 1.0)
    directions[:3, 3] = centre[:3]
    roi.SetAndObserveObjectToNodeMatrix(numpy_to_matrix(directions))
    roi.SetSize(*((high_ijk - low_ijk + 2 * margin) * spacing))
    return roi


def test_an_roi_along_the_volume_axes_gives_the_voxels_it_encloses(
        a_scene, an_oblique_volume):
    volume, _ = an_oblique_volume
    _, ijk_to_ras_world = volume_to_array(volume)
    roi = _roi_along_the_volume_axes(a_scene, volume, (2, 3, 4), (8, 10, 15))
    assert roi_to_box(roi, ijk_to_ras_world) == ((2, 3, 4), (8, 10, 15))


def test_an_roi_sticking_out_of_the_image_is_clipped_to_it(a_scene, an_oblique_volume):
    volume, array = an_oblique_volume
    _, ijk_to_ras_world = volume_to_array(volume)
    roi = _roi_along_the_volume_axes(a_scene, volume, (-3, 5, 20), (4, 30, 40))
    assert roi_to_box(roi, ijk_to_ras_world) == ((-3, 5, 20), (4, 30, 40))
    assert roi_to_box(roi, ijk_to_ras_world, array.shape) == ((0, 5, 20), (4, 16, 22))


def test_an_roi_outside_the_image_is_refused(a_scene, an_oblique_volume):
    volume, array = an_oblique_volume
    _, ijk_to_ras_world = volume_to_array(volume)
    roi = _roi_along_the_volume_axes(a_scene, volume, (40, 40, 40), (45, 45, 45))
    with pytest.raises(ValueError, match="no voxel centre"):
        roi_to_box(roi, ijk_to_ras_world, array.shape)


def test_an_oblique_roi_gives_the_voxel_space_bounding_box_of_its_corners(
        a_scene, an_oblique_volume):
    volume, _ = an_oblique_volume
    _, ijk_to_ras_world = volume_to_array(volume)
    roi = a_scene.add("vtkMRMLMarkupsROINode", "tilted")
    roi.SetCenter(*(ijk_to_ras_world @ [11, 8, 6, 1.0])[:3])
    roi.SetSize(6.0, 4.0, 9.0)
    orientation = rotation("z", 33) @ rotation("y", 12)
    roi.SetAndObserveObjectToNodeMatrix(numpy_to_matrix(
        np.block([[orientation[:3, :3], np.c_[list(roi.GetCenter())]], [np.zeros((1, 3)), 1]])))
    low, high = roi_to_box(roi, ijk_to_ras_world)
    # every voxel centre inside the (tilted) ROI lies in the box, and the box is tight
    to_object = np.linalg.inv(
        np.array([[roi.GetObjectToWorldMatrix().GetElement(r, c) for c in range(4)]
                  for r in range(4)]))
    grid = np.stack(np.meshgrid(*[np.arange(-5, 30)] * 3, indexing="ij"), -1).reshape(-1, 3)
    world = (ijk_to_ras_world @ np.c_[grid[:, ::-1], np.ones(len(grid))].T)
    inside = np.all(np.abs((to_object @ world)[:3].T) <= np.array([3.0, 2.0, 4.5]), axis=1)
    kji_inside = grid[inside]
    assert len(kji_inside) > 0
    assert (kji_inside >= low).all() and (kji_inside <= high).all()
    span = np.array(high) - np.array(low) + 1
    assert (span <= kji_inside.max(0) - kji_inside.min(0) + 3).all()
