"""Slice engines (medsam, sam): prompts on slices and propagation, with a stand-in network.

The stand-in (``ThresholdNet``) replaces only the network; slices, intensity mapping, frames,
the embedding cache, prompts and the propagation walk run through the engines' real code.
Expected masks follow from the synthetic volumes: a bright tube that narrows and ends.
"""

import numpy as np
import pytest

from slicerfm_backend.engines.base import Prompt
from slicerfm_backend.errors import PromptError
from slicerfm_backend.engines.medsam.engine import MedSamEngine
from slicerfm_backend.engines.sam.engine import SamEngine
from slicerfm_backend.engines.slicewise import slices, walk
from slicerfm_backend.evaluation.inprocess import InProcessSession
from slicewise_helpers import ThresholdNet, disc_box, tube_volume

pytestmark = pytest.mark.torch  # the slice pipeline resizes with torch


def session(volume, spacing=(1.0, 1.0, 1.0), engine_class=MedSamEngine, net=None, **options):
    engine = engine_class("cpu", options)
    engine.network = net or ThresholdNet()
    return InProcessSession(engine, volume, spacing, "CT")


def full(s):
    return s.mask.region(((0, 0, 0), s.image.array.shape))


def box(corners):
    return Prompt("box", box_kji=corners)


@pytest.fixture
def a_tube():
    return tube_volume()


def test_a_slice_box_answers_its_slice_only(a_tube):
    s = session(a_tube)
    result = s.prompt(box(disc_box(a_tube, 14)))
    assert result.bbox == ((14, 0, 0), (15, 40, 50))
    assert np.array_equal(result.mask[0], a_tube[14] > 150)
    assert np.array_equal(full(s), np.isin(np.arange(30), [14])[:, None, None] & (a_tube > 150))


def test_propagation_follows_the_narrowing_tube_and_stops_where_it_ends_both_ways(a_tube):
    s = session(a_tube)
    s.prompt(box(disc_box(a_tube, 14)))
    done = s.propagate()
    assert np.array_equal(full(s), a_tube > 150)
    assert done.summary["stopped"] == {"increasing": "vanished", "decreasing": "vanished"}
    # up: 15..24 and the empty 25; down: 13..5 and the empty 4
    assert done.summary["slices_computed"] == 11 + 10 and done.summary["slices_written"] == 19
    assert done.result.bbox[0][0] == 5 and done.result.bbox[1][0] == 25


def test_progress_counts_slices_and_its_total_shrinks_to_what_was_done(a_tube):
    s = session(a_tube, max_slices=50)
    s.prompt(box(disc_box(a_tube, 14)))
    seen = []
    s.propagate(progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert [done for _, done, _ in seen] == list(range(1, 12)) + [11] + list(range(12, 22)) + [21]
    assert seen[0] == ("propagating", 1, 15 + 14)  # 15 slices above 14, 14 below, at most
    assert seen[-1][2] == 21


def test_the_slice_limit_stops_each_direction(a_tube):
    s = session(a_tube)
    s.prompt(box(disc_box(a_tube, 14)))
    done = s.propagate({"max_slices": 3})
    assert done.summary["stopped"] == {"increasing": "limit", "decreasing": "limit"}
    assert np.flatnonzero(full(s).any(axis=(1, 2))).tolist() == list(range(11, 18))


def test_the_server_cap_bounds_a_larger_request(a_tube):
    s = session(a_tube, max_slices=2)
    s.prompt(box(disc_box(a_tube, 14)))
    assert s.propagate({"max_slices": 100}).summary["max_slices"] == 2


def test_a_jump_to_a_neighbouring_object_stops_propagation(a_tube):
    volume = a_tube.copy()
    volume[19:] = 0
    volume[19:, 10:40, 10:45] = 300  # a large organ the tube runs into
    s = session(volume)
    s.prompt(box(disc_box(volume, 14)))
    done = s.propagate()
    assert done.summary["stopped"]["increasing"] == "jumped"
    assert np.flatnonzero(full(s).any(axis=(1, 2))).max() == 18


def test_a_three_d_box_keeps_propagation_inside_its_slices(a_tube):
    (_, j0, i0), (_, j1, i1) = disc_box(a_tube, 14)
    s = session(a_tube)
    s.prompt(box(((10, j0, i0), (17, j1, i1))))
    assert s.results[-1].bbox[0][0] == 13  # the middle slice of 10..17
    s.propagate()
    assert np.flatnonzero(full(s).any(axis=(1, 2))).tolist() == list(range(10, 18))


def test_a_refinement_repropagates_only_as_far_as_the_result_changes(a_tube):
    volume = a_tube.copy()
    volume[14:18, 5:9, 5:9] = 300  # a small neighbour on slices 14..17 only
    s = session(volume)
    s.prompt(box(disc_box(a_tube, 14)))
    s.propagate()
    assert not full(s)[14:18, 5:9, 5:9].any()
    s.prompt(Prompt("point", positive=True, point_kji=(14.0, 6.0, 6.0)))
    done = s.propagate()
    assert full(s)[14:18, 5:9, 5:9].all()
    # up: 15, 16, 17 change, 18 is as before; down: 13 is as before
    assert done.summary["stopped"] == {"increasing": "unchanged", "decreasing": "unchanged"}
    assert done.summary["slices_computed"] == 4 + 1
    assert done.result.bbox[0][0] == 15 and done.result.bbox[1][0] == 18


def test_emptying_a_propagated_slice_clears_what_was_propagated_through_it(a_tube):
    s = session(a_tube)
    s.prompt(box(disc_box(a_tube, 14)))
    s.propagate()
    s.prompt(Prompt("point", positive=False, point_kji=(18.0, 20.0, 25.0)))  # "the tube ends here"
    assert not full(s)[18].any()
    done = s.propagate()
    # 19..24 hung on slice 18 and go; 15..17 hang on the box on 14 and stay
    assert done.summary["slices_cleared"] == 6 and done.summary["slices_computed"] == 0
    assert np.flatnonzero(full(s).any(axis=(1, 2))).tolist() == list(range(5, 18))


def disc_masks(count, radius=3, shape=(12, 12)):
    jj, ii = np.mgrid[: shape[0], : shape[1]]
    return {n: (jj - 6) ** 2 + (ii - 6) ** 2 <= radius ** 2 for n in range(count)}


@pytest.mark.parametrize("anchors,cleared", [(set(), [5, 6, 7, 8, 9]), ({8}, [])])
def test_a_walk_that_vanishes_clears_the_old_continuation_unless_a_prompted_slice_holds_it(anchors, cleared):
    old = disc_masks(10)
    bigger = disc_masks(10, radius=4)

    def predict(n, previous):
        return bigger[n] if n < 5 else np.zeros((12, 12), bool)

    out = walk.walk(2, bigger[2], +1, 11, anchors, lambda n: old.get(n, np.zeros((12, 12), bool)), predict)
    assert out.stopped == "vanished" and sorted(out.masks) == [3, 4] and out.cleared == cleared


def test_a_walk_that_meets_the_old_result_stops_there():
    old = disc_masks(10)
    out = walk.walk(2, old[2], -1, 0, set(), old.get, lambda n, previous: old[n])
    assert out.stopped == "unchanged" and out.computed == 1 and not out.masks


def test_directions_keep_to_the_limits_and_the_volume():
    assert walk.directions(5, 10, 3) == [(1, 8), (-1, 2)]
    assert walk.directions(5, 10, 30, limits=(4, 6)) == [(1, 6), (-1, 4)]
    assert walk.directions(0, 10, 3) == [(1, 3)]
    assert walk.directions(0, 1, 3) == []


def test_propagation_stops_at_another_slice_with_prompts(a_tube):
    s = session(a_tube)
    s.prompt(box(disc_box(a_tube, 10)))
    s.prompt(box(disc_box(a_tube, 14)))
    done = s.propagate()
    assert done.summary["stopped"]["decreasing"] == "anchor"
    assert done.summary["slices_computed"] == 11 + 3  # up to 25; down 13, 12, 11


def test_an_empty_slice_result_does_not_propagate(a_tube):
    s = session(a_tube)
    s.prompt(box(((2, 10, 10), (2, 30, 30))))  # above the tube: nothing bright
    assert s.propagate() is None


def test_propagate_false_asks_for_the_slice_only(a_tube):
    s = session(a_tube)
    s.prompt(box(disc_box(a_tube, 14)))
    assert s.propagate({"propagate": False}) is None


@pytest.mark.parametrize("axis", [1, 2])
def test_slice_boxes_on_coronal_and_sagittal_slices_propagate_along_their_axis(axis):
    volume = np.zeros((30, 30, 30), np.int16)
    volume[8:20, 8:20, 8:20] = 300  # a cube
    corners = [[8, 8, 8], [19, 19, 19]]
    corners[0][axis] = corners[1][axis] = 12
    s = session(volume)
    result = s.prompt(box(tuple(map(tuple, corners))))
    assert result.bbox[0][axis] == 12 and result.bbox[1][axis] == 13
    done = s.propagate()
    assert done.summary["axis"] == axis
    assert np.array_equal(full(s), volume > 150)


def test_oblique_anisotropic_images_work_on_their_own_voxel_slices():
    volume = tube_volume()
    engine_net = ThresholdNet(keep_aspect=True)  # SAM's frame: the physical aspect matters
    s = session(volume, spacing=(5.0, 0.8, 0.6), engine_class=SamEngine, net=engine_net)
    angle = np.radians(25)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    s.image.ijk_to_ras = np.eye(4)
    s.image.ijk_to_ras[:3, :3] = rotation @ np.diag([0.6, 0.8, 5.0])
    s.prompt(box(disc_box(volume, 14)))
    done = s.propagate()
    assert np.array_equal(full(s), volume > 150)
    assert done.summary["plane"] == "axial"
    frame = s.cache["slicewise"].embeddings.get((0, 14))[1]
    assert frame.resized == (1024, 960)  # 40 x 0.8 mm by 50 x 0.6 mm: 32 mm by 30 mm


def test_plane_names_follow_the_slice_normal_in_ras():
    coronal_acquisition = np.array([[1.0, 0, 0, 0], [0, 0, 3.0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1]])
    assert slices.plane_name(coronal_acquisition, 0) == "coronal"
    assert slices.plane_name(coronal_acquisition, 1) == "axial"
    assert slices.plane_name(coronal_acquisition, 2) == "sagittal"


def test_a_refinement_on_a_seen_slice_reuses_its_embedding(a_tube):
    net = ThresholdNet()
    s = session(a_tube, net=net)
    s.prompt(box(disc_box(a_tube, 14)))
    s.propagate()
    encoded = net.encoded
    assert encoded == 1 + 21
    s.prompt(Prompt("point", positive=False, point_kji=(18.0, 20.0, 25.0)))
    assert net.encoded == encoded  # slice 18 was encoded during propagation
    store = s.cache["slicewise"]
    assert store.embeddings.hits >= 1 and store.embeddings.misses == encoded
    assert s.results[-1].timings_ms.get("encoder", 0.0) == 0.0


def test_the_embedding_cache_keeps_to_its_byte_cap(a_tube):
    s = session(a_tube, embedding_cache_mb=4 * (2000 + 64) / (1 << 20))  # 4 slices of 40 x 50 uint8
    s.prompt(box(disc_box(a_tube, 14)))
    s.propagate()
    store = s.cache["slicewise"].embeddings
    assert len(store) == 4 and store.bytes <= store.max_bytes


def test_propagation_encodes_slices_ahead_in_batches(a_tube):
    net = ThresholdNet()
    s = session(a_tube, net=net, encoder_batch=4)
    s.prompt(box(disc_box(a_tube, 14)))
    s.propagate()
    assert net.batches[0] == 1 and max(net.batches[1:]) == 4


def test_a_negative_point_removes_what_it_touches(a_tube):
    volume = a_tube.copy()
    volume[14, 5:9, 5:9] = 300
    s = session(volume)
    s.prompt(Prompt("point", positive=True, point_kji=(14.0, 20.0, 25.0)))
    s.prompt(Prompt("point", positive=True, point_kji=(14.0, 6.0, 6.0)))
    assert full(s)[14, 6, 6] and full(s)[14, 20, 25]
    s.prompt(Prompt("point", positive=False, point_kji=(14.0, 6.0, 6.0)))
    assert not full(s)[14, 6, 6] and full(s)[14, 20, 25]


def test_a_single_point_asks_sam_for_its_best_of_three_masks():
    engine = SamEngine("cpu", {})
    assert engine.multimask(False, [(1.0, 2.0, 1)])
    assert not engine.multimask(True, [(1.0, 2.0, 1)]) and not engine.multimask(False, [(1, 2, 1), (3, 4, 0)])
    assert not MedSamEngine("cpu", {}).multimask(False, [(1.0, 2.0, 1)])


def test_a_box_thin_on_two_axes_is_refused(a_tube):
    s = session(a_tube)
    with pytest.raises(PromptError, match="two voxels on two axes"):
        s.prompt(box(((14, 20, 10), (14, 20, 30))))


def test_one_segment_is_worked_on_one_axis(a_tube):
    s = session(a_tube)
    s.prompt(box(disc_box(a_tube, 14)))
    with pytest.raises(PromptError, match="axis k"):
        s.prompt(box(((10, 20, 20), (20, 20, 30))))  # a box on a slice of axis j
    s.prompts.pop()
    with pytest.raises(PromptError, match="axis k"):
        s.prompt(Prompt("point", point_kji=(14.0, 20.0, 25.0)), {"slice_axis": 2})


def test_points_without_a_box_go_to_the_requested_axis(a_tube):
    s = session(a_tube)
    result = s.prompt(Prompt("point", point_kji=(14.0, 20.0, 25.0)), {"slice_axis": 1})
    assert result.bbox == ((0, 20, 0), (30, 21, 50))
    assert np.array_equal(result.mask[:, 0, :], a_tube[:, 20, :] > 150)
