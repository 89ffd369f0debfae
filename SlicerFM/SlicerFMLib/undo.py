"""Undo states for segment edits, recorded BEFORE a change.

Two mechanisms exist in Slicer, and this module serves both:

* the Segment Editor's own history (``vtkSegmentationHistory``; what Ctrl+Z in the Segment
  Editor undoes). Pass it (or any object with a ``SaveState()`` method, e.g. a
  ``vtkSlicerSegmentEditorLogic`` on Slicer >= 5.9 through :func:`save_state_for_undo`'s
  ``history``) to make SlicerFM edits undoable there.
* MRML scene undo (``scene.SaveStateForUndo`` / ``scene.Undo()``): active only when the
  scene's undo flag is on (``scene.SetUndoOn()``) and the segmentation node has
  ``UndoEnabled``; each state then holds a full copy of the segmentation node, so enable it
  deliberately with :func:`enable_scene_undo`.
"""

from __future__ import annotations

from typing import Any, Callable, Optional


def enable_scene_undo(segmentation_node) -> None:
    """Turn on MRML scene undo for ``segmentation_node`` (and the scene's undo flag)."""
    segmentation_node.SetUndoEnabled(True)
    segmentation_node.GetScene().SetUndoOn()


def save_state_for_undo(segmentation_node, history=None) -> bool:
    """Record the segmentation's current state so that the edit that follows can be undone.

    With ``history`` (a ``vtkSegmentationHistory`` observing this segmentation, or anything
    with ``SaveState()``) the state goes there. Otherwise it is saved on the MRML scene's
    undo stack (``scene.SaveStateForUndo(segmentation_node)``) when the scene's undo flag is
    on and the node has UndoEnabled. Returns True when a state was recorded.
    """
    if history is not None:
        return bool(history.SaveState())
    scene = segmentation_node.GetScene()
    if scene is None or not scene.GetUndoFlag() or not segmentation_node.GetUndoEnabled():
        return False
    scene.SaveStateForUndo(segmentation_node)
    return True


class SegmentEditorHistory:
    """``SaveState()`` for the Logics (their ``segmentationHistory``): an undo state in the
    Segment Editor when its widget already exists and edits the same segmentation (so that
    its Undo undoes SlicerFM edits too), otherwise MRML scene undo (:func:`save_state_for_undo`).

    It never creates the Segment Editor's widget: creating it
    (``slicer.modules.segmenteditor.widgetRepresentation()``) creates the "SegmentEditor"
    parameter node, whose default overwrite mode "all segments" would from then on apply to
    SlicerFM's writes and erase other segments.

    segmentation(): the segmentation node about to be written.
    existing_editor(): the Segment Editor's ``qMRMLSegmentEditorWidget`` if its module widget
    exists, else None -- inside Slicer :func:`existing_segment_editor`.
    """

    def __init__(self, segmentation: Callable[[], Any],
                 existing_editor: Callable[[], Optional[Any]]):
        self.segmentation = segmentation
        self.existing_editor = existing_editor

    def SaveState(self) -> bool:
        node = self.segmentation()
        editor = self.existing_editor()
        if editor is not None and node is not None and editor.segmentationNode() is node:
            editor.saveStateForUndo()
            return True
        return save_state_for_undo(node)


def existing_segment_editor(modules) -> Optional[Any]:
    """The Segment Editor's ``qMRMLSegmentEditorWidget`` when its module widget exists, else
    None, without creating it. ``modules``: ``slicer.modules``. Slicer sets the attribute
    ``slicer.modules.SegmentEditorWidget`` only when the scripted module's widget is created
    (``qSlicerScriptedLoadableModuleWidget::setPythonSource`` ->
    ``setModuleAttribute("slicer.modules", className, self)``), and ``SegmentEditor.py``
    keeps the editor in its ``editor`` attribute (None before ``setup``)."""
    widget = getattr(modules, "SegmentEditorWidget", None)
    return getattr(widget, "editor", None) if widget is not None else None
