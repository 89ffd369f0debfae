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
