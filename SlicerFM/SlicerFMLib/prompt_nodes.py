"""The markups nodes the user places prompts with: positive points, negative points, a box.

Each is created once per scene and found again by its node attribute ``SlicerFM.Prompt``
("positive", "negative", "box"), so saving and re-opening a scene keeps working. Colours
are distinct in the views: positive green, negative red, box yellow. Control points are
placed in world RAS by clicking in slice views; the Logic turns each placement into one
interaction (:meth:`SlicerFMLib.logic.InteractiveSegmentationLogic.observePromptNodes`).
"""

from __future__ import annotations

from typing import Dict

from .prompts import set_prompt_polarity

ROLE_ATTRIBUTE = "SlicerFM.Prompt"
POSITIVE, NEGATIVE, BOX = "positive", "negative", "box"
COLOURS = {POSITIVE: (0.2, 0.85, 0.3), NEGATIVE: (0.95, 0.25, 0.2), BOX: (0.95, 0.85, 0.2)}
NAMES = {POSITIVE: "SlicerFM positive", NEGATIVE: "SlicerFM negative", BOX: "SlicerFM box"}
CLASSES = {POSITIVE: "vtkMRMLMarkupsFiducialNode", NEGATIVE: "vtkMRMLMarkupsFiducialNode",
           BOX: "vtkMRMLMarkupsROINode"}


def find_prompt_node(scene, role: str):
    """The scene's prompt node for ``role`` ("positive", "negative", "box"), or None."""
    for node in scene.GetNodesByClass(CLASSES[role]):
        if node.GetAttribute(ROLE_ATTRIBUTE) == role:
            return node
    return None


def _style(node, role: str) -> None:
    node.CreateDefaultDisplayNodes()
    display = node.GetDisplayNode()
    display.SetSelectedColor(*COLOURS[role])
    display.SetColor(*COLOURS[role])
    if role != BOX:
        display.SetGlyphScale(2.0)
        display.SetPointLabelsVisibility(False)
        node.SetControlPointLabelFormat("+%d" if role == POSITIVE else "-%d")


def prompt_nodes(scene) -> Dict[str, object]:
    """``{"positive": node, "negative": node, "box": node}``, created when missing."""
    nodes = {}
    for role in (POSITIVE, NEGATIVE, BOX):
        node = find_prompt_node(scene, role)
        if node is None:
            node = scene.AddNewNodeByClass(CLASSES[role], NAMES[role])
            node.SetAttribute(ROLE_ATTRIBUTE, role)
            _style(node, role)
        if role != BOX:
            set_prompt_polarity(node, role == POSITIVE)
        nodes[role] = node
    return nodes


def clear_prompts(nodes: Dict[str, object]) -> None:
    """Remove the placed points and reset the box (e.g. after a reset of the segment).
    Removing points sends nothing to the server."""
    for node in nodes.values():
        node.RemoveAllControlPoints()
