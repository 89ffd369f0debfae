"""Slice engines from the module's Logic, against a real backend process.

The backend serves ``slices-test``: the ``medsam`` engine -- its real slice prompts, embedding
cache and propagation job -- with a stand-in network (Testing/backend/slicewise_helpers.py,
loaded through SLICERFM_ENGINE_PLUGINS) that segments the part of a slice similar to the
box's inside. While the file ``backend.hold`` exists every propagated slice waits, so the
tests see a propagation running for as long as they need. The volume is oblique, anisotropic
and under a parent transform; its object is a cuboid, so the right answer on every axis is
known: the prompted slice's cross-section at once, the cuboid once propagated.
"""

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from logic_helpers import ras_of, server_mask, slicer_mask
from mrml_helpers import oblique_ijk_to_ras

from SlicerFMLib.editor_settings import set_segment_locked
from SlicerFMLib.logic import PROPAGATION
from SlicerFMLib.segment_io import apply_mask_update
from SlicerFMLib.slice_views import ObliqueViewError
from SlicerFMLib.volume_io import update_volume_from_array, volume_to_array
from SlicerFMLib.vtk_arrays import numpy_to_matrix

HERE = Path(__file__).resolve().parent
BACKEND = str(Path(sys.executable).with_name("slicerfm-backend"))
ENGINE = "slices-test"
SHAPE = (18, 22, 26)
CUBOID = (slice(4, 14), slice(6, 17), slice(7, 20))   # (k, j, i): the object


@pytest.fixture(scope="module")
def a_slice_backend(tmp_path_factory):
    """A `slicerfm-backend serve` process with classic and the held stand-in slice engine;
    ``backend.hold`` is the file that holds its propagations."""
    from slicerfm_client.launcher import LocalBackend

    folder = tmp_path_factory.mktemp("slice-backend")
    env = dict(os.environ)
    env["SLICERFM_ENGINE_PLUGINS"] = f"{ENGINE}=slicewise_helpers:HeldSliceEngine"
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent / "backend"), env.get("PYTHONPATH", "")])
    env["SLICERFM_TEST_SLICE_HOLD"] = str(folder / "hold")
    backend = LocalBackend([BACKEND], engines=["classic", ENGINE], env=env,
                           log_path=str(folder / "server.log"))
    backend.hold = Path(env["SLICERFM_TEST_SLICE_HOLD"])
    backend.start()
    yield backend
    backend.stop()


@pytest.fixture
def a_hold(a_slice_backend):
    """Hold the backend's propagations (released at the end, whatever happened)."""
    a_slice_backend.hold.touch()
    yield a_slice_backend.hold
    a_slice_backend.hold.unlink(missing_ok=True)


@pytest.fixture
def a_cuboid_volume(a_scene, a_parent_transform):
    """(volume node, array): -1000 HU with a 300 HU cuboid, on an oblique anisotropic grid
    (spacing 0.7 / 1.1 / 2.5 mm along i / j / k) under a linear transform."""
    rng = np.random.default_rng(3)
    array = rng.normal(-1000, 10, SHAPE).astype(np.int16)
    array[CUBOID] = 300
    volume = a_scene.add("vtkMRMLScalarVolumeNode", "cuboid")
    update_volume_from_array(volume, array, oblique_ijk_to_ras())
    volume.SetAndObserveTransformNodeID(a_scene.add_linear_transform(a_parent_transform).GetID())
    return volume, array


@pytest.fixture
def a_slice_logic(a_slice_backend, a_scene, a_cuboid_volume):
    """The module's Logic in background mode (as the widget and the browser run it), on the
    slice engine, with the cuboid volume and a segmentation with 'organ' and 'other'."""
    from SlicerFMLib.connection import REMOTE, ConnectionSettings
    from SlicerFMLib.logic import SlicerFMCoreLogic

    core = SlicerFMCoreLogic(background=True)
    core.messages = []
    core.messageCallback = lambda feature, text, level: core.messages.append((level, text))
    core.connect(ConnectionSettings(mode=REMOTE, url=a_slice_backend.url))
    core.wait(60)
    volume, _ = a_cuboid_volume
    segmentation = a_scene.add_segmentation("organ", "other")
    logic = core.interactive
    logic.engine = ENGINE
    logic.setInputs(volume, segmentation, "organ")
    yield core, logic, volume, segmentation
    core.disconnect()
    core.shutdown()


def pump(core, until, timeout_s=60.0, what="the condition"):
    """Deliver results on this (main) thread until ``until()`` holds."""
    deadline = time.monotonic() + timeout_s
    while not until():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout_s:.0f} s")
        core.poll()
        time.sleep(0.01)


def slice_view(scene, volume, axis, index):
    """A slice node showing slice ``index`` of voxel ``axis`` (0 = k, 1 = j, 2 = i) of
    ``volume``: its normal along that voxel axis (as Slicer's 'Rotate to volume plane')."""
    _, ijk_to_ras = volume_to_array(volume)
    columns = ijk_to_ras[:3, :3] / np.linalg.norm(ijk_to_ras[:3, :3], axis=0)
    normal = columns[:, 2 - axis]
    x, y = (columns[:, c] for c in range(3) if c != 2 - axis)
    centre_kji = np.array(SHAPE, float) / 2
    centre_kji[axis] = index
    matrix = np.eye(4)
    matrix[:3, 0], matrix[:3, 1], matrix[:3, 2] = x, np.cross(normal, x), normal
    matrix[:3, 3] = ras_of(volume, centre_kji)
    node = scene.AddNewNodeByClass("vtkMRMLSliceNode")
    node.SetLayoutName(("Red", "Green", "Yellow")[axis])
    node.GetSliceToRAS().DeepCopy(numpy_to_matrix(matrix))
    node.UpdateMatrices()
    return node


def roi_on_slice(scene, volume, axis, index, low_kji, high_kji, depth_voxels=3.0):
    """An ROI as placed in a slice view of ``axis``: over voxels low..high (inclusive) of
    the other axes, ``depth_voxels`` deep around slice ``index``, along the volume's axes."""
    _, ijk_to_ras = volume_to_array(volume)
    spacing_ijk = np.linalg.norm(ijk_to_ras[:3, :3], axis=0)
    low, high = np.array(low_kji, float), np.array(high_kji, float)
    low[axis] = high[axis] = index
    centre = ras_of(volume, (low + high) / 2)
    orientation = np.eye(4)
    orientation[:3, :3] = ijk_to_ras[:3, :3] / spacing_ijk
    orientation[:3, 3] = centre
    size_kji = high - low + 1.2
    size_kji[axis] = depth_voxels
    roi = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "box")
    roi.SetAndObserveObjectToNodeMatrix(numpy_to_matrix(orientation))
    roi.SetSize(*(size_kji[::-1] * spacing_ijk))
    return roi


def cuboid_mask():
    mask = np.zeros(SHAPE, bool)
    mask[CUBOID] = True
    return mask


def on_slice(mask, axis, index):
    """``mask`` kept on slice ``index`` of ``axis`` only."""
    keep = np.zeros(SHAPE, bool)
    where = [slice(None)] * 3
    where[axis] = index
    keep[tuple(where)] = mask[tuple(where)]
    return keep


def draw_box(a_scene, logic, volume, axis, index):
    """The box tool in the view of ``axis`` around the cuboid's cross-section on ``index``."""
    view = slice_view(a_scene.scene, volume, axis, index)
    low = [s.start - 1 for s in CUBOID]
    high = [s.stop for s in CUBOID]
    roi = roi_on_slice(a_scene.scene, volume, axis, index, low, high)
    return logic.addBox(roi, view=view)


@pytest.mark.parametrize("axis, index", [(0, 8), (1, 11), (2, 12)])
def test_a_box_in_a_slice_view_segments_that_views_slice_then_the_propagation_the_rest(
        a_scene, a_slice_logic, a_hold, axis, index):
    core, logic, volume, segmentation = a_slice_logic
    task = draw_box(a_scene, logic, volume, axis, index)
    pump(core, lambda: task.delivered, what="the prompted slice")
    sent = task.result.interaction
    low, high = [s.start - 1 for s in CUBOID], [s.stop for s in CUBOID]
    low[axis] = high[axis] = index                 # one voxel thick on the view's axis
    assert sent.prompt["box_kji"] == [low, high] and sent.slice_options["slice_axis"] == axis
    np.testing.assert_array_equal(slicer_mask(volume, segmentation, "organ"),
                                  on_slice(cuboid_mask(), axis, index))
    watch = logic.activePropagation()
    assert watch is not None and watch.state == "following"
    pump(core, lambda: logic.propagationProgress().state == "running",
         what="the propagation running")
    assert [feature for feature, _ in core.activeJobs()] == [PROPAGATION]
    assert core.jobText(PROPAGATION, logic.propagationProgress()).startswith("propagating 'organ'")
    a_hold.unlink()
    pump(core, lambda: logic.activePropagation() is None, what="the propagation applied")
    snapshot = watch.progress.snapshot()
    assert snapshot.state == "done" and snapshot.done == snapshot.total > 0
    np.testing.assert_array_equal(slicer_mask(volume, segmentation, "organ"), cuboid_mask())
    np.testing.assert_array_equal(server_mask(logic, segmentation, "organ"), cuboid_mask())
    assert any("'organ' propagated to" in text for _, text in core.messages)
    undo = logic.undo()                  # one undo takes the propagation back, not the slice
    pump(core, lambda: undo.delivered, what="the undo")
    np.testing.assert_array_equal(slicer_mask(volume, segmentation, "organ"),
                                  on_slice(cuboid_mask(), axis, index))


def test_a_click_in_a_slice_view_refines_that_views_slice(a_scene, a_slice_logic, a_hold):
    core, logic, volume, segmentation = a_slice_logic
    view = slice_view(a_scene.scene, volume, 1, 9)              # a coronal-like view, j = 9
    task = logic.addPoint(ras_of(volume, (9, 9, 12)), view=view)
    pump(core, lambda: task.delivered, what="the click")
    assert task.result.interaction.slice_options["slice_axis"] == 1
    np.testing.assert_array_equal(slicer_mask(volume, segmentation, "organ"),
                                  on_slice(cuboid_mask(), 1, 9))


def test_an_oblique_view_cannot_send_slice_prompts_and_says_what_to_do(a_scene, a_slice_logic):
    core, logic, volume, segmentation = a_slice_logic
    view = a_scene.scene.AddNewNodeByClass("vtkMRMLSliceNode")
    view.SetLayoutName("Red")
    view.SetOrientationToAxial()         # world axial: oblique to this volume's slices
    roi = roi_on_slice(a_scene.scene, volume, 0, 8, (3, 5, 6), (14, 17, 20))
    with pytest.raises(ObliqueViewError, match="oblique to the volume's slices.*Rotate to volume plane"):
        logic.addBox(roi, view=view)
    core.wait(30)
    assert not slicer_mask(volume, segmentation, "organ").any()
    assert logic.activePropagation() is None


def test_cancel_leaves_the_prompted_slice_and_nothing_else(a_scene, a_slice_logic, a_hold):
    core, logic, volume, segmentation = a_slice_logic
    task = draw_box(a_scene, logic, volume, 0, 8)
    pump(core, lambda: task.delivered and logic.propagationProgress().state == "running",
         what="the propagation running")
    watch = logic.activePropagation()
    core.cancelJob(PROPAGATION)
    pump(core, lambda: logic.activePropagation() is None, what="the cancel")
    a_hold.unlink()
    assert watch.status["state"] == "cancelled"
    assert ("info", "propagation of 'organ' cancelled: the prompted slice stays") in core.messages
    expected = on_slice(cuboid_mask(), 0, 8)
    np.testing.assert_array_equal(slicer_mask(volume, segmentation, "organ"), expected)
    np.testing.assert_array_equal(server_mask(logic, segmentation, "organ"), expected)


def test_a_later_click_supersedes_the_propagation_and_loses_nothing(a_scene, a_slice_logic, a_hold):
    core, logic, volume, segmentation = a_slice_logic
    box = draw_box(a_scene, logic, volume, 0, 8)
    pump(core, lambda: box.delivered, what="the prompted slice")
    first = logic.activePropagation()
    view = slice_view(a_scene.scene, volume, 0, 5)
    click = logic.addPoint(ras_of(volume, (5, 10, 12)), view=view)     # another slice, same axis
    pump(core, lambda: click.delivered, what="the click")
    assert first.state == "ended" and logic.activePropagation() is not first
    a_hold.unlink()
    pump(core, lambda: logic.activePropagation() is None and not core.busy,
         what="the second propagation")
    final = slicer_mask(volume, segmentation, "organ")
    np.testing.assert_array_equal(final, server_mask(logic, segmentation, "organ"))
    expected = cuboid_mask()
    expected[9:] = False          # the click's propagation stops at the box's slice (an anchor)
    np.testing.assert_array_equal(final, expected)


def test_a_propagation_that_finished_before_a_click_is_applied_before_the_click(
        a_scene, a_slice_logic):
    """The server committed the propagation, the Logic has not applied it yet, and the user
    clicks on the segment: the click takes it over and applies it first."""
    core, logic, volume, segmentation = a_slice_logic
    box = draw_box(a_scene, logic, volume, 0, 8)
    logic.runner.wait(60)                     # the interactive runner only: the slice
    assert box.delivered
    watch = logic.activePropagation()
    client = logic.connection.client
    deadline = time.monotonic() + 60
    while client.job_status(watch.job_id)["state"] != "done":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    view = slice_view(a_scene.scene, volume, 0, 12)
    click = logic.addPoint(ras_of(volume, (12, 2, 2)), positive=False, view=view)  # outside
    logic.runner.wait(60)
    assert click.delivered and click.result.prior is not None and watch.state == "ended"
    pump(core, lambda: logic.activePropagation() is None and not core.busy,
         what="everything delivered")          # the follower's late news changes nothing
    np.testing.assert_array_equal(slicer_mask(volume, segmentation, "organ"), cuboid_mask())
    np.testing.assert_array_equal(server_mask(logic, segmentation, "organ"), cuboid_mask())


def test_a_locked_segment_keeps_its_voxels_through_a_propagation(a_scene, a_slice_logic):
    core, logic, volume, segmentation = a_slice_logic
    array, ijk_to_ras = volume_to_array(volume)
    other = np.zeros(SHAPE, bool)
    other[10:12, 8:12, 9:14] = True               # inside the cuboid, away from slice 6
    apply_mask_update(segmentation, "other", [[0, 0, 0], list(SHAPE)], other, ijk_to_ras)
    set_segment_locked(segmentation, "other", True)
    task = draw_box(a_scene, logic, volume, 0, 6)
    pump(core, lambda: task.delivered and logic.activePropagation() is None,
         what="the propagation applied")
    organ = slicer_mask(volume, segmentation, "organ")
    np.testing.assert_array_equal(organ, cuboid_mask() & ~other)
    np.testing.assert_array_equal(slicer_mask(volume, segmentation, "other"), other)
    np.testing.assert_array_equal(server_mask(logic, segmentation, "organ"), organ)


def test_in_the_console_a_box_returns_with_its_propagation_applied(
        a_slice_backend, a_scene, a_cuboid_volume):
    from SlicerFMLib.connection import REMOTE, ConnectionSettings
    from SlicerFMLib.logic import SlicerFMCoreLogic

    core = SlicerFMCoreLogic()                # inline runners: blocking calls
    core.connect(ConnectionSettings(mode=REMOTE, url=a_slice_backend.url))
    try:
        volume, _ = a_cuboid_volume
        segmentation = a_scene.add_segmentation("organ")
        core.interactive.engine = ENGINE
        core.interactive.setInputs(volume, segmentation, "organ")
        draw_box(a_scene, core.interactive, volume, 2, 12)
        np.testing.assert_array_equal(slicer_mask(volume, segmentation, "organ"), cuboid_mask())
    finally:
        core.disconnect()
