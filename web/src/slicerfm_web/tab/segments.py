"""The page's segment list: one segmentation node per volume, its segments as plain dicts.

Operations (add, rename, colour, show/hide, delete, select) act on MRML directly; locking
goes through the Logic (the server must know: a locked segment's voxels cannot be claimed
by another segment's result), see :mod:`slicerfm_web.tab.session`.

Segment IDs are made unique for the tab's lifetime (``seg_<random>``), never reused after a
delete, so a new segment can never inherit the server's copy of a deleted one (the server
names segments after the node and segment IDs, ``SlicerFMLib.segment_sync``).
"""

from __future__ import annotations

import re
import uuid
from typing import Dict, List, Optional

from SlicerFMLib.editor_settings import locked_segment_ids
from SlicerFMLib.label_segments import segment_class

#: distinct colours for new segments (r, g, b in 0..1), used in turn
PALETTE = [(0.90, 0.40, 0.20), (0.20, 0.65, 0.90), (0.35, 0.80, 0.35), (0.95, 0.80, 0.20),
           (0.70, 0.40, 0.85), (0.95, 0.45, 0.65), (0.30, 0.85, 0.80), (0.75, 0.55, 0.35)]
HEX_COLOUR = re.compile(r"^#?([0-9a-fA-F]{6})$")
MAX_NAME = 120


def hex_colour(rgb) -> str:
    return "#" + "".join(f"{int(round(max(0.0, min(1.0, c)) * 255)):02x}" for c in rgb[:3])


def parse_colour(text: str):
    """``"#rrggbb"`` -> (r, g, b) in 0..1; ValueError otherwise."""
    match = HEX_COLOUR.match(str(text or "").strip())
    if match is None:
        raise ValueError(f"a colour is written #rrggbb, got {text!r}")
    value = match.group(1)
    return tuple(int(value[i:i + 2], 16) / 255.0 for i in (0, 2, 4))


def clean_name(name: str) -> str:
    text = " ".join(str(name or "").split())[:MAX_NAME]
    if not text:
        raise ValueError("a segment needs a name")
    return text


def ensure_segmentation(scene, volume_node):
    """The segmentation node made for ``volume_node`` (found again by its attribute), created
    with the volume's geometry as reference and a half-transparent 2D fill."""
    for node in scene.GetNodesByClass("vtkMRMLSegmentationNode"):
        if node.GetAttribute("SlicerFM.Volume") == volume_node.GetID():
            return node
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode",
                                   scene.GenerateUniqueName(f"{volume_node.GetName()} segmentation"))
    node.SetAttribute("SlicerFM.Volume", volume_node.GetID())
    node.SetReferenceImageGeometryParameterFromVolumeNode(volume_node)
    node.CreateDefaultDisplayNodes()
    display = node.GetDisplayNode()
    display.SetOpacity2DFill(0.45)
    display.SetOpacity2DOutline(1.0)
    display.SetPreferredDisplayRepresentationName2D("Binary labelmap")   # voxel-exact in 2D
    return node


class SegmentList:
    """Segments of the current segmentation node, mirrored into ``state.segments``."""

    def __init__(self, state, on_refresh=None):
        self.state = state
        self.on_refresh = on_refresh       # e.g. the 3D copy's schedule()
        self.node = None
        self._palette_index = 0
        state.segments = []
        state.active_segment = ""

    # -- reading ---------------------------------------------------------------------------

    def set_node(self, segmentation_node) -> None:
        self.node = segmentation_node
        ids = self.ids()
        if self.state.active_segment not in ids:
            self.state.active_segment = ids[0] if ids else ""
        self.refresh()

    def ids(self) -> List[str]:
        if self.node is None:
            return []
        segmentation = self.node.GetSegmentation()
        return [segmentation.GetNthSegmentID(n) for n in range(segmentation.GetNumberOfSegments())]

    def describe(self) -> List[Dict[str, object]]:
        if self.node is None:
            return []
        segmentation = self.node.GetSegmentation()
        display = self.node.GetDisplayNode()
        locked = set(locked_segment_ids(self.node))
        rows = []
        for segment_id in self.ids():
            segment = segmentation.GetSegment(segment_id)
            tagged = segment_class(self.node, segment_id)
            rows.append({"id": segment_id, "name": segment.GetName(),
                         "color": hex_colour(segment.GetColor()),
                         "visible": bool(display.GetSegmentVisibility(segment_id)) if display else True,
                         "locked": segment_id in locked,
                         "engine": tagged[0] if tagged else ""})
        return rows

    def refresh(self) -> None:
        self.state.segments = self.describe()
        if self.state.active_segment not in self.ids():
            ids = self.ids()
            self.state.active_segment = ids[0] if ids else ""
        if self.on_refresh is not None:
            self.on_refresh()

    # -- editing (main thread) ----------------------------------------------------------------

    def _require(self, segment_id: str):
        if self.node is None:
            raise ValueError("open a volume first")
        segment = self.node.GetSegmentation().GetSegment(segment_id)
        if segment is None:
            raise ValueError("that segment no longer exists")
        return segment

    def add(self, name: Optional[str] = None) -> str:
        if self.node is None:
            raise ValueError("open a volume first")
        count = self.node.GetSegmentation().GetNumberOfSegments()
        segment_id = f"seg_{uuid.uuid4().hex[:10]}"
        colour = PALETTE[self._palette_index % len(PALETTE)]
        self._palette_index += 1
        self.node.GetSegmentation().AddEmptySegment(segment_id, clean_name(name or f"Segment {count + 1}"),
                                                    list(colour))
        self.state.active_segment = segment_id
        self.refresh()
        return segment_id

    def rename(self, segment_id: str, name: str) -> None:
        self._require(segment_id).SetName(clean_name(name))
        self.refresh()

    def set_colour(self, segment_id: str, colour: str) -> None:
        self._require(segment_id).SetColor(*parse_colour(colour))
        self.refresh()

    def set_visible(self, segment_id: str, visible: bool) -> None:
        self._require(segment_id)
        self.node.GetDisplayNode().SetSegmentVisibility(segment_id, bool(visible))
        self.refresh()

    def delete(self, segment_id: str) -> None:
        """Remove a segment. A locked one is refused: unlock it first (then the server
        forgets its lock too)."""
        segment = self._require(segment_id)
        if segment_id in locked_segment_ids(self.node):
            raise ValueError(f"segment '{segment.GetName()}' is locked: unlock it before deleting it")
        self.node.GetSegmentation().RemoveSegment(segment_id)
        self.refresh()

    def select(self, segment_id: str) -> None:
        self._require(segment_id)
        self.state.active_segment = segment_id
