"""The Logic on a slicer-core scene against a real backend process (engine classic).

Volume: a CT-like block phantom on an oblique, anisotropic grid under a linear transform
(fixture ``a_block_volume``); clicks are given in world RAS, as a user's clicks are.
"""

import numpy as np
import pytest
from logic_helpers import ras_of, server_mask, slicer_mask
from mrml_helpers import rotation

from SlicerFMLib.prompts import set_prompt_polarity
from SlicerFMLib.segment_io import apply_mask_update
from SlicerFMLib.volume_io import volume_to_array

BLOCK = (slice(5, 15), slice(10, 20), slice(10, 30))
INSIDE, OUTSIDE = (10, 15, 20), (2, 3, 3)


@pytest.fixture
def a_logic_on_the_block(a_connected_logic, a_block_volume, an_organ_segmentation):
    """(logic, volume, segmentation) with inputs set to segment 'organ'."""
    volume, _ = a_block_volume
    a_connected_logic.setInputs(volume, an_organ_segmentation, "organ")
    return a_connected_logic, volume, an_organ_segmentation


def block_reference(shape):
    reference = np.zeros(shape, bool)
    reference[BLOCK] = True
    return reference


def test_a_click_in_world_ras_segments_the_object_under_it(a_logic_on_the_block):
    logic, volume, segmentation = a_logic_on_the_block
    task = logic.addPoint(ras_of(volume, INSIDE), positive=True)
    got = slicer_mask(volume, segmentation, "organ")
    assert got[INSIDE] and got.sum() > 200
    assert not (got & ~block_reference(got.shape)).any()
    np.testing.assert_array_equal(got, server_mask(logic, segmentation, "organ"))
    assert task.result.interaction.prompt["point_kji"] == list(map(float, INSIDE))


def test_the_result_changes_only_the_selected_segment_and_only_inside_the_changed_box(
        a_logic_on_the_block):
    logic, volume, segmentation = a_logic_on_the_block
    array, ijk_to_ras = volume_to_array(volume)
    other = np.zeros(array.shape, bool)
    other[:, :, :] = True                    # overlaps everything, the block included
    apply_mask_update(segmentation, "other", [[0, 0, 0], list(array.shape)], other, ijk_to_ras)
    painted = np.zeros(array.shape, bool)
    painted[0:2, 0:3, 35:40] = True          # far from the block: outside any change box
    apply_mask_update(segmentation, "organ", [[0, 0, 0], list(array.shape)], painted, ijk_to_ras)
    update = logic.addPoint(ras_of(volume, INSIDE)).result.update
    got = slicer_mask(volume, segmentation, "organ")
    outside_box = np.ones(array.shape, bool)
    outside_box[update.slices] = False
    np.testing.assert_array_equal(got[outside_box], painted[outside_box])
    np.testing.assert_array_equal(got[update.slices], update.mask)
    np.testing.assert_array_equal(slicer_mask(volume, segmentation, "other"), other)


def test_the_image_is_uploaded_once_and_again_only_when_its_voxels_change(a_logic_on_the_block):
    logic, volume, _ = a_logic_on_the_block
    first = logic.addPoint(ras_of(volume, INSIDE)).result
    second = logic.addPoint(ras_of(volume, OUTSIDE), positive=False).result
    assert first.interaction.image is not None and second.interaction.image is None
    assert second.image_id == first.image_id
    array, _ = volume_to_array(volume)
    array[0, 0, 0] += 1                      # edit the voxels in place, as a filter would
    volume.GetImageData().Modified()
    third = logic.addPoint(ras_of(volume, INSIDE)).result
    assert third.interaction.image is not None and third.image_id != first.image_id


def test_undo_and_redo_of_ai_steps_restore_the_segment_in_slicer(a_logic_on_the_block):
    logic, volume, segmentation = a_logic_on_the_block
    logic.addPoint(ras_of(volume, INSIDE))
    after_first = slicer_mask(volume, segmentation, "organ")
    logic.addPoint(ras_of(volume, (10, 12, 12)), positive=False)
    after_second = slicer_mask(volume, segmentation, "organ")
    assert not np.array_equal(after_first, after_second)
    logic.undo()
    np.testing.assert_array_equal(slicer_mask(volume, segmentation, "organ"), after_first)
    assert logic.canRedo()
    logic.redo()
    np.testing.assert_array_equal(slicer_mask(volume, segmentation, "organ"), after_second)
    logic.resetSegment()
    assert not slicer_mask(volume, segmentation, "organ").any()
    logic.undo()
    np.testing.assert_array_equal(slicer_mask(volume, segmentation, "organ"), after_second)


def test_a_locked_segment_keeps_its_voxels_and_refuses_edits(a_logic_on_the_block):
    logic, volume, segmentation = a_logic_on_the_block
    array, ijk_to_ras = volume_to_array(volume)
    half = np.zeros(array.shape, bool)
    half[:, :, :20] = block_reference(array.shape)[:, :, :20]   # half of the block
    apply_mask_update(segmentation, "other", [[0, 0, 0], list(array.shape)], half, ijk_to_ras)
    logic.setInputs(volume, segmentation, "other")
    logic.setSegmentLocked(True)
    assert logic.isSegmentLocked()
    with pytest.raises(ValueError, match="locked"):
        logic.addPoint(ras_of(volume, INSIDE))
    logic.setInputs(volume, segmentation, "organ")
    logic.addPoint(ras_of(volume, (10, 15, 25)))                  # in the unlocked half
    organ = slicer_mask(volume, segmentation, "organ")
    assert organ.any() and not (organ & half).any()               # the server kept out too
    np.testing.assert_array_equal(organ, server_mask(logic, segmentation, "organ"))
    np.testing.assert_array_equal(slicer_mask(volume, segmentation, "other"), half)


def test_a_locked_segment_painted_in_slicer_is_seeded_when_it_is_unlocked(a_logic_on_the_block):
    logic, volume, segmentation = a_logic_on_the_block
    array, ijk_to_ras = volume_to_array(volume)
    logic.addPoint(ras_of(volume, INSIDE))
    logic.setSegmentLocked(True)
    painted = np.ones((2, 2, 2), bool)          # a paint brush ignores SlicerFM's lock
    apply_mask_update(segmentation, "organ", [[0, 0, 0], [2, 2, 2]], painted, ijk_to_ras)
    logic.setSegmentLocked(False)
    assert not logic.isSegmentLocked()
    got = slicer_mask(volume, segmentation, "organ")
    assert got[:2, :2, :2].all() and got[INSIDE]
    np.testing.assert_array_equal(got, server_mask(logic, segmentation, "organ"))
    assert [s["locked"] for s in logic.connection.client.segments()] == [False]


def test_the_segment_editor_masking_settings_apply_to_ai_results(a_scene, a_logic_on_the_block):
    from slicer import vtkMRMLSegmentationNode

    logic, volume, segmentation = a_logic_on_the_block
    array, ijk_to_ras = volume_to_array(volume)
    allowed = np.zeros(array.shape, bool)
    allowed[:, :15, :] = True
    apply_mask_update(segmentation, "other", [[0, 0, 0], list(array.shape)], allowed, ijk_to_ras)
    editor = a_scene.add("vtkMRMLSegmentEditorNode", "editor")
    editor.SetAndObserveSegmentationNode(segmentation)
    editor.SetMaskMode(vtkMRMLSegmentationNode.EditAllowedInsideSingleSegment)
    editor.SetMaskSegmentID("other")
    logic.editorNode = editor
    logic.addPoint(ras_of(volume, (10, 12, 20)))
    got = slicer_mask(volume, segmentation, "organ")
    server = server_mask(logic, segmentation, "organ")
    assert got.any() and not (got & ~allowed).any()
    np.testing.assert_array_equal(got, server & allowed)
    assert (server & ~allowed).any()          # the server proposed more; Slicer kept out


def test_a_change_made_in_slicer_is_seeded_before_the_next_ai_step(a_logic_on_the_block):
    from slicer import vtkSegmentationHistory

    logic, volume, segmentation = a_logic_on_the_block
    history = vtkSegmentationHistory()
    history.SetSegmentation(segmentation.GetSegmentation())
    logic.segmentationHistory = history
    logic.addPoint(ras_of(volume, INSIDE))
    assert history.RestorePreviousState()     # Slicer's undo (Segment Editor's Ctrl+Z)
    assert not slicer_mask(volume, segmentation, "organ").any()
    task = logic.addPoint(ras_of(volume, OUTSIDE), positive=False)
    assert task.result.seeded == [task.result.interaction.segment]
    np.testing.assert_array_equal(slicer_mask(volume, segmentation, "organ"),
                                  server_mask(logic, segmentation, "organ"))
    assert not slicer_mask(volume, segmentation, "organ").any()


def test_an_edit_of_another_segment_in_the_same_layer_does_not_trigger_a_seed(
        a_logic_on_the_block):
    logic, volume, segmentation = a_logic_on_the_block
    array, ijk_to_ras = volume_to_array(volume)
    logic.addPoint(ras_of(volume, INSIDE))
    corner = np.zeros(array.shape, bool)
    corner[0:2, 0:2, 0:2] = True
    apply_mask_update(segmentation, "other", [[0, 0, 0], list(array.shape)], corner, ijk_to_ras)
    layers = segmentation.GetSegmentation()
    assert layers.GetLayerIndex("organ") == layers.GetLayerIndex("other")   # one shared layer
    task = logic.addPoint(ras_of(volume, (10, 12, 12)), positive=False)
    assert task.result.seeded == []


def test_a_segmentation_under_its_own_transform_receives_the_result_in_place(
        a_scene, a_logic_on_the_block):
    logic, volume, segmentation = a_logic_on_the_block
    moved = rotation("x", 25) @ rotation("z", 40)
    moved[:3, 3] = [-20.0, 8.0, 3.0]
    transform = a_scene.add_linear_transform(moved)
    segmentation.SetAndObserveTransformNodeID(transform.GetID())
    logic.addPoint(ras_of(volume, INSIDE))
    got = slicer_mask(volume, segmentation, "organ")
    assert got[INSIDE]
    np.testing.assert_array_equal(got, server_mask(logic, segmentation, "organ"))


def test_a_box_from_a_markups_roi_segments_the_object_inside(a_scene, a_logic_on_the_block):
    logic, volume, segmentation = a_logic_on_the_block
    roi = a_scene.add("vtkMRMLMarkupsROINode", "box")
    low, high = ras_of(volume, (6, 11, 11)), ras_of(volume, (13, 18, 28))
    roi.SetCenterWorld(*((low + high) / 2))
    roi.SetSize(*(np.abs(high - low) + 1.0))    # axis-aligned in RAS around the oblique box
    task = logic.addBox(roi)
    prompt = task.result.interaction.prompt
    assert prompt["kind"] == "box"
    (k0, j0, i0), (k1, j1, i1) = prompt["box_kji"]    # inclusive corners, voxel space
    assert k0 <= 6 and j0 <= 11 and i0 <= 11 and k1 >= 13 and j1 >= 18 and i1 >= 28
    got = slicer_mask(volume, segmentation, "organ")
    inside_box = np.zeros(got.shape, bool)
    inside_box[k0:k1 + 1, j0:j1 + 1, i0:i1 + 1] = True
    assert got.any() and not (got & ~inside_box).any()
    np.testing.assert_array_equal(got, server_mask(logic, segmentation, "organ"))


def test_each_point_placed_in_a_prompt_list_sends_one_interaction(a_scene, a_logic_on_the_block):
    logic, volume, segmentation = a_logic_on_the_block
    positive = a_scene.add("vtkMRMLMarkupsFiducialNode", "positive")
    negative = a_scene.add("vtkMRMLMarkupsFiducialNode", "negative")
    set_prompt_polarity(positive, True)
    set_prompt_polarity(negative, False)
    logic.observePromptNodes(positive, negative)
    positive.AddControlPoint(*ras_of(volume, INSIDE))
    first = logic.lastUpdate
    assert first is not None and first.voxels > 0
    negative.AddControlPoint(*ras_of(volume, (10, 12, 12)))
    assert logic.lastUpdate is not first and logic.lastUpdate.voxels < first.voxels
    np.testing.assert_array_equal(slicer_mask(volume, segmentation, "organ"),
                                  server_mask(logic, segmentation, "organ"))


def test_a_click_outside_the_volume_is_refused_with_a_message(a_logic_on_the_block):
    logic, volume, _ = a_logic_on_the_block
    with pytest.raises(ValueError, match="outside the source volume"):
        logic.addPoint(ras_of(volume, (-5, 3, 3)))


def test_operations_without_inputs_say_what_to_select(a_connected_logic):
    with pytest.raises(ValueError, match="select a source volume"):
        a_connected_logic.addPoint((0.0, 0.0, 0.0))
