"""Automatic segmentation from the module's Logic against a real backend process.

The backend serves the vista3d engine with a narrow random network (``vista3d-small``,
Testing/backend/vista3d_helpers.py, loaded through SLICERFM_ENGINE_PLUGINS): the same code
path as the released model, at test speed. Its labels are random, so the tests compare the
segments with the label map the server produced, not with anatomy.
"""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from logic_helpers import ras_of, slicer_mask

from SlicerFMLib import interaction as ops
from SlicerFMLib.auto_segment_logic import computed_box
from SlicerFMLib.editor_settings import set_segment_locked
from SlicerFMLib.label_segments import segment_class, tag_class
from SlicerFMLib.segment_io import apply_mask_update
from SlicerFMLib.volume_io import update_volume_from_array, volume_to_array
from SlicerFMLib.worker import BackgroundWorker

pytestmark = pytest.mark.torch

HERE = Path(__file__).resolve().parent
BACKEND = str(Path(sys.executable).with_name("slicerfm-backend"))
ENGINE = "vista3d-small"
GATED = "vista3d-gated"  # waits for a gate file before each window: a job that stays running


@pytest.fixture(scope="module")
def a_vista_backend(tmp_path_factory):
    """A `slicerfm-backend serve` process with classic and the narrow random vista3d."""
    from slicerfm_client.launcher import LocalBackend

    env = dict(os.environ)
    env["SLICERFM_ENGINE_PLUGINS"] = (f"{ENGINE}=vista3d_helpers:SmallVista3DEngine,"
                                      f"{GATED}=vista3d_helpers:GatedSmallVista3DEngine")
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent / "backend"), env.get("PYTHONPATH", "")])
    folder = tmp_path_factory.mktemp("vista-backend")
    log = folder / "server.log"
    env["SLICERFM_TEST_GATE"] = str(folder / "gate-open")
    backend = LocalBackend([BACKEND], engines=["classic", ENGINE, GATED], env=env, log_path=str(log))
    backend.gate = Path(env["SLICERFM_TEST_GATE"])
    backend.start()
    yield backend
    backend.stop()


@pytest.fixture
def a_vista_logic(a_vista_backend):
    """(interactive Logic, automatic Logic on its own background worker), one connection:
    the module's Logic without Slicer."""
    from SlicerFMLib.connection import REMOTE, ConnectionSettings
    from SlicerFMLib.logic import SlicerFMCoreLogic

    core = SlicerFMCoreLogic()
    auto = core.autoSegmentation
    auto.engine = ENGINE
    core.connect(ConnectionSettings(mode=REMOTE, url=a_vista_backend.url))
    worker = BackgroundWorker()
    auto.runner = worker
    auto.messages = []
    auto.messageCallback = lambda text, level: auto.messages.append((level, text))
    yield core.interactive, auto, worker
    core.disconnect()
    core.shutdown()


def phantom(shape=(16, 30, 28)):
    """A CT-like body (40 HU) in air with a bright (300 HU) core; int16 HU."""
    rng = np.random.default_rng(4)
    grid = np.indices(shape).astype(float)
    centre = (np.array(shape) - 1)[:, None, None, None] / 2
    r = np.sqrt((((grid - centre) / (np.array(shape)[:, None, None, None] / 2.4)) ** 2).sum(0))
    image = np.where(r < 1, 40.0, -1000.0)
    image[r < 0.45] = 300.0
    return (image + rng.normal(0, 10, shape)).astype(np.int16)


@pytest.fixture
def a_ct_volume(a_scene, a_parent_transform):
    """A phantom CT on an anisotropic grid under a linear transform, tagged CT."""
    volume = a_scene.add("vtkMRMLScalarVolumeNode", "ct")
    matrix = np.diag([1.6, 1.4, 2.5, 1.0])
    matrix[:3, 3] = [-30.0, -20.0, 10.0]
    update_volume_from_array(volume, phantom(), matrix)
    volume.SetAttribute("DICOM.Modality", "CT")
    volume.SetAndObserveTransformNodeID(a_scene.add_linear_transform(a_parent_transform).GetID())
    return volume


def run(auto, worker, **kwargs):
    snapshots = []
    auto.progressListener = snapshots.append
    outcomes = []
    auto.run(onDone=outcomes.append, **kwargs)
    worker.wait(240.0)
    return outcomes, snapshots


def test_the_class_catalogue_comes_from_the_server(a_vista_logic):
    _, auto, worker = a_vista_logic
    auto.fetchCatalogue()
    worker.wait(60.0)
    assert len(auto.classCatalogue) == 132
    assert [e.name for e in auto.classCatalogue.search("spleen")] == ["spleen"]


def test_an_automatic_result_becomes_the_servers_labels_as_named_coloured_segments(
        a_vista_logic, a_scene, a_ct_volume):
    logic, auto, worker = a_vista_logic
    segmentation = a_scene.add_segmentation("mine")
    auto.volumeNode, auto.segmentationNode = a_ct_volume, segmentation
    outcomes, snapshots = run(auto, worker, classes=["liver", "spleen", "left kidney"])
    assert auto.lastError is None, auto.messages
    outcome = outcomes[0]
    states = [s.state for s in snapshots]
    # Polling may miss the short "windows" stage on a fast run: check what every run shows
    # (the listener hears the job to its end); the windows themselves are counted in meta.
    assert states[-1] == "done" and all(s.stage for s in snapshots)
    assert outcome.meta["windows"] >= 1
    labels, meta = logic.connection.client.job_array(outcome.meta["job_id"], "labels")
    present = sorted(set(np.unique(labels)) - {0})
    assert present, "the random network labelled nothing: choose another phantom"
    names = {}
    seg = segmentation.GetSegmentation()
    for n in range(seg.GetNumberOfSegments()):
        names[seg.GetNthSegment(n).GetName()] = seg.GetNthSegmentID(n)
    dictionary = {int(k): v for k, v in meta["labels"].items()}
    assert set(names) == {"mine"} | {dictionary[label]["name"] for label in present}
    for label in present:
        segment_id = names[dictionary[label]["name"]]
        np.testing.assert_array_equal(slicer_mask(a_ct_volume, segmentation, segment_id),
                                      labels == label)
        np.testing.assert_allclose(seg.GetSegment(segment_id).GetColor(),
                                   np.array(dictionary[label]["color"]) / 255.0)
        assert segment_class(segmentation, segment_id) == (ENGINE, label)
    assert outcome.report.created == [names[dictionary[label]["name"]] for label in present]


def test_locked_segments_keep_their_voxels_and_a_rerun_updates_in_place(
        a_vista_logic, a_scene, a_ct_volume):
    logic, auto, worker = a_vista_logic
    array, ijk_to_ras = volume_to_array(a_ct_volume)
    segmentation = a_scene.add_segmentation("locked")
    everywhere = np.ones(array.shape, bool)
    everywhere[:, :, : array.shape[2] // 2] = False
    apply_mask_update(segmentation, "locked", [[0, 0, 0], list(array.shape)], everywhere, ijk_to_ras)
    set_segment_locked(segmentation, "locked")
    auto.volumeNode, auto.segmentationNode = a_ct_volume, segmentation
    first, _ = run(auto, worker, classes=["liver", "spleen", "left kidney"])
    assert auto.lastError is None, auto.messages
    np.testing.assert_array_equal(slicer_mask(a_ct_volume, segmentation, "locked"), everywhere)
    labels, _ = logic.connection.client.job_array(first[0].meta["job_id"], "labels")
    created = first[0].report.created
    assert created
    for segment_id in created:
        mask = slicer_mask(a_ct_volume, segmentation, segment_id)
        assert not (mask & everywhere).any()
        assert mask.sum() == ((labels == segment_class(segmentation, segment_id)[1]) & ~everywhere).sum()
    count = segmentation.GetSegmentation().GetNumberOfSegments()
    second, _ = run(auto, worker, classes=["liver", "spleen", "left kidney"])
    assert second[0].report.created == [] and sorted(second[0].report.updated) == sorted(created)
    assert segmentation.GetSegmentation().GetNumberOfSegments() == count


def test_cancelling_stops_the_job_and_leaves_the_segmentation_alone(
        a_vista_backend, a_vista_logic, a_scene, a_ct_volume):
    _, auto, worker = a_vista_logic
    segmentation = a_scene.add_segmentation("mine")
    auto.volumeNode, auto.segmentationNode = a_ct_volume, segmentation
    auto.engine = GATED  # the job waits at its first window until the gate opens

    def cancel_when_running(snapshot):
        if snapshot.state == "running" and not a_vista_backend.gate.exists():
            auto.cancel()
            a_vista_backend.gate.touch()  # let the window finish: the job then sees the cancel

    auto.progressListener = cancel_when_running
    auto.run(everything=True)
    worker.wait(240.0)
    from slicerfm_client import errors

    assert isinstance(auto.lastError, errors.JobCancelledError)
    assert ("info", "automatic segmentation cancelled") in auto.messages
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 1
    assert not auto.running


def test_points_on_an_auto_segmented_segment_are_corrections_of_its_class(
        a_vista_logic, a_scene, a_ct_volume):
    """A segment tagged with (engine, class) sends its clicks to that engine with the class;
    an untagged one and boxes use the chosen engine. The correction runs on the server."""
    logic, _, _ = a_vista_logic
    segmentation = a_scene.add_segmentation("liver", "plain")
    tag_class(segmentation, "liver", ENGINE, 1)
    array = volume_to_array(a_ct_volume)[0]
    centre = ras_of(a_ct_volume, [s // 2 for s in array.shape])
    logic.setInputs(a_ct_volume, segmentation, "liver")
    job = logic._prepare(ops.INTERACT, {"point_ras": list(centre), "positive": True})
    assert (job.engine, job.label) == (ENGINE, 1)
    logic.classCorrections = False
    job = logic._prepare(ops.INTERACT, {"point_ras": list(centre), "positive": True})
    assert (job.engine, job.label) == ("classic", None)
    logic.classCorrections = True
    logic.setInputs(a_ct_volume, segmentation, "plain")
    job = logic._prepare(ops.INTERACT, {"point_ras": list(centre), "positive": True})
    assert (job.engine, job.label) == ("classic", None)

    logic.setInputs(a_ct_volume, segmentation, "liver")
    logic.addPoint(centre, positive=True)                 # through the real server
    assert logic.lastUpdate is not None and logic.lastUpdate.bbox is not None


def test_a_partly_computed_result_keeps_existing_voxels_outside_the_computed_box():
    assert computed_box({"voxels": 0}) is None
    assert computed_box({"voxels": 5, "computed_bbox_kji": [[1, 2, 3], [4, 5, 6]]}) == \
        [[1, 2, 3], [4, 5, 6]]
    with pytest.raises(ValueError, match="not which ones"):
        computed_box({"voxels": 5})
