"""Fixtures for the SlicerFMLib tests on slicer-core. No display, no environment variable."""

import numpy as np
import pytest
from mrml_helpers import SceneWithLogics, oblique_ijk_to_ras, rotation


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
