"""Segments in the 3D view, updated right after the 2D views rather than before them.

Turning a segment into a closed surface costs 50-250 ms of CPU per organ (measured on the
sample CT's spleen and liver), and Slicer does it synchronously whenever a segmentation
with a surface representation changes. So the segmentation the Logic edits keeps only its
binary labelmaps (shown in the slice views), and a display-only copy -- the *mirror*, a
second segmentation node shown in the 3D views only -- holds each segment's labelmap and
surface. Shortly after a change (``DELAY_S``, once the slice views' frames are on their
way), the segments whose labelmap changed are copied into the mirror, which converts just
those; names, colours and visibility are copied on every sync (cheap).

Each mirrored segment holds its own binary labelmap (extracted from a possibly shared
layer, cropped to the segment), so the copy costs about what the segment covers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Callable, ContextManager, Dict, Optional

import numpy as np

from SlicerFMLib.labelmap_grid import segment_labelmap
from SlicerFMLib.segment_sync import tight_bbox
from SlicerFMLib.vtk_arrays import extent_is_empty, image_to_array, image_to_world, oriented_image

log = logging.getLogger(__name__)
DELAY_S = 0.4
MIRROR_ATTRIBUTE = "SlicerFM.Mirror"


def _stamp(segmentation_node, segment_id: str) -> tuple:
    """Changes whenever the segment's voxels may have changed (layer object, its modified
    time, label value)."""
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    layer = segment.GetRepresentation("Binary labelmap")
    if layer is None:
        return (None, 0, segment.GetLabelValue())
    return (layer.__this__, layer.GetMTime(), segment.GetLabelValue())


class SurfaceMirror:
    """Keeps a 3D-only copy of one segmentation node at a time (``set_source``)."""

    def __init__(self, scene, segmentations_logic, enabled: bool = True,
                 only_3d: Callable[[], ContextManager] = contextlib.nullcontext):
        """``only_3d``: a context in which the slice views' render requests are dropped (the
        mirror is not shown in them; its changes would re-render them for nothing)."""
        self.scene = scene
        self.logic = segmentations_logic
        self.enabled = enabled
        self.only_3d = only_3d
        self.source = None
        self.mirror = None
        self._stamps: Dict[str, tuple] = {}
        self._handle: Optional[asyncio.TimerHandle] = None

    def set_source(self, segmentation_node) -> None:
        if segmentation_node is self.source:
            return
        if self.mirror is not None:
            self.scene.RemoveNode(self.mirror)
        self.source, self.mirror, self._stamps = segmentation_node, None, {}
        if segmentation_node is None:
            return
        segmentation_node.GetDisplayNode().SetVisibility3D(False)
        mirror = self.scene.AddNewNodeByClass("vtkMRMLSegmentationNode",
                                              f"{segmentation_node.GetName()} (3D)")
        mirror.SetAttribute(MIRROR_ATTRIBUTE, segmentation_node.GetID())
        mirror.SetHideFromEditors(True)
        mirror.CreateDefaultDisplayNodes()
        mirror.GetDisplayNode().SetVisibility2D(False)
        mirror.GetDisplayNode().SetVisibility3D(self.enabled)
        self.mirror = mirror
        self.schedule()

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = bool(enabled)
        if self.mirror is not None:
            self.mirror.GetDisplayNode().SetVisibility3D(self.enabled)
        self.schedule()

    def schedule(self) -> None:
        """Sync a moment from now (main thread; later calls push it back)."""
        if self._handle is not None:
            self._handle.cancel()
        self._handle = asyncio.get_event_loop().call_later(DELAY_S, self.sync)

    def sync(self) -> None:
        self._handle = None
        if not self.enabled or self.source is None or self.mirror is None:
            return
        try:
            with self.only_3d():
                self._sync()
        except Exception:                 # a 3D copy must never break the session
            log.exception("SlicerFM web: the 3D copy of the segments could not be updated")

    def _sync(self) -> None:
        source = self.source.GetSegmentation()
        target = self.mirror.GetSegmentation()
        ids = [source.GetNthSegmentID(n) for n in range(source.GetNumberOfSegments())]
        for segment_id in [target.GetNthSegmentID(n) for n in range(target.GetNumberOfSegments())]:
            if segment_id not in ids:
                target.RemoveSegment(segment_id)
                self._stamps.pop(segment_id, None)
        display, mirror_display = self.source.GetDisplayNode(), self.mirror.GetDisplayNode()
        for segment_id in ids:
            segment = source.GetSegment(segment_id)
            stamp = _stamp(self.source, segment_id)
            if self._stamps.get(segment_id) != stamp or target.GetSegment(segment_id) is None:
                self._copy(segment_id)
                self._stamps[segment_id] = stamp
            copy = target.GetSegment(segment_id)
            copy.SetName(segment.GetName())
            copy.SetColor(segment.GetColor())
            mirror_display.SetSegmentVisibility(segment_id, display.GetSegmentVisibility(segment_id))
        if ids and not target.ContainsRepresentation("Closed surface"):
            self.mirror.CreateClosedSurfaceRepresentation()

    def _copy(self, segment_id: str) -> None:
        """Put (or replace) the mirror's copy of one segment: a binary labelmap of its own
        (0/1, cropped to the segment), even when the source segment shares a layer."""
        from slicer import vtkSegment, vtkSlicerSegmentationsModuleLogic

        target = self.mirror.GetSegmentation()
        original = self.source.GetSegmentation().GetSegment(segment_id)
        labelmap = binary_copy(segment_labelmap(self.source, segment_id), original.GetLabelValue())
        if target.GetSegment(segment_id) is not None:       # same segment, new voxels
            vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
                labelmap, self.mirror, segment_id,
                vtkSlicerSegmentationsModuleLogic.MODE_REPLACE)
            return
        segment = vtkSegment()
        segment.SetName(original.GetName())
        segment.SetColor(original.GetColor())
        segment.AddRepresentation("Binary labelmap", labelmap)
        target.AddSegment(segment, segment_id)


def binary_copy(layer, label: int):
    """A new ``vtkOrientedImageData``: 1 where ``layer`` holds ``label``, cropped to those
    voxels (an empty extent when there are none), same image-to-world matrix."""
    if layer is None or extent_is_empty(layer.GetExtent()):
        return oriented_image(np.eye(4), (0, -1, 0, -1, 0, -1))
    mask = image_to_array(layer) == label
    box = tight_bbox(mask)
    world = image_to_world(layer)
    if box is None:
        return oriented_image(world, (0, -1, 0, -1, 0, -1))
    (k0, j0, i0), (k1, j1, i1) = box
    x0, _, y0, _, z0, _ = layer.GetExtent()
    extent = (x0 + i0, x0 + i1 - 1, y0 + j0, y0 + j1 - 1, z0 + k0, z0 + k1 - 1)
    return oriented_image(world, extent, mask[k0:k1, j0:j1, i0:i1])
