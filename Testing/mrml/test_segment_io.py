"""Mask updates -> segments (box only, other segments, locks, overwrite, other grids)."""

import numpy as np
import pytest
from mrml_helpers import rotation

from SlicerFMLib.labelmap_grid import segment_labelmap
from SlicerFMLib.segment_io import apply_mask_update, segment_to_mask
from SlicerFMLib.volume_io import volume_to_array
from SlicerFMLib.vtk_arrays import image_to_array, image_to_world, oriented_image

BOX = [[2, 3, 4], [9, 12, 17]]


def blob(shape, seed=0):
    """A random bool mask with some structure (a filled ellipsoid plus speckle)."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape).astype(float)
    centre = (np.array(shape) - 1) / 2
    r = ((grid - centre[:, None, None, None]) / (np.array(shape)[:, None, None, None] / 2.5))
    return ((r ** 2).sum(0) < 1.0) | (rng.random(shape) < 0.05)


def box_slices(bbox):
    return tuple(slice(a, b) for a, b in zip(*bbox))


@pytest.fixture
def a_volume_geometry(an_oblique_volume):
    """(shape_kji, ijk_to_ras_world) of the oblique transformed volume."""
    volume, array = an_oblique_volume
    return array.shape, volume_to_array(volume)[1]


@pytest.fixture
def a_segmentation(a_scene):
    """A segmentation node (own RAS frame = world) with empty segments a, b, c."""
    return a_scene.add_segmentation("a", "b", "c")


def read(segmentation, geometry, segment_id):
    return segment_to_mask(segmentation, segment_id, *geometry)


def test_an_update_writes_exactly_the_mask_into_the_box(a_segmentation, a_volume_geometry):
    shape, _ = a_volume_geometry
    mask = blob((7, 9, 13))
    apply_mask_update(a_segmentation, "a", BOX, mask, a_volume_geometry[1])
    expected = np.zeros(shape, bool)
    expected[box_slices(BOX)] = mask
    np.testing.assert_array_equal(read(a_segmentation, a_volume_geometry, "a"), expected)


def test_a_second_update_changes_only_the_voxels_inside_its_box(a_segmentation,
                                                                 a_volume_geometry):
    shape, ijk_to_ras = a_volume_geometry
    full = np.ones(shape, bool)
    apply_mask_update(a_segmentation, "a", [[0, 0, 0], list(shape)], full, ijk_to_ras)
    second = [[4, 5, 6], [8, 10, 11]]
    new = blob((4, 5, 5), seed=3)
    apply_mask_update(a_segmentation, "a", second, new, ijk_to_ras)
    expected = full.copy()
    expected[box_slices(second)] = new
    np.testing.assert_array_equal(read(a_segmentation, a_volume_geometry, "a"), expected)
    sub = segment_to_mask(a_segmentation, "a", shape, ijk_to_ras, bbox_kji=second)
    np.testing.assert_array_equal(sub, new)


def test_an_empty_or_missing_box_changes_nothing(a_segmentation, a_volume_geometry):
    ijk_to_ras = a_volume_geometry[1]
    apply_mask_update(a_segmentation, "a", BOX, blob((7, 9, 13)), ijk_to_ras)
    before = read(a_segmentation, a_volume_geometry, "a")
    apply_mask_update(a_segmentation, "a", None, np.zeros((0, 0, 0), bool), ijk_to_ras)
    apply_mask_update(a_segmentation, "a", [[3, 3, 3], [3, 5, 5]], np.zeros((0, 2, 2), bool),
                      ijk_to_ras)
    np.testing.assert_array_equal(read(a_segmentation, a_volume_geometry, "a"), before)


def test_a_mask_of_the_wrong_shape_is_refused(a_segmentation, a_volume_geometry):
    with pytest.raises(ValueError, match="does not match bbox_kji"):
        apply_mask_update(a_segmentation, "a", BOX, np.ones((7, 9, 12), bool),
                          a_volume_geometry[1])


def test_other_segments_keep_their_voxels_without_overwrite(a_segmentation, a_volume_geometry):
    shape, ijk_to_ras = a_volume_geometry
    apply_mask_update(a_segmentation, "b", [[0, 0, 0], list(shape)], blob(shape, 1), ijk_to_ras)
    before_b = read(a_segmentation, a_volume_geometry, "b")
    apply_mask_update(a_segmentation, "a", BOX, np.ones((7, 9, 13), bool), ijk_to_ras)
    np.testing.assert_array_equal(read(a_segmentation, a_volume_geometry, "b"), before_b)
    assert read(a_segmentation, a_volume_geometry, "a")[box_slices(BOX)].all()


def test_overwrite_removes_the_new_voxels_from_unlocked_segments_only(a_segmentation,
                                                                     a_volume_geometry):
    shape, ijk_to_ras = a_volume_geometry
    everywhere = [[0, 0, 0], list(shape)]
    apply_mask_update(a_segmentation, "b", everywhere, np.ones(shape, bool), ijk_to_ras)
    apply_mask_update(a_segmentation, "c", everywhere, np.ones(shape, bool), ijk_to_ras,
                      overwrite_other_segments=False)
    mask = blob((7, 9, 13), seed=5)
    apply_mask_update(a_segmentation, "a", BOX, mask, ijk_to_ras,
                      overwrite_other_segments=True, locked_segment_ids=["c"])
    expected_b = np.ones(shape, bool)
    expected_b[box_slices(BOX)] &= ~mask
    np.testing.assert_array_equal(read(a_segmentation, a_volume_geometry, "b"), expected_b)
    assert read(a_segmentation, a_volume_geometry, "c").all()          # locked: untouched
    assert read(a_segmentation, a_volume_geometry, "a")[box_slices(BOX)].sum() == mask.sum()


def test_overwrite_can_be_limited_to_a_list_of_segments(a_segmentation, a_volume_geometry):
    shape, ijk_to_ras = a_volume_geometry
    for segment_id in ("b", "c"):
        apply_mask_update(a_segmentation, segment_id, [[0, 0, 0], list(shape)],
                          np.ones(shape, bool), ijk_to_ras)
    apply_mask_update(a_segmentation, "a", BOX, np.ones((7, 9, 13), bool), ijk_to_ras,
                      overwrite_other_segments=["c"])
    assert read(a_segmentation, a_volume_geometry, "b").all()
    assert not read(a_segmentation, a_volume_geometry, "c")[box_slices(BOX)].any()


def test_a_locked_segment_cannot_be_the_one_edited(a_segmentation, a_volume_geometry):
    with pytest.raises(ValueError, match="locked"):
        apply_mask_update(a_segmentation, "a", BOX, np.ones((7, 9, 13), bool),
                          a_volume_geometry[1], locked_segment_ids=("a",))


def test_voxels_outside_the_editable_mask_keep_their_state(a_segmentation, a_volume_geometry):
    shape, ijk_to_ras = a_volume_geometry
    old = blob((7, 9, 13), seed=7)
    apply_mask_update(a_segmentation, "a", BOX, old, ijk_to_ras)
    apply_mask_update(a_segmentation, "b", BOX, np.ones((7, 9, 13), bool), ijk_to_ras)
    new = blob((7, 9, 13), seed=8)
    editable = np.zeros(shape, bool)                     # a full-volume editable mask
    editable[:, :, :10] = True
    apply_mask_update(a_segmentation, "a", BOX, new, ijk_to_ras, editable_mask=editable,
                      overwrite_other_segments=True)
    in_box = editable[box_slices(BOX)]
    got = read(a_segmentation, a_volume_geometry, "a")[box_slices(BOX)]
    np.testing.assert_array_equal(got, np.where(in_box, new, old))
    got_b = read(a_segmentation, a_volume_geometry, "b")[box_slices(BOX)]
    np.testing.assert_array_equal(got_b, ~(in_box & new))


def test_an_unknown_segment_is_refused(a_segmentation, a_volume_geometry):
    with pytest.raises(ValueError, match="no segment"):
        apply_mask_update(a_segmentation, "zz", BOX, np.ones((7, 9, 13), bool),
                          a_volume_geometry[1])


# -- a segmentation whose own grid differs from the volume's ----------------------------

@pytest.fixture
def a_segmentation_on_another_grid(a_scene, a_segmentation):
    """The segmentation under its own transform, with a finer axis-aligned reference grid."""
    from slicer import vtkSegmentationConverter

    matrix = rotation("x", 10)
    matrix[:3, 3] = [2.0, -1.0, 3.0]
    a_segmentation.SetAndObserveTransformNodeID(a_scene.add_linear_transform(matrix).GetID())
    lattice = np.diag([0.45, 0.45, 0.6, 1.0])
    lattice[:3, 3] = [-40.0, -60.0, -10.0]
    geometry = vtkSegmentationConverter.SerializeImageGeometry(
        oriented_image(lattice, (0, 199, 0, 199, 0, 149)))
    a_segmentation.GetSegmentation().SetConversionParameter(
        vtkSegmentationConverter.GetReferenceImageGeometryParameterName(), geometry)
    return a_segmentation, lattice


def _lattice_voxels_world(segmentation, segment_id):
    """(world RAS (N, 3) of the segment's voxel centres on its own grid, is-set (N,))."""
    labelmap = segment_labelmap(segmentation, segment_id)
    label = segmentation.GetSegmentation().GetSegment(segment_id).GetLabelValue()
    values = image_to_array(labelmap) == label
    i0, _, j0, _, k0, _ = labelmap.GetExtent()
    kji = np.indices(values.shape).reshape(3, -1).T + [k0, j0, i0]
    ijk1 = np.c_[kji[:, ::-1], np.ones(len(kji))]
    from SlicerFMLib.volume_io import node_to_world_matrix
    world = (node_to_world_matrix(segmentation) @ image_to_world(labelmap) @ ijk1.T)[:3].T
    return world, values.ravel()


def test_an_update_on_another_grid_is_written_on_the_segmentation_grid_where_the_mask_is(
        a_segmentation_on_another_grid, a_volume_geometry):
    segmentation, lattice = a_segmentation_on_another_grid
    shape, ijk_to_ras = a_volume_geometry
    mask = blob((7, 9, 13), seed=11)
    apply_mask_update(segmentation, "a", BOX, mask, ijk_to_ras)
    labelmap = segment_labelmap(segmentation, "a")
    np.testing.assert_allclose(image_to_world(labelmap), lattice, atol=1e-9)  # not resampled
    world, is_set = _lattice_voxels_world(segmentation, "a")
    kji = np.rint((np.linalg.inv(ijk_to_ras) @ np.c_[world, np.ones(len(world))].T)[:3].T
                  [:, ::-1]).astype(int)
    in_box = np.all((kji >= BOX[0]) & (kji < BOX[1]), axis=1)
    expected = np.zeros(len(kji), bool)
    expected[in_box] = mask[tuple((kji[in_box] - BOX[0]).T)]
    assert is_set.sum() > mask.sum()                    # finer grid: more voxels
    assert (is_set != expected).mean() < 0.01           # nearest-neighbour ties at edges
    assert not is_set[~in_box].any()                    # nothing outside the box


def test_an_interior_voxel_lands_where_the_volume_voxel_is(a_segmentation_on_another_grid,
                                                           a_volume_geometry):
    segmentation, lattice = a_segmentation_on_another_grid
    shape, ijk_to_ras = a_volume_geometry
    mask = np.zeros((7, 9, 13), bool)
    mask[3, 4, 6] = True                                 # one voxel: kji (5, 7, 10)
    apply_mask_update(segmentation, "a", BOX, mask, ijk_to_ras)
    world, is_set = _lattice_voxels_world(segmentation, "a")
    centre = (ijk_to_ras @ [10, 7, 5, 1.0])[:3]
    spacing = np.linalg.norm(ijk_to_ras[:3, :3], axis=0)
    assert np.linalg.norm(world[is_set].mean(0) - centre) < 0.3
    assert np.abs(world[is_set] - centre).max() <= spacing.max() / 2 + 0.5
    back = read(segmentation, a_volume_geometry, "a")
    assert back[5, 7, 10] and back.sum() == 1


def test_reading_back_from_another_grid_matches_the_mask_inside(a_segmentation_on_another_grid,
                                                                a_volume_geometry):
    segmentation, _ = a_segmentation_on_another_grid
    shape, ijk_to_ras = a_volume_geometry
    mask = np.zeros((7, 9, 13), bool)
    mask[1:6, 2:8, 2:11] = True
    apply_mask_update(segmentation, "a", BOX, mask, ijk_to_ras)
    back = read(segmentation, a_volume_geometry, "a")
    expected = np.zeros(shape, bool)
    expected[box_slices(BOX)] = mask
    np.testing.assert_array_equal(back, expected)


def test_a_segmentation_under_a_non_linear_transform_is_refused(
        a_scene, a_segmentation, a_volume_geometry):
    import vtk
    warp = a_scene.add("vtkMRMLTransformNode", "warp")
    spline = vtk.vtkThinPlateSplineTransform()
    points = vtk.vtkPoints()
    for p in [(0, 0, 0), (9, 0, 0), (0, 9, 0), (0, 0, 9)]:
        points.InsertNextPoint(p)
    moved = vtk.vtkPoints()
    for p in [(1, 0, 0), (9, 1, 0), (0, 9, 1), (0, 0, 8)]:
        moved.InsertNextPoint(p)
    spline.SetSourceLandmarks(points)
    spline.SetTargetLandmarks(moved)
    warp.SetAndObserveTransformToParent(spline)
    a_segmentation.SetAndObserveTransformNodeID(warp.GetID())
    with pytest.raises(ValueError, match="[Hh]arden"):
        apply_mask_update(a_segmentation, "a", BOX, np.ones((7, 9, 13), bool),
                          a_volume_geometry[1])


def test_overwrite_reaches_a_segment_stored_on_a_different_grid_without_resampling_it(
        a_segmentation, a_volume_geometry):
    from slicer import vtkSlicerSegmentationsModuleLogic as Logic

    shape, ijk_to_ras = a_volume_geometry
    a_segmentation.GetSegmentation().SeparateSegmentLabelmap("b")
    corners = np.array([ijk_to_ras @ [i, j, k, 1.0] for i in (0, shape[2])
                        for j in (0, shape[1]) for k in (0, shape[0])])[:, :3]
    fine = np.diag([0.5, 0.5, 0.5, 1.0])                 # axis-aligned, covers the volume
    fine[:3, 3] = corners.min(0) - 2.0
    size_ijk = np.ceil((corners.max(0) - corners.min(0) + 4.0) / 0.5).astype(int)
    full = oriented_image(fine, (0, size_ijk[0] - 1, 0, size_ijk[1] - 1, 0, size_ijk[2] - 1),
                          np.ones(size_ijk[::-1], np.uint8))
    assert Logic.SetBinaryLabelmapToSegment(full, a_segmentation, "b", Logic.MODE_MERGE_MASK,
                                            full.GetExtent(), False, [])
    mask = blob((7, 9, 13), seed=13)
    apply_mask_update(a_segmentation, "a", BOX, mask, ijk_to_ras, overwrite_other_segments=True)
    np.testing.assert_allclose(image_to_world(segment_labelmap(a_segmentation, "b")), fine,
                               atol=1e-9)
    world, is_set = _lattice_voxels_world(a_segmentation, "b")
    kji = np.rint((np.linalg.inv(ijk_to_ras) @ np.c_[world, np.ones(len(world))].T)[:3].T
                  [:, ::-1]).astype(int)
    in_box = np.all((kji >= BOX[0]) & (kji < BOX[1]), axis=1)
    under_a = np.zeros(len(kji), bool)
    under_a[in_box] = mask[tuple((kji[in_box] - BOX[0]).T)]
    assert not is_set[under_a].any()                     # removed where a was painted
    assert is_set[~under_a].mean() > 0.999               # kept everywhere else
    back_b = read(a_segmentation, a_volume_geometry, "b")
    np.testing.assert_array_equal(back_b[box_slices(BOX)], ~mask)
