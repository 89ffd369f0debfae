"""Prompt tools: positive point, negative point and box, placed with the mouse in slice views.

The prompt nodes are the module's (``SlicerFMLib.prompt_nodes``: green positive points, red
negative points, a yellow ROI), placed the way Slicer places markups: the scene's
interaction node in "Place" mode with the node active in the selection node, so a click in
a slice view goes through Slicer's markups displayable manager. The Logic observes the
point lists and sends one interaction per placed point; a finished box is sent once its
size is known (deferred to the next loop turn, as the widget does with a zero-delay timer).
"""

from __future__ import annotations

import asyncio

from vtkmodules.util.misc import calldata_type
from vtkmodules.util.vtkConstants import VTK_INT
from typing import Callable, Optional

from SlicerFMLib.prompt_nodes import BOX, NEGATIVE, POSITIVE, clear_prompts, prompt_nodes

TOOLS = (POSITIVE, NEGATIVE, BOX)


class PromptTools:
    """``state.active_tool``: "" (views navigate), "positive", "negative" or "box";
    ``state.last_prompt``: the last point placed, ``{"tool": "positive" | "negative",
    "ras": [R, A, S] (world mm)}`` (None before the first)."""

    def __init__(self, state, scene, app_logic, on_box: Callable[[object], None]):
        self.state = state
        self.scene = scene
        self.app_logic = app_logic
        self.on_box = on_box
        self.nodes = prompt_nodes(scene)
        state.active_tool = ""
        state.last_prompt = None
        for tool in (POSITIVE, NEGATIVE):
            self._observe_points(tool)
        interaction = self.interaction_node()
        interaction.AddObserver(interaction.InteractionModeChangedEvent, self._mode_changed)
        roi = self.nodes[BOX]
        roi.GetDisplayNode().SetFillVisibility(False)  # the image (and result) stay visible inside
        for event in (roi.PointPositionDefinedEvent, roi.PointEndInteractionEvent):
            roi.AddObserver(event, self._box_changed)

    def interaction_node(self):
        return self.scene.GetNodeByID("vtkMRMLInteractionNodeSingleton")

    def point_nodes(self):
        return self.nodes[POSITIVE], self.nodes[NEGATIVE]

    def set_tool(self, tool: Optional[str]) -> None:
        """Start placing with ``tool`` ("" or None: stop placing)."""
        interaction = self.interaction_node()
        if not tool:
            self.state.active_tool = ""
            interaction.SetCurrentInteractionMode(interaction.ViewTransform)
            return
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}")
        node = self.nodes[tool]
        if tool == BOX:
            node.RemoveAllControlPoints()          # a new box replaces the previous one
        selection = self.app_logic.GetSelectionNode()
        selection.SetReferenceActivePlaceNodeClassName(node.GetClassName())
        selection.SetActivePlaceNodeID(node.GetID())
        interaction.SetPlaceModePersistence(tool != BOX)
        self.state.active_tool = tool
        interaction.SetCurrentInteractionMode(interaction.Place)

    def clear(self) -> None:
        """Remove the placed points and the box (nothing is sent to the server)."""
        clear_prompts(self.nodes)

    def _observe_points(self, tool: str) -> None:
        node = self.nodes[tool]

        @calldata_type(VTK_INT)
        def placed(_caller, _event, index):
            ras = [0.0, 0.0, 0.0]
            node.GetNthControlPointPositionWorld(index, ras)
            self.state.last_prompt = {"tool": tool, "ras": [float(v) for v in ras]}

        node.AddObserver(node.PointPositionDefinedEvent, placed)

    def _mode_changed(self, caller, _event) -> None:
        if caller.GetCurrentInteractionMode() != caller.Place and self.state.active_tool:
            self.state.active_tool = ""
            self.state.flush()

    def _box_changed(self, _caller, _event) -> None:
        asyncio.get_event_loop().call_soon(self._send_box)

    def _send_box(self) -> None:
        roi = self.nodes[BOX]
        if roi.GetNumberOfDefinedControlPoints() == 0 or min(roi.GetSize()) <= 0:
            return
        self.on_box(roi)
