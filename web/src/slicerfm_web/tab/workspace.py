"""What one tab works on: its volumes, the current one's segmentation, the tools and Logic.

Ties the pieces together on the main thread: opening an image makes a volume node and a
segmentation for it (with a first empty segment) and points the Logic at them; choosing a
segment, an engine or a tool in the page goes to the Logic and the prompt tools. State keys
(read by the page): ``volumes`` / ``volume_id``, ``preset``, ``segments`` /
``active_segment``, ``active_tool``, ``engine``.
"""

from __future__ import annotations

import logging
from typing import Dict, Optional

from .images import LoadedImage
from .segments import SegmentList, ensure_segmentation
from .session import Session
from .surfaces import SurfaceMirror
from .tools import PromptTools
from .views import Views
from .volumes import PRESETS, add_volume_node, apply_preset, default_preset, volume_entries

log = logging.getLogger(__name__)


class Workspace:
    def __init__(self, server, slicer_app, session: Session):
        self.server = server
        self.state = server.state
        self.app = slicer_app
        self.scene = slicer_app.scene
        self.session = session
        self.views = Views(server, slicer_app, busy=lambda: session.core.pendingInteraction() is not None)
        self.surfaces = SurfaceMirror(self.scene, slicer_app.segmentations_logic,
                                      only_3d=self.views.only_3d)
        self.segments = SegmentList(self.state, on_refresh=self.surfaces.schedule)
        self.tools = PromptTools(self.state, self.scene, slicer_app.app_logic, self.send_box)
        session.interactive.observePromptNodes(*self.tools.point_nodes())
        for node in self.tools.point_nodes():       # tick the Logic at once after a click
            node.AddObserver(node.PointPositionDefinedEvent, lambda *_: session.placed())
        session.on_changed.append(self.segments.refresh)
        self.segmentation_of: Dict[str, str] = {}       # volume node ID -> segmentation node ID
        self._shown: Optional[str] = None                # the volume the views show
        self.state.update({"volumes": [], "volume_id": "", "preset": "Auto",
                           "presets": list(PRESETS), "show_3d": True})
        self.state.change("active_segment")(lambda **_: self.sync_inputs())
        self.state.change("volume_id")(lambda volume_id, **_: self._volume_chosen(volume_id))

    # -- volumes -------------------------------------------------------------------------------

    def volume(self):
        node = self.scene.GetNodeByID(self.state.volume_id) if self.state.volume_id else None
        return node

    def segmentation(self):
        volume = self.volume()
        if volume is None:
            return None
        node_id = self.segmentation_of.get(volume.GetID())
        node = self.scene.GetNodeByID(node_id) if node_id else None
        if node is None:
            node = ensure_segmentation(self.scene, volume)
            self.segmentation_of[volume.GetID()] = node.GetID()
        return node

    def open_image(self, image: LoadedImage) -> None:
        node = add_volume_node(self.scene, image)
        self.state.preset = default_preset(image)
        self.state.volumes = volume_entries(self.scene)
        self.select_volume(node.GetID())

    def select_volume(self, volume_id: str) -> None:
        node = self.scene.GetNodeByID(volume_id)
        if node is None:
            raise ValueError("that volume is no longer open")
        self.state.volume_id = volume_id
        self._show_current()

    def _volume_chosen(self, volume_id: str) -> None:
        if volume_id and self.volume() is not None and self._shown != volume_id:
            self._show_current()

    def _show_current(self) -> None:
        volume = self.volume()
        self._shown = volume.GetID()
        segmentation = self.segmentation()
        if segmentation.GetSegmentation().GetNumberOfSegments() == 0:
            self.segments.set_node(segmentation)
            self.segments.add()
        self.segments.set_node(segmentation)
        self.surfaces.set_source(segmentation)
        self.tools.set_tool("")
        self.tools.clear()
        self.views.show_volume(volume)
        self.sync_inputs()

    def use_segmentation(self, volume_node, segmentation_node) -> None:
        """Make ``segmentation_node`` the one edited on ``volume_node`` (e.g. carried segments)."""
        self.segmentation_of[volume_node.GetID()] = segmentation_node.GetID()
        segmentation_node.SetAttribute("SlicerFM.Volume", volume_node.GetID())
        self.state.volumes = volume_entries(self.scene)
        self.select_volume(volume_node.GetID())

    def set_show_3d(self, shown: bool) -> None:
        self.surfaces.set_enabled(bool(shown))
        self.state.show_3d = bool(shown)

    def set_preset(self, preset: str) -> None:
        volume = self.volume()
        if volume is None:
            raise ValueError("open a volume first")
        apply_preset(volume, preset)
        self.state.preset = preset

    def sync_inputs(self) -> None:
        """Point the Logic at the current volume, segmentation and segment."""
        self.session.set_inputs(self.volume(), self.segmentation(), self.state.active_segment or "")

    # -- segment actions -------------------------------------------------------------------------

    def add_segment(self, name: Optional[str] = None) -> None:
        self.segments.add(name)
        self.sync_inputs()

    def select_segment(self, segment_id: str) -> None:
        self.segments.select(segment_id)
        self.sync_inputs()

    def set_locked(self, segment_id: str, locked: bool) -> None:
        """Lock or unlock a segment: it becomes the selected one (locks act on the selected
        segment, as in the module) and the Logic tells the server."""
        self.select_segment(segment_id)
        self.session.interactive.setSegmentLocked(bool(locked))
        self.segments.refresh()

    def reset_segment(self) -> None:
        self.session.interactive.resetSegment()
        self.tools.clear()

    def send_box(self, roi) -> None:
        self.session.attempt(self.session.interactive.addBox, roi)
