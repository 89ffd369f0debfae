"""Helpers for the SlicerFMLib tests: a Qt-free Slicer scene on the ``slicer-core`` wheel.

(A module of its own, not conftest.py, so that tests import it by a unique name.)

``import slicer`` here is the slicer-core meta-package (``from slicer import vtkMRML...``);
it needs no display and no environment variable. (The package treats every folder named
``slicer`` on sys.path as a plugin folder, which is why this test folder is not called so.)

The scene is set up like Slicer's application does it without Qt: an application logic
plus the module logics whose ``SetMRMLScene`` registers their node classes (segment editor
node, markups nodes...).
"""

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
#: the ``slicerfm-backend`` installed beside this Python (the test environment's)
BACKEND = str(Path(sys.executable).with_name("slicerfm-backend"))


def _import_slicer_core():
    try:
        return importlib.import_module("slicer")
    except ImportError as error:
        pytest.fail(f"needs the slicer-core wheel (pip install 'slicer-core>=5.13'): {error}",
                    pytrace=False)


slicer = _import_slicer_core()
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.fail("'import slicer' did not give slicer-core's MRML classes (is another "
                "'slicer' package installed?)", pytrace=False)

# SlicerFMLib lives in SlicerFM/ (the scripted module's folder), not in a distribution.
sys.path.insert(0, str(HERE.parents[1] / "SlicerFM"))

from SlicerFMLib.vtk_arrays import numpy_to_matrix  # noqa: E402


class SceneWithLogics:
    """The scene and the logics that the helpers rely on (kept alive together)."""

    def __init__(self):
        self.scene = slicer.vtkMRMLScene()
        self.app_logic = slicer.vtkSlicerApplicationLogic()
        self.app_logic.SetMRMLScene(self.scene)
        self.segmentations_logic = slicer.vtkSlicerSegmentationsModuleLogic()
        self.segmentations_logic.SetMRMLApplicationLogic(self.app_logic)
        self.segmentations_logic.SetMRMLScene(self.scene)
        self.markups_logic = slicer.vtkSlicerMarkupsLogic()
        self.markups_logic.SetMRMLApplicationLogic(self.app_logic)
        self.markups_logic.SetMRMLScene(self.scene)

    def add(self, class_name, name=None):
        node = self.scene.AddNewNodeByClass(class_name, name or "")
        assert node is not None, f"the scene cannot create {class_name}"
        return node

    def add_segmentation(self, *segment_names, name="seg"):
        """A segmentation node with display nodes and empty segments (ID = name)."""
        node = self.add("vtkMRMLSegmentationNode", name)
        node.CreateDefaultDisplayNodes()
        for segment in segment_names:
            node.GetSegmentation().AddEmptySegment(segment, segment)
        return node

    def add_linear_transform(self, matrix, parent=None):
        transform = self.add("vtkMRMLLinearTransformNode")
        transform.SetMatrixTransformToParent(numpy_to_matrix(matrix))
        if parent is not None:
            transform.SetAndObserveTransformNodeID(parent.GetID())
        return transform


def rotation(axis, degrees):
    """4x4 rotation about 'x', 'y' or 'z' (RAS axes)."""
    angle = np.deg2rad(degrees)
    c, s = np.cos(angle), np.sin(angle)
    a, b = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    matrix = np.eye(4)
    matrix[a, a], matrix[a, b], matrix[b, a], matrix[b, b] = c, -s, s, c
    return matrix


def oblique_ijk_to_ras(spacing=(0.7, 1.1, 2.5), origin=(12.0, -30.0, 45.0)):
    """An oblique, anisotropic IJK->RAS matrix (directions rotated about two axes, i flipped)."""
    directions = (rotation("z", 30) @ rotation("x", 20))[:3, :3] @ np.diag([-1.0, 1.0, 1.0])
    matrix = np.eye(4)
    matrix[:3, :3] = directions * np.asarray(spacing)
    matrix[:3, 3] = origin
    return matrix
