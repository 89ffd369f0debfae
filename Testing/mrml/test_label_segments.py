"""A multi-label result -> named, coloured segments (locks, update in place, one undo step)."""

import numpy as np
import pytest

from SlicerFMLib.editor_settings import set_segment_locked
from SlicerFMLib.label_segments import (import_label_map, label_bounding_boxes,
                                        segment_class)
from SlicerFMLib.segment_io import apply_mask_update, segment_to_mask
from SlicerFMLib.volume_io import volume_to_array

LIVER, SPLEEN, AORTA, STOMACH = 1, 3, 6, 12
DICTIONARY = {
    "1": {"name": "liver", "color": [220, 100, 60]},
    "3": {"name": "spleen", "color": [120, 40, 200]},
    "6": {"name": "aorta", "color": [255, 0, 0]},
    "12": {"name": "stomach", "color": [10, 200, 30]},
}


def label_map(shape, liver_shift=0):
    """LIVER a block, SPLEEN a ball, AORTA a thin tube along k; nothing for STOMACH."""
    labels = np.zeros(shape, np.uint8)
    labels[2:9, 3 + liver_shift:14 + liver_shift, 4:15] = LIVER
    k, j, i = np.indices(shape)
    labels[(k - 12) ** 2 + (j - 20) ** 2 + (i - 25) ** 2 <= 16] = SPLEEN
    labels[:, 25:27, 8:10] = AORTA
    return labels


@pytest.fixture
def a_volume_grid(a_block_volume):
    """(shape, ijk_to_ras_world) of an oblique anisotropic volume under a linear transform."""
    volume, array = a_block_volume
    return array.shape, volume_to_array(volume)[1]


def mask(segmentation, segment_id, grid):
    return segment_to_mask(segmentation, segment_id, *grid)


def ids_by_name(segmentation):
    seg = segmentation.GetSegmentation()
    return {seg.GetNthSegment(n).GetName(): seg.GetNthSegmentID(n)
            for n in range(seg.GetNumberOfSegments())}


def test_a_multi_label_map_becomes_named_coloured_segments_in_the_right_place(
        a_scene, a_volume_grid):
    segmentation = a_scene.add_segmentation("user")
    labels = label_map(a_volume_grid[0])
    report = import_label_map(segmentation, labels, a_volume_grid[1], DICTIONARY, "vista3d")
    names = ids_by_name(segmentation)
    assert set(names) == {"user", "liver", "spleen", "aorta"}
    assert report.absent == ["stomach"] and sorted(report.created) == sorted(
        names[n] for n in ("liver", "spleen", "aorta"))
    assert report.summary() == ("3 segment(s) created; 0 updated; not found in the image: "
                                "stomach")
    for name, label in (("liver", LIVER), ("spleen", SPLEEN), ("aorta", AORTA)):
        np.testing.assert_array_equal(mask(segmentation, names[name], a_volume_grid),
                                      labels == label)
        segment = segmentation.GetSegmentation().GetSegment(names[name])
        np.testing.assert_allclose(segment.GetColor(),
                                   np.array(DICTIONARY[str(label)]["color"]) / 255.0)
        assert segment_class(segmentation, names[name]) == ("vista3d", label)
    assert segment_class(segmentation, "user") is None
    assert not mask(segmentation, "user", a_volume_grid).any()


def test_locked_segments_keep_every_voxel_and_a_locked_namesake_is_left_alone(
        a_scene, a_volume_grid):
    shape, ijk_to_ras = a_volume_grid
    segmentation = a_scene.add_segmentation("mine", "spleen")
    mine = np.zeros(shape, bool)
    mine[4:7, 5:10, 6:12] = True                    # inside the liver block
    apply_mask_update(segmentation, "mine", [[0, 0, 0], list(shape)], mine, ijk_to_ras)
    own_spleen = np.zeros(shape, bool)
    own_spleen[15:18, 2:5, 2:5] = True
    apply_mask_update(segmentation, "spleen", [[0, 0, 0], list(shape)], own_spleen, ijk_to_ras)
    set_segment_locked(segmentation, "mine")
    set_segment_locked(segmentation, "spleen")
    labels = label_map(shape)

    report = import_label_map(segmentation, labels, ijk_to_ras, DICTIONARY, "vista3d")
    assert report.skipped_locked == ["spleen"]
    np.testing.assert_array_equal(mask(segmentation, "mine", a_volume_grid), mine)
    np.testing.assert_array_equal(mask(segmentation, "spleen", a_volume_grid), own_spleen)
    liver = mask(segmentation, ids_by_name(segmentation)["liver"], a_volume_grid)
    np.testing.assert_array_equal(liver, (labels == LIVER) & ~mine)
    assert segment_class(segmentation, "spleen") is None


def test_a_second_run_updates_the_same_segments_in_place_and_leaves_others_alone(
        a_scene, a_volume_grid):
    shape, ijk_to_ras = a_volume_grid
    segmentation = a_scene.add_segmentation("user")
    user = np.zeros(shape, bool)
    user[0:6, 0:8, 0:10] = True                     # overlaps the first liver
    apply_mask_update(segmentation, "user", [[0, 0, 0], list(shape)], user, ijk_to_ras)
    import_label_map(segmentation, label_map(shape), ijk_to_ras, DICTIONARY, "vista3d")
    first_ids = ids_by_name(segmentation)
    segmentation.GetSegmentation().GetSegment(first_ids["liver"]).SetColor(0.1, 0.2, 0.3)

    moved = label_map(shape, liver_shift=10)
    report = import_label_map(segmentation, moved, ijk_to_ras, DICTIONARY, "vista3d")
    assert ids_by_name(segmentation) == first_ids           # no new segment, same IDs
    assert sorted(report.updated) == sorted(first_ids[n] for n in ("liver", "spleen", "aorta"))
    assert report.created == []
    liver = mask(segmentation, first_ids["liver"], a_volume_grid)
    np.testing.assert_array_equal(liver, moved == LIVER)   # the old voxels are gone
    np.testing.assert_allclose(
        segmentation.GetSegmentation().GetSegment(first_ids["liver"]).GetColor(), (0.1, 0.2, 0.3))
    np.testing.assert_array_equal(mask(segmentation, "user", a_volume_grid), user)


def test_an_import_is_one_undo_step(a_scene, a_volume_grid):
    from slicer import vtkSegmentationHistory

    shape, ijk_to_ras = a_volume_grid
    segmentation = a_scene.add_segmentation("user")
    history = vtkSegmentationHistory()
    history.SetSegmentation(segmentation.GetSegmentation())
    import_label_map(segmentation, label_map(shape), ijk_to_ras, DICTIONARY, "vista3d",
                     history=history)
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 4
    assert history.RestorePreviousState()
    assert list(ids_by_name(segmentation)) == ["user"]
    assert not history.IsRestorePreviousStateAvailable()


def test_labels_missing_from_the_dictionary_are_refused(a_scene, a_volume_grid):
    shape, ijk_to_ras = a_volume_grid
    segmentation = a_scene.add_segmentation()
    labels = label_map(shape)
    labels[0, 0, 0] = 77
    with pytest.raises(ValueError, match=r"labels \[77\]"):
        import_label_map(segmentation, labels, ijk_to_ras, DICTIONARY, "vista3d")
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 0


def test_bounding_boxes_of_all_labels_match_a_direct_computation():
    rng = np.random.default_rng(2)
    labels = np.zeros((13, 17, 19), np.uint16)
    for label in (1, 5, 300):
        start = rng.integers(0, 8, 3)
        stop = start + rng.integers(1, 6, 3)
        labels[tuple(slice(a, b) for a, b in zip(start, stop))] = label
    boxes = label_bounding_boxes(labels)
    assert set(boxes) == set(np.unique(labels)) - {0}
    for label, (start, stop) in boxes.items():
        where = np.argwhere(labels == label)
        assert start == tuple(where.min(axis=0)) and stop == tuple(where.max(axis=0) + 1)


def test_outside_the_computed_box_an_update_keeps_the_segments_voxels(a_scene, a_volume_grid):
    """The server computed only part of the image: there the result replaces the segment,
    outside it the segment keeps what it had (the map says nothing there)."""
    shape, ijk_to_ras = a_volume_grid
    segmentation = a_scene.add_segmentation()
    import_label_map(segmentation, label_map(shape), ijk_to_ras, DICTIONARY, "vista3d")
    liver_id = ids_by_name(segmentation)["liver"]
    before = mask(segmentation, liver_id, a_volume_grid)
    computed = [[0, 0, 0], [shape[0], shape[1], 10]]            # i < 10 only
    moved = label_map(shape, liver_shift=10)
    moved[:, :, 10:] = 0                                         # nothing computed there
    import_label_map(segmentation, moved, ijk_to_ras, DICTIONARY, "vista3d",
                     computed_bbox_kji=computed)
    after = mask(segmentation, liver_id, a_volume_grid)
    np.testing.assert_array_equal(after[:, :, 10:], before[:, :, 10:])
    np.testing.assert_array_equal(after[:, :, :10], moved[:, :, :10] == LIVER)
    assert before[:, :, 10:].any() and not np.array_equal(after, before)
