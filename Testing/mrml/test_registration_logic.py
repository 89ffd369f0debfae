"""The registration Logic: inputs and masks read from the scene, then end to end against a
real backend process with the classic engine (progress, cancel, transform node, hardened
copy, carried segments)."""

import numpy as np
import pytest
from logic_helpers import dice
from mrml_helpers import oblique_ijk_to_ras
from mrml_registration_pair import CENTRE, SHIFT, add_pair, ball, grid_points

from slicerfm_client import errors
from SlicerFMLib.registration_logic import RegistrationLogic, export_mask
from SlicerFMLib.segment_io import apply_mask_update, segment_to_mask
from SlicerFMLib.transform_nodes import place_registration
from SlicerFMLib.volume_io import volume_to_array
from SlicerFMLib.worker import BackgroundWorker


@pytest.fixture
def a_pair(a_scene):
    return add_pair(a_scene)


def draw_ball(segmentation, segment_id, volume, centre, radius):
    """Paint a ball (world RAS centre, mm) into the segment on ``volume``'s grid."""
    array, ijk_to_ras = volume_to_array(volume)
    mask = ball(array.shape, ijk_to_ras, centre, radius)
    apply_mask_update(segmentation, segment_id, [[0, 0, 0], list(mask.shape)], mask, ijk_to_ras)
    return mask


def test_a_mask_segment_is_exported_on_its_volumes_grid(a_scene, a_pair, a_parent_transform):
    """The segmentation lies under a linear transform, on another grid: the exported mask is
    the ball on the volume's own voxels, as a world-space check computes it."""
    fixed, _ = a_pair
    segmentation = a_scene.add_segmentation("mask", "empty")
    segmentation.SetAndObserveTransformNodeID(
        a_scene.add_linear_transform(a_parent_transform).GetID())
    other = a_scene.add("vtkMRMLScalarVolumeNode", "paint grid")
    from SlicerFMLib.volume_io import update_volume_from_array

    paint_grid = oblique_ijk_to_ras(spacing=(0.9, 0.8, 1.1))
    paint_grid[:3, 3] = CENTRE - paint_grid[:3, :3] @ [29.5, 24.5, 19.5]   # centred on CENTRE
    update_volume_from_array(other, np.zeros((40, 50, 60), np.int16), paint_grid)
    draw_ball(segmentation, "mask", other, CENTRE, 9.0)
    mask = export_mask(segmentation, "mask", fixed)
    array, ijk_to_ras = volume_to_array(fixed)
    assert mask.shape == array.shape and mask.dtype == bool
    expected = ball(array.shape, ijk_to_ras, CENTRE, 9.0)
    assert dice(mask, expected) > 0.85
    with pytest.raises(ValueError, match="'empty' is empty"):
        export_mask(segmentation, "empty", fixed)


def test_prepare_reads_volumes_masks_and_options_and_refuses_bad_input(a_scene, a_pair):
    fixed, moving = a_pair
    fixed.SetAttribute("DICOM.Modality", "MR")
    segmentation = a_scene.add_segmentation("fixed mask", "moving mask")
    draw_ball(segmentation, "fixed mask", fixed, CENTRE, 10.0)
    draw_ball(segmentation, "moving mask", moving, CENTRE + SHIFT, 10.0)
    logic = RegistrationLogic(connection=None)
    with pytest.raises(ValueError, match="select a fixed and a moving volume"):
        logic.prepare()
    logic.fixedVolume, logic.movingVolume = fixed, fixed
    with pytest.raises(ValueError, match="the same"):
        logic.prepare()
    logic.movingVolume = moving
    logic.fixedMask = (segmentation, "fixed mask")
    logic.movingMask = (segmentation, "moving mask")
    logic.ioSteps, logic.similarity, logic.affinePrealign = 20, "lncc", True
    payload = logic.prepare()
    assert payload.fixed.shape == payload.fixed_mask.shape == volume_to_array(fixed)[0].shape
    assert payload.moving.shape == payload.moving_mask.shape == volume_to_array(moving)[0].shape
    assert payload.fixed_modality == "MR" and payload.moving_modality == "other"
    assert payload.options == {"io_steps": 20, "similarity": "lncc", "affine_prealign": True}
    np.testing.assert_allclose(payload.moving_ijk_to_ras, volume_to_array(moving)[1])
    logic.similarity = "mutual information"
    with pytest.raises(ValueError, match="similarity must be one of"):
        logic.prepare()
    logic.similarity, logic.ioSteps, logic.fixedModality = None, -3, "PET"
    with pytest.raises(ValueError, match="modality must be one of"):
        logic.prepare()
    logic.fixedModality = "CT"
    with pytest.raises(ValueError, match="0 or more"):
        logic.prepare()


def test_a_moving_volume_under_an_earlier_registration_is_registered_from_where_it_was(
        a_scene, a_pair):
    fixed, moving = a_pair
    array, ijk_to_ras = volume_to_array(fixed)
    earlier = place_registration(moving, np.zeros(array.shape + (3,), np.float32), ijk_to_ras)
    assert moving.GetParentTransformNode() is earlier
    logic = RegistrationLogic(connection=None)
    logic.fixedVolume, logic.movingVolume = fixed, moving
    payload = logic.prepare()                   # a non-linear parent would have been refused
    assert moving.GetParentTransformNode() is None
    assert payload.moving.shape == volume_to_array(moving)[0].shape


@pytest.fixture
def a_registration_logic(a_connected_logic):
    worker = BackgroundWorker()
    logic = RegistrationLogic(a_connected_logic.connection, runner=worker)
    logic.pollSeconds = 0.1
    logic.messages = []
    logic.messageCallback = lambda text, level: logic.messages.append((level, text))
    yield logic, worker
    worker.shutdown()


def test_registration_end_to_end_makes_a_transform_node_that_recovers_the_shift(
        a_registration_logic, a_scene, a_pair, a_parent_transform):
    logic, worker = a_registration_logic
    fixed, moving = a_pair
    moving_segments = a_scene.add_segmentation("organ", name="drawn on moving")
    draw_ball(moving_segments, "organ", moving, CENTRE + SHIFT, 7.0)
    for volume in (fixed, moving):
        volume.SetAttribute("DICOM.Modality", "CT")
    snapshots, outcomes = [], []
    logic.progressListener = snapshots.append
    logic.fixedVolume, logic.movingVolume = fixed, moving
    logic.engine, logic.harden = "classic", True
    logic.run(onDone=outcomes.append)
    assert logic.running
    worker.wait(120.0)
    assert logic.lastError is None, logic.messages
    outcome = outcomes[0]
    assert {"running", "done"} <= {s.state for s in snapshots}
    assert any(s.stage and s.total > 0 and s.fraction is not None for s in snapshots)
    node = outcome.transform_node
    assert node.IsA("vtkMRMLGridTransformNode") and moving.GetParentTransformNode() is node
    # the figures a user needs come through (their quality is the engine's tests' business)
    assert 0.0 <= outcome.meta["neg_jacobian_fraction"] < 0.05 and outcome.meta["runtime_s"] > 0
    assert "folding" in outcome.summary()
    # the object's centre in the fixed scan maps close to its centre in the moving scan
    mapped = np.array(node.GetTransformFromParent().TransformPoint(*CENTRE))
    assert np.linalg.norm(mapped - (CENTRE + SHIFT)) < 2.0, mapped - CENTRE
    # the hardened copy lies on the fixed grid and matches the fixed scan
    fixed_array, fixed_geometry = volume_to_array(fixed)
    warped_array, warped_geometry = volume_to_array(outcome.warped_volume)
    np.testing.assert_allclose(warped_geometry, fixed_geometry)
    assert np.corrcoef(warped_array.ravel(), fixed_array.ravel())[0, 1] > 0.97
    assert "Registration done" in logic.messages[-1][1]
    # carry the segment drawn on the moving scan onto the fixed scan
    carried = logic.carrySegments(moving_segments)
    result = segment_to_mask(carried, "organ", fixed_array.shape, fixed_geometry)
    assert dice(result, ball(fixed_array.shape, fixed_geometry, CENTRE, 7.0)) > 0.75
    assert dice(segment_to_mask(moving_segments, "organ", fixed_array.shape, fixed_geometry),
                result) < 0.3        # the source was not where the fixed organ is


def test_from_the_console_a_registration_with_masks_blocks_and_returns_its_outcome(
        a_connected_logic, a_scene, a_pair):
    """No runner given: the call blocks (Slicer's Python console) and errors are raised."""
    fixed, moving = a_pair
    masks = a_scene.add_segmentation("fixed", "moving")
    draw_ball(masks, "fixed", fixed, CENTRE, 14.0)
    draw_ball(masks, "moving", moving, CENTRE + SHIFT, 14.0)
    logic = RegistrationLogic(a_connected_logic.connection)
    logic.fixedVolume, logic.movingVolume = fixed, moving
    logic.fixedMask, logic.movingMask = (masks, "fixed"), (masks, "moving")
    logic.applyToMoving = False
    logic.run()
    outcome = logic.lastOutcome
    assert outcome is not None and outcome.warped_volume is None
    assert moving.GetParentTransformNode() is None           # not applied, as asked
    mapped = np.array(outcome.transform_node.GetTransformFromParent().TransformPoint(*CENTRE))
    assert np.linalg.norm(mapped - (CENTRE + SHIFT)) < 2.5
    logic.engine = "no-such-engine"
    with pytest.raises(errors.SlicerFMError, match="no-such-engine"):
        logic.run()


def test_cancelling_a_registration_ends_the_job_and_changes_nothing(
        a_registration_logic, a_scene):
    """A bigger pair (a few seconds of work): cancelled as soon as the job is seen."""
    logic, worker = a_registration_logic
    grid = oblique_ijk_to_ras(spacing=(1.0, 1.0, 1.2), origin=(-20.0, -45.0, 25.0))
    shape = (90, 100, 100)
    fixed, moving = add_pair(a_scene, moving_shape=shape, fixed_shape=shape, fixed_grid=grid)
    logic.progressListener = lambda snapshot: logic.cancel() if snapshot.job_id else None
    logic.fixedVolume, logic.movingVolume = fixed, moving
    logic.run()
    worker.wait(120.0)
    assert isinstance(logic.lastError, errors.JobCancelledError), logic.messages
    assert ("info", "registration cancelled") in logic.messages
    assert moving.GetParentTransformNode() is None
    assert a_scene.scene.GetNodesByClass("vtkMRMLGridTransformNode").GetNumberOfItems() == 0
    assert not logic.running


def test_a_failed_registration_reports_the_servers_message(a_registration_logic, a_scene):
    logic, worker = a_registration_logic
    fixed, moving = add_pair(a_scene)
    logic.fixedVolume, logic.movingVolume = fixed, moving
    logic.engine = "no-such-engine"
    logic.run()
    worker.wait(60.0)
    assert logic.lastError is not None
    level, text = logic.messages[-1]
    assert level == "error" and "no-such-engine" in text
    assert moving.GetParentTransformNode() is None


def test_carrying_without_a_registration_says_what_to_do(a_scene, a_pair):
    logic = RegistrationLogic(connection=None)
    logic.fixedVolume = a_pair[0]
    with pytest.raises(ValueError, match="run a registration first"):
        logic.carrySegments(a_scene.add_segmentation("a"))


def test_grid_points_helper_matches_the_matrix():
    points = grid_points((2, 3, 4), oblique_ijk_to_ras())
    np.testing.assert_allclose(points[1, 2, 3], (oblique_ijk_to_ras() @ [3, 2, 1, 1])[:3])
