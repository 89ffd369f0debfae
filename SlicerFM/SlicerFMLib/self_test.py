"""The module's self-test, run inside Slicer: "Reload and Test" in developer mode, and
CTest (``slicer_add_python_unittest`` in SlicerFM/CMakeLists.txt runs each ``test_*``
method through ``slicer.testing.runUnitTest``). ``SlicerFM.py`` imports
:class:`SlicerFMTest`, which is where Slicer looks for it (``<Module>Test`` in the module).

This is the only file of SlicerFMLib that needs Slicer's application (``slicer.util``,
``ScriptedLoadableModuleTest``). The click test needs a backend and is *skipped* with the
reason when none is configured (:func:`SlicerFMLib.connection.configured_test_backend`),
as on the extension build machines; configure one with SLICERFM_BACKEND (CMake:
``-DSLICERFM_TEST_BACKEND=...``).
"""

import logging
import unittest

import slicer
import vtk
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest

from .connection import ConnectionSettings, configured_test_backend
from .prompt_nodes import NEGATIVE, POSITIVE, prompt_nodes


class SlicerFMTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer. The click test needs a backend (SLICERFM_BACKEND: an executable
    or Python environment, or ``slicerfm-backend`` on PATH) and is skipped without one."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_SlicerFM_PromptNodes()
        self.setUp()
        self.test_SlicerFM_RegistrationTransform()
        self.setUp()
        try:
            self.test_SlicerFM_ClickThroughLocalBackend()
        except unittest.SkipTest as reason:      # "Reload and Test": say so, do not fail
            self.delayDisplay(f"Click test skipped: {reason}")

    def test_SlicerFM_PromptNodes(self):
        nodes = prompt_nodes(slicer.mrmlScene)
        self.assertEqual(prompt_nodes(slicer.mrmlScene), nodes)
        self.assertEqual(nodes[POSITIVE].GetAttribute("SlicerFM.Polarity"), "positive")
        self.assertEqual(nodes[NEGATIVE].GetAttribute("SlicerFM.Polarity"), "negative")

    def test_SlicerFM_RegistrationTransform(self):
        """A constant displacement becomes a grid transform above the moving volume whose
        transform from parent maps the fixed point x to x + d (no backend needed)."""
        import numpy as np
        from .transform_nodes import place_registration, resample_volume

        array = np.zeros((10, 12, 14), np.float32)
        array[3:7, 4:8, 5:9] = 100.0
        moving = slicer.util.addVolumeFromArray(array, name="moving")
        grid = np.diag([1.0, 1.0, 2.0, 1.0])
        field = np.zeros((10, 12, 14, 3), np.float32)
        field[...] = [2.0, -1.0, 4.0]
        node = place_registration(moving, field, grid, "shift")
        self.assertIs(moving.GetParentTransformNode(), node)
        mapped = node.GetTransformFromParent().TransformPoint(3.0, 4.0, 6.0)
        for value, expected in zip(mapped, (5.0, 3.0, 10.0)):
            self.assertAlmostEqual(value, expected, places=3)
        warped = resample_volume(moving, array.shape, grid, "warped")
        self.assertEqual(slicer.util.arrayFromVolume(warped).shape, array.shape)

    def test_SlicerFM_ClickThroughLocalBackend(self):
        import numpy as np

        import SlicerFM      # the module (already loaded: it imported this file)
        from SlicerFMLib.client_setup import ensure_dependencies

        backend, reason = configured_test_backend()
        if backend is None:
            self.skipTest(reason)
        ensure_dependencies(installInTesting=True)
        array = np.full((20, 30, 40), -800, np.int16)
        array[5:15, 10:20, 10:30] = 60
        volume = slicer.util.addVolumeFromArray(array, name="block")
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
        segmentID = segmentation.GetSegmentation().AddEmptySegment("organ")
        logic = SlicerFM.SlicerFMLogic()
        logic.connect(ConnectionSettings(mode="local", backend=backend))
        try:
            logic.interactive.setInputs(volume, segmentation, segmentID)
            ijk_to_ras = vtk.vtkMatrix4x4()
            volume.GetIJKToRASMatrix(ijk_to_ras)
            logic.interactive.addPoint(ijk_to_ras.MultiplyPoint((20, 15, 10, 1))[:3], positive=True)
            result = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segmentID, volume)
            self.assertTrue(result[10, 15, 20])
            self.assertFalse(result[:, :, :5].any())
        finally:
            logic.disconnect()
        logging.info("SlicerFM test passed")
