"""Mirrors of segments: cropped masks, and telling Slicer-side edits from SlicerFM's own."""

import numpy as np
import pytest

from SlicerFMLib.segment_io import apply_mask_update
from SlicerFMLib.segment_sync import CroppedMask, new_state, record_write, refresh_state
from SlicerFMLib.volume_io import volume_to_array


def test_a_cropped_mask_grows_shrinks_and_round_trips():
    mask = CroppedMask((6, 7, 8))
    block = np.ones((2, 2, 2), bool)
    mask.write(((1, 1, 1), (3, 3, 3)), block)
    mask.write(((4, 5, 6), (6, 7, 8)), block)
    assert mask.bbox == ((1, 1, 1), (6, 7, 8)) and mask.voxels == 16
    mask.write(((1, 1, 1), (3, 3, 3)), ~block)                  # clearing shrinks the box
    assert mask.bbox == ((4, 5, 6), (6, 7, 8))
    full = mask.full()
    assert full.sum() == 8 and mask.equals(full) and CroppedMask.from_full(full).equals(full)
    full[0, 0, 0] = True
    assert not mask.equals(full)
    mask.write(((4, 5, 6), (6, 7, 8)), ~block)
    bbox, seed = mask.seed_block()
    assert mask.bbox is None and bbox == [[0, 0, 0], [1, 1, 1]] and not seed.any()


@pytest.fixture
def a_tracked_segment(a_scene, an_oblique_volume):
    """(state of segment 'a', segmentation, shape, ijk_to_ras_world) after one write."""
    volume, array = an_oblique_volume
    _, ijk_to_ras = volume_to_array(volume)
    segmentation = a_scene.add_segmentation("a", "b")
    state = new_state(segmentation, "a", array.shape, ijk_to_ras)
    bbox = ((2, 3, 4), (6, 8, 9))
    apply_mask_update(segmentation, "a", bbox, np.ones((4, 5, 5), bool), ijk_to_ras)
    record_write(state, segmentation, bbox, array.shape, ijk_to_ras)
    return state, segmentation, array.shape, ijk_to_ras


def test_our_own_write_leaves_the_segment_clean(a_tracked_segment):
    state, segmentation, shape, ijk_to_ras = a_tracked_segment
    assert state.mirror.voxels == 100
    assert refresh_state(state, segmentation, shape, ijk_to_ras) is state and not state.dirty


def test_a_paint_in_slicer_marks_the_segment_dirty_with_the_new_voxels(a_tracked_segment):
    state, segmentation, shape, ijk_to_ras = a_tracked_segment
    apply_mask_update(segmentation, "a", ((0, 0, 0), (1, 1, 1)), np.ones((1, 1, 1), bool),
                      ijk_to_ras)
    refresh_state(state, segmentation, shape, ijk_to_ras)
    assert state.dirty and state.mirror.voxels == 101 and state.needs_seed(state.generation)


def test_another_segment_of_the_layer_changing_is_not_a_change(a_tracked_segment):
    state, segmentation, shape, ijk_to_ras = a_tracked_segment
    stamp = state.stamp
    apply_mask_update(segmentation, "b", ((8, 8, 8), (9, 9, 9)), np.ones((1, 1, 1), bool),
                      ijk_to_ras)
    refresh_state(state, segmentation, shape, ijk_to_ras)
    assert state.stamp != stamp and not state.dirty


def test_a_new_grid_gives_a_new_state_read_from_slicer(a_tracked_segment):
    state, segmentation, shape, ijk_to_ras = a_tracked_segment
    moved = ijk_to_ras.copy()
    moved[:3, 3] += 1.0
    fresh = refresh_state(state, segmentation, shape, moved)
    assert fresh is not state and fresh.generation == -1 and fresh.mirror.voxels > 0
