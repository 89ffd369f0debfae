"""Undo of SlicerFM edits, and the Segment Editor's settings as update parameters."""

import numpy as np
import pytest

from SlicerFMLib.editor_settings import (locked_segment_ids, set_segment_locked,
                                         settings_from_segment_editor)
from SlicerFMLib.segment_io import apply_mask_update, segment_to_mask
from SlicerFMLib.undo import enable_scene_undo, save_state_for_undo
from SlicerFMLib.volume_io import volume_to_array

BOX = [[2, 3, 4], [9, 12, 17]]


@pytest.fixture
def a_segmented_volume(a_scene, an_oblique_volume):
    """(segmentation with segments a and b, volume array, ijk_to_ras_world); b is a slab."""
    volume, array = an_oblique_volume
    _, ijk_to_ras = volume_to_array(volume)
    segmentation = a_scene.add_segmentation("a", "b")
    slab = np.zeros(array.shape, bool)
    slab[:, :, 8:14] = True
    apply_mask_update(segmentation, "b", [[0, 0, 0], list(array.shape)], slab, ijk_to_ras)
    return segmentation, array, ijk_to_ras


def mask_of(segmentation, segment_id, array, ijk_to_ras):
    return segment_to_mask(segmentation, segment_id, array.shape, ijk_to_ras)


def test_scene_undo_restores_the_segment_as_it_was_before_the_update(a_segmented_volume):
    segmentation, array, ijk_to_ras = a_segmented_volume
    scene = segmentation.GetScene()
    enable_scene_undo(segmentation)
    first = np.zeros((7, 9, 13), bool)
    first[2:5, 2:6, 3:9] = True
    apply_mask_update(segmentation, "a", BOX, first, ijk_to_ras)
    after_first = mask_of(segmentation, "a", array, ijk_to_ras)
    apply_mask_update(segmentation, "a", BOX, ~first, ijk_to_ras, overwrite_other_segments=True)
    assert scene.GetNumberOfUndoLevels() == 2
    scene.Undo()
    np.testing.assert_array_equal(mask_of(segmentation, "a", array, ijk_to_ras), after_first)
    assert mask_of(segmentation, "b", array, ijk_to_ras)[:, :, 8:14].all()
    scene.Undo()
    assert not mask_of(segmentation, "a", array, ijk_to_ras).any()
    scene.Redo()
    np.testing.assert_array_equal(mask_of(segmentation, "a", array, ijk_to_ras), after_first)


def test_no_scene_undo_state_is_saved_unless_undo_is_enabled(a_segmented_volume):
    segmentation, _, ijk_to_ras = a_segmented_volume
    assert save_state_for_undo(segmentation) is False
    apply_mask_update(segmentation, "a", BOX, np.ones((7, 9, 13), bool), ijk_to_ras)
    assert segmentation.GetScene().GetNumberOfUndoLevels() == 0


def test_a_segmentation_history_undoes_an_update_like_the_segment_editor(a_segmented_volume):
    from slicer import vtkSegmentationHistory

    segmentation, array, ijk_to_ras = a_segmented_volume
    history = vtkSegmentationHistory()
    history.SetSegmentation(segmentation.GetSegmentation())
    before = mask_of(segmentation, "b", array, ijk_to_ras)
    apply_mask_update(segmentation, "a", BOX, np.ones((7, 9, 13), bool), ijk_to_ras,
                      overwrite_other_segments=True, history=history)
    assert not np.array_equal(mask_of(segmentation, "b", array, ijk_to_ras), before)
    assert history.RestorePreviousState()
    np.testing.assert_array_equal(mask_of(segmentation, "b", array, ijk_to_ras), before)
    assert not mask_of(segmentation, "a", array, ijk_to_ras).any()


def test_locks_are_segment_tags(a_segmented_volume):
    segmentation = a_segmented_volume[0]
    set_segment_locked(segmentation, "b")
    assert locked_segment_ids(segmentation) == ("b",)
    set_segment_locked(segmentation, "b", False)
    assert locked_segment_ids(segmentation) == ()


@pytest.fixture
def an_editor_node(a_scene, a_segmented_volume):
    editor = a_scene.add("vtkMRMLSegmentEditorNode", "editor")
    editor.SetAndObserveSegmentationNode(a_segmented_volume[0])
    return editor


def test_the_editor_overwrite_modes_map_to_overwrite_parameters(an_editor_node,
                                                                a_segmented_volume):
    from slicer import vtkMRMLSegmentEditorNode as Editor

    segmentation, array, ijk_to_ras = a_segmented_volume
    expected = {Editor.OverwriteAllSegments: True, Editor.OverwriteNone: False}
    for mode, value in expected.items():
        an_editor_node.SetOverwriteMode(mode)
        settings = settings_from_segment_editor(an_editor_node, segmentation, "a", BOX,
                                                ijk_to_ras)
        assert settings.overwrite_other_segments is value
        assert settings.editable_mask is None
    segmentation.GetDisplayNode().SetSegmentVisibility("b", False)
    an_editor_node.SetOverwriteMode(Editor.OverwriteVisibleSegments)
    settings = settings_from_segment_editor(an_editor_node, segmentation, "a", BOX, ijk_to_ras)
    assert settings.overwrite_other_segments == ("a",)


def test_editing_inside_one_segment_only_is_respected(an_editor_node, a_segmented_volume):
    from slicer import vtkMRMLSegmentationNode

    segmentation, array, ijk_to_ras = a_segmented_volume
    an_editor_node.SetMaskMode(vtkMRMLSegmentationNode.EditAllowedInsideSingleSegment)
    an_editor_node.SetMaskSegmentID("b")
    settings = settings_from_segment_editor(an_editor_node, segmentation, "a", BOX, ijk_to_ras)
    slab_in_box = np.zeros(array.shape, bool)
    slab_in_box[:, :, 8:14] = True
    np.testing.assert_array_equal(settings.editable_mask,
                                  slab_in_box[tuple(slice(a, b) for a, b in zip(*BOX))])
    apply_mask_update(segmentation, "a", BOX, np.ones((7, 9, 13), bool), ijk_to_ras,
                      **settings.as_kwargs())
    got = mask_of(segmentation, "a", array, ijk_to_ras)
    assert got.sum() == 7 * 9 * 6 and got[2:9, 3:12, 8:14].all()


def test_the_editor_intensity_range_limits_the_editable_voxels(an_editor_node,
                                                               a_segmented_volume):
    segmentation, array, ijk_to_ras = a_segmented_volume
    an_editor_node.SetSourceVolumeIntensityMask(True)
    an_editor_node.SetSourceVolumeIntensityMaskRange(0, 500)
    with pytest.raises(ValueError, match="volume_array_kji"):
        settings_from_segment_editor(an_editor_node, segmentation, "a", BOX, ijk_to_ras)
    settings = settings_from_segment_editor(an_editor_node, segmentation, "a", BOX, ijk_to_ras,
                                            volume_array_kji=array)
    box = array[tuple(slice(a, b) for a, b in zip(*BOX))]
    np.testing.assert_array_equal(settings.editable_mask, (box >= 0) & (box <= 500))
