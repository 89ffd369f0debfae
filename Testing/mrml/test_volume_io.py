"""Volume node <-> (array_kji, ijk_to_ras_world) on slicer-core."""

import numpy as np
import pytest
import vtk
from mrml_helpers import oblique_ijk_to_ras, rotation

from SlicerFMLib.volume_io import (local_ijk_to_ras, update_volume_from_array,
                                   volume_to_array, world_to_node_matrix)
from SlicerFMLib.vtk_arrays import matrix_to_numpy


def test_the_array_comes_back_unchanged_in_kji_order_with_its_dtype(an_oblique_volume):
    volume, array = an_oblique_volume
    got, _ = volume_to_array(volume)
    assert got.shape == array.shape == (12, 17, 23)
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got, array)
    dims = volume.GetImageData().GetDimensions()          # VTK order (i, j, k)
    assert dims == (23, 17, 12)
    assert volume.GetImageData().GetScalarComponentAsDouble(4, 2, 1, 0) == array[1, 2, 4]


def test_the_node_keeps_the_oblique_anisotropic_geometry_it_was_given(an_oblique_volume):
    volume, _ = an_oblique_volume
    np.testing.assert_allclose(local_ijk_to_ras(volume), oblique_ijk_to_ras(), atol=1e-12)
    np.testing.assert_allclose(volume.GetSpacing(), (0.7, 1.1, 2.5), atol=1e-12)


def test_the_world_matrix_puts_voxel_centres_where_the_transform_node_puts_them(
        an_oblique_volume):
    volume, _ = an_oblique_volume
    _, ijk_to_ras_world = volume_to_array(volume)
    ijk_to_ras = vtk.vtkMatrix4x4()
    volume.GetIJKToRASMatrix(ijk_to_ras)
    to_world = vtk.vtkGeneralTransform()
    volume.GetParentTransformNode().GetTransformToWorld(to_world)
    for i, j, k in [(0, 0, 0), (22, 16, 11), (5, 9, 3), (17, 1, 8)]:
        local = ijk_to_ras.MultiplyPoint((i, j, k, 1.0))[:3]
        expected = to_world.TransformPoint(local)
        np.testing.assert_allclose(ijk_to_ras_world @ [i, j, k, 1.0],
                                   list(expected) + [1.0], atol=1e-9)


def test_a_chain_of_linear_transforms_is_folded_into_the_world_matrix(
        a_scene, an_oblique_volume):
    volume, _ = an_oblique_volume
    inner = volume.GetParentTransformNode()
    outer_matrix = rotation("x", 40)
    outer_matrix[:3, 3] = [-3.0, 2.0, 1.0]
    outer = a_scene.add_linear_transform(outer_matrix)
    inner.SetAndObserveTransformNodeID(outer.GetID())
    inner_matrix = matrix_to_numpy(inner.GetMatrixTransformToParent())
    _, ijk_to_ras_world = volume_to_array(volume)
    np.testing.assert_allclose(ijk_to_ras_world,
                               outer_matrix @ inner_matrix @ oblique_ijk_to_ras(), atol=1e-9)


def test_the_array_is_a_view_unless_a_copy_is_asked_for(an_oblique_volume):
    volume, array = an_oblique_volume
    view, _ = volume_to_array(volume)
    copy, _ = volume_to_array(volume, copy=True)
    view[0, 0, 0] = 1234
    assert volume.GetImageData().GetScalarComponentAsDouble(0, 0, 0, 0) == 1234
    assert copy[0, 0, 0] == array[0, 0, 0]


def test_a_volume_under_a_non_linear_transform_must_be_hardened(a_scene, an_oblique_volume):
    volume, _ = an_oblique_volume
    spline = vtk.vtkThinPlateSplineTransform()
    source, target = vtk.vtkPoints(), vtk.vtkPoints()
    for point, shift in [((0, 0, 0), (1, 0, 0)), ((50, 0, 0), (0, 2, 0)),
                         ((0, 50, 0), (0, 0, 3)), ((0, 0, 50), (1, 1, 0))]:
        source.InsertNextPoint(point)
        target.InsertNextPoint(np.add(point, shift))
    spline.SetSourceLandmarks(source)
    spline.SetTargetLandmarks(target)
    spline.SetBasisToR()
    warp = a_scene.add("vtkMRMLTransformNode", "warp")
    warp.SetAndObserveTransformToParent(spline)
    volume.GetParentTransformNode().SetAndObserveTransformNodeID(warp.GetID())
    with pytest.raises(ValueError, match="[Hh]arden"):
        volume_to_array(volume)


def test_a_world_geometry_can_be_placed_under_a_transformed_node(a_scene, an_oblique_volume):
    volume, array = an_oblique_volume
    _, ijk_to_ras_world = volume_to_array(volume)
    other = a_scene.add("vtkMRMLScalarVolumeNode", "copy")
    other_transform = a_scene.add_linear_transform(rotation("z", 70))
    other.SetAndObserveTransformNodeID(other_transform.GetID())
    update_volume_from_array(other, array > 0,
                             world_to_node_matrix(other) @ ijk_to_ras_world)
    got, got_world = volume_to_array(other)
    np.testing.assert_allclose(got_world, ijk_to_ras_world, atol=1e-9)
    np.testing.assert_array_equal(got, (array > 0).astype(np.uint8))
