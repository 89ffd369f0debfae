"""Fixtures for the SlicerFMLib tests on slicer-core. No display, no environment variable.

The Logic tests talk to a real ``slicerfm-backend`` process (the one installed beside this
Python), started through the client's launcher on 127.0.0.1.
"""


import numpy as np
import pytest
from mrml_helpers import BACKEND, SceneWithLogics, oblique_ijk_to_ras, rotation


@pytest.fixture
def a_scene():
    app = SceneWithLogics()
    yield app
    app.scene.Clear(True)


@pytest.fixture
def a_parent_transform():
    """A rigid-plus-translation world transform (4x4) used as a volume's parent."""
    matrix = rotation("y", 15) @ rotation("z", -10)
    matrix[:3, 3] = [5.0, -7.0, 11.0]
    return matrix


@pytest.fixture
def an_oblique_volume(a_scene, a_parent_transform):
    """(volume node under a linear transform, array_kji) with an oblique anisotropic grid."""
    from SlicerFMLib.volume_io import update_volume_from_array

    rng = np.random.default_rng(1)
    array = rng.integers(-1000, 1000, size=(12, 17, 23)).astype(np.int16)
    volume = a_scene.add("vtkMRMLScalarVolumeNode", "oblique")
    update_volume_from_array(volume, array, oblique_ijk_to_ras())
    transform = a_scene.add_linear_transform(a_parent_transform)
    volume.SetAndObserveTransformNodeID(transform.GetID())
    return volume, array


# -- a real backend process and a Logic connected to it (Logic tests) --------------------

@pytest.fixture(scope="session")
def a_backend_process(tmp_path_factory):
    """A real `slicerfm-backend serve` process (engine classic) on 127.0.0.1, shared by
    the Logic tests; stopped at the end of the session."""
    from slicerfm_client.launcher import LocalBackend

    log = tmp_path_factory.mktemp("backend") / "server.log"
    backend = LocalBackend([BACKEND], engines=["classic"], log_path=str(log))
    backend.start()
    yield backend
    backend.stop()


@pytest.fixture
def a_connected_core(a_backend_process):
    """The module's Logic without Slicer (inline runners: calls block and raise) connected
    to the shared backend as a remote server; its messages are collected in
    ``core.messages`` as (feature, level, text)."""
    from SlicerFMLib.connection import REMOTE, ConnectionSettings
    from SlicerFMLib.logic import SlicerFMCoreLogic

    core = SlicerFMCoreLogic()
    core.messages = []
    core.messageCallback = lambda feature, text, level: core.messages.append((feature, level, text))
    core.connect(ConnectionSettings(mode=REMOTE, url=a_backend_process.url))
    yield core
    core.interactive.removeObservers()
    core.disconnect()
    core.shutdown()


@pytest.fixture
def a_connected_logic(a_connected_core):
    """The connected core's interactive Logic; its messages are collected in
    ``logic.messages`` as (level, text)."""
    logic = a_connected_core.interactive
    logic.messages = []
    logic.messageCallback = lambda text, level: logic.messages.append((level, text))
    return logic


@pytest.fixture
def a_block_volume(a_scene, a_parent_transform):
    """(volume node, array_kji): a CT-like (20, 30, 40) int16 volume, -800 HU with a 60 HU
    block at [5:15, 10:20, 10:30], on an oblique anisotropic grid under a linear transform."""
    from SlicerFMLib.volume_io import update_volume_from_array

    rng = np.random.default_rng(0)
    array = rng.normal(-800, 20, (20, 30, 40)).astype(np.int16)
    array[5:15, 10:20, 10:30] = 60
    volume = a_scene.add("vtkMRMLScalarVolumeNode", "block")
    update_volume_from_array(volume, array, oblique_ijk_to_ras(spacing=(0.8, 0.8, 2.5)))
    transform = a_scene.add_linear_transform(a_parent_transform)
    volume.SetAndObserveTransformNodeID(transform.GetID())
    return volume, array


@pytest.fixture
def an_organ_segmentation(a_scene):
    """A segmentation node with empty segments 'organ' and 'other' (own frame = world)."""
    return a_scene.add_segmentation("organ", "other")
