"""End to end: the Logic on the sample abdominal CT through a real backend process.

* The same clicks as ``slicerfm-backend evaluate`` (read from its --json output, in voxel
  coordinates), placed in world RAS in Slicer, give the same Dice per click -- whatever
  the classic engine's quality is today.
* A server restart in the middle of the work loses no segment data: the Logic reconnects,
  re-sends the image and re-seeds the segment from what Slicer holds.
"""

import json
import subprocess

import numpy as np
import pytest
from mrml_helpers import BACKEND
from logic_helpers import dice, ras_of, server_mask, slicer_mask

from SlicerFMLib.connection import LOCAL, ConnectionSettings
from SlicerFMLib.logic import SlicerFMCoreLogic
from SlicerFMLib.volume_io import volume_to_array

SPLEEN = 1
CLICKS = 4


@pytest.fixture(scope="module")
def the_spleen_case(a_data_dir):
    folder = a_data_dir / "abdomen_ct"
    return folder / "example_ct.nii.gz", folder / "example_seg_fast_force_split.nii.gz"


def load(scene, class_name, path):
    """A volume node read from ``path`` by Slicer's own volume storage node."""
    node = scene.add(class_name, path.name)
    storage = scene.add("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(path))
    assert storage.ReadData(node), f"Slicer could not read {path}"
    return node


@pytest.fixture
def a_spleen_scene(a_scene, the_spleen_case):
    """(ct volume node, reference spleen mask (K, J, I) bool, segmentation with 'spleen')."""
    ct = load(a_scene, "vtkMRMLScalarVolumeNode", the_spleen_case[0])
    labels = load(a_scene, "vtkMRMLLabelMapVolumeNode", the_spleen_case[1])
    reference = volume_to_array(labels)[0] == SPLEEN
    segmentation = a_scene.add_segmentation("spleen", name="segmentation")
    return ct, reference, segmentation


@pytest.fixture
def a_local_logic(tmp_path):
    """The interactive Logic of a module Logic in local mode: it starts its own backend
    process (stopped at the end)."""
    core = SlicerFMCoreLogic()
    logic = core.interactive
    logic.messages = []
    logic.messageCallback = lambda text, level: logic.messages.append((level, text))
    core.connect(ConnectionSettings(mode=LOCAL, backend=BACKEND,
                                    log_path=str(tmp_path / "backend.log")))
    yield logic
    core.disconnect()


def evaluate_clicks(the_spleen_case, tmp_path):
    out = tmp_path / "evaluate.json"
    completed = subprocess.run(
        [BACKEND, "evaluate", "--engine", "classic", "--image", str(the_spleen_case[0]),
         "--label", str(the_spleen_case[1]), "--label-id", str(SPLEEN),
         "--clicks", str(CLICKS), "--json", str(out)],
        capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    return json.loads(out.read_text())


def test_clicks_placed_in_slicer_give_the_dice_that_evaluate_reports(
        a_spleen_scene, the_spleen_case, a_backend_process, a_connected_logic, tmp_path):
    expected = evaluate_clicks(the_spleen_case, tmp_path)
    assert len(expected["clicks"]) == len(expected["dice"]) >= 2
    ct, reference, segmentation = a_spleen_scene
    logic = a_connected_logic
    logic.modality = "unknown"                 # what evaluate sends by default
    logic.setInputs(ct, segmentation, "spleen")
    got = []
    for click in expected["clicks"]:
        logic.addPoint(ras_of(ct, click["point_kji"]), positive=click["positive"])
        got.append(dice(reference, slicer_mask(ct, segmentation, "spleen")))
    np.testing.assert_allclose(got, expected["dice"], atol=1e-9)
    assert got[-1] > 0.5                       # it did segment the spleen


def test_a_server_restart_loses_no_segment_data(a_spleen_scene, a_local_logic):
    ct, reference, segmentation = a_spleen_scene
    logic = a_local_logic
    logic.setInputs(ct, segmentation, "spleen")
    logic.addPoint(ras_of(ct, (104, 32, 23)), positive=True)
    before = slicer_mask(ct, segmentation, "spleen")
    assert before.sum() > 1000

    backend = logic.connection.local_backend
    backend.stop()
    backend.start()                            # same port, fresh process: nothing stored
    task = logic.addPoint(ras_of(ct, (90, 42, 16)), positive=True)

    levels = [level for level, _ in logic.messages]
    assert "warning" in levels and "restart" in logic.messages[levels.index("warning")][1]
    assert "restored from Slicer" in logic.messages[-1][1]
    recovered = slicer_mask(ct, segmentation, "spleen")
    update = logic.lastUpdate
    outside = np.ones(recovered.shape, bool)
    outside[update.slices] = False
    np.testing.assert_array_equal(recovered[outside], before[outside])   # nothing lost
    assert recovered.sum() > before.sum() * 0.9
    np.testing.assert_array_equal(recovered, server_mask(logic, segmentation, "spleen"))
    assert task is not None and task.error is not None        # the first try saw the 410


def test_a_local_backend_that_died_is_started_again_and_the_undo_history_is_reported_lost(
        a_spleen_scene, a_local_logic):
    ct, _, segmentation = a_spleen_scene
    logic = a_local_logic
    logic.setInputs(ct, segmentation, "spleen")
    logic.addPoint(ras_of(ct, (104, 32, 23)), positive=True)
    before = slicer_mask(ct, segmentation, "spleen")
    logic.connection.local_backend.stop()      # the process is gone, not restarted
    with pytest.raises(Exception, match="nothing to undo"):
        logic.undo()                           # reconnects (restarting it), then undo
    assert logic.connection.local_backend.process.poll() is None
    np.testing.assert_array_equal(slicer_mask(ct, segmentation, "spleen"), before)
    np.testing.assert_array_equal(server_mask(logic, segmentation, "spleen"), before)
