"""The Segment Editor's masking settings as ``apply_mask_update`` parameters.

Reads a ``vtkMRMLSegmentEditorNode`` (overwrite mode, editable area, editable intensity
range) and turns it into ``overwrite_other_segments`` and ``editable_mask`` on the
uploaded volume's grid, so that SlicerFM's results obey the same rules as the paint brush.
The editable area is computed by Slicer itself (``vtkMRMLSegmentationNode.GenerateEditMask``)
on the volume's grid, restricted to the update's box.

Locks: core MRML has no per-segment lock, so SlicerFM keeps its own in the segment tag
``SlicerFM.Locked`` ("1" = locked; see :func:`set_segment_locked`), mirrored to the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np
import vtk

from .labelmap_grid import volume_ijk_to_segmentation
from .vtk_arrays import image_to_array, oriented_image

LOCK_TAG = "SlicerFM.Locked"


@dataclass
class EditSettings:
    """Keyword arguments for :func:`SlicerFMLib.segment_io.apply_mask_update`.

    overwrite_other_segments: True (all), False (none) or a tuple of segment IDs (visible).
    editable_mask: None (everywhere) or bool of the box's shape (k1-k0, j1-j0, i1-i0).
    locked_segment_ids: segments tagged locked.
    """

    overwrite_other_segments: Union[bool, Tuple[str, ...]] = False
    editable_mask: Optional[np.ndarray] = None
    locked_segment_ids: Tuple[str, ...] = ()

    def as_kwargs(self) -> dict:
        return {"overwrite_other_segments": self.overwrite_other_segments,
                "editable_mask": self.editable_mask,
                "locked_segment_ids": self.locked_segment_ids}


def set_segment_locked(segmentation_node, segment_id: str, locked: bool = True) -> None:
    """Tag a segment as locked (or unlocked) for SlicerFM edits."""
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    if segment is None:
        raise ValueError(f"no segment with ID {segment_id!r}")
    segment.SetTag(LOCK_TAG, "1" if locked else "0")


def locked_segment_ids(segmentation_node) -> Tuple[str, ...]:
    """IDs of the segments tagged locked by :func:`set_segment_locked`."""
    segmentation = segmentation_node.GetSegmentation()
    locked = []
    for n in range(segmentation.GetNumberOfSegments()):
        value = vtk.reference("")          # GetTag(tag, std::string& value) -> found
        if segmentation.GetNthSegment(n).GetTag(LOCK_TAG, value) and str(value) == "1":
            locked.append(segmentation.GetNthSegmentID(n))
    return tuple(locked)


def visible_segment_ids(segmentation_node) -> Tuple[str, ...]:
    """IDs of the segments shown by the segmentation's display node (all without one)."""
    segmentation = segmentation_node.GetSegmentation()
    ids = [segmentation.GetNthSegmentID(n) for n in range(segmentation.GetNumberOfSegments())]
    display = segmentation_node.GetDisplayNode()
    if display is None:
        return tuple(ids)
    return tuple(s for s in ids if display.GetVisibility() and display.GetSegmentVisibility(s))


def _overwrite_from_mode(editor_node, segmentation_node) -> Union[bool, Tuple[str, ...]]:
    from slicer import vtkMRMLSegmentEditorNode as Editor

    mode = editor_node.GetOverwriteMode()
    if mode == Editor.OverwriteAllSegments:
        return True
    if mode == Editor.OverwriteVisibleSegments:
        return visible_segment_ids(segmentation_node)
    return False


def _area_mask(editor_node, segmentation_node, segment_id, bbox_kji, vol_to_seg):
    """bool box-shaped editable area (None = everywhere) from Slicer's GenerateEditMask."""
    from slicer import vtkMRMLSegmentationNode, vtkOrientedImageData

    mode = editor_node.GetMaskMode()
    if mode == vtkMRMLSegmentationNode.EditAllowedEverywhere:
        return None
    (k0, j0, i0), (k1, j1, i1) = bbox_kji
    reference = oriented_image(vol_to_seg, (i0, i1 - 1, j0, j1 - 1, k0, k1 - 1))
    not_editable = vtkOrientedImageData()
    if not segmentation_node.GenerateEditMask(not_editable, mode, reference, segment_id,
                                              editor_node.GetMaskSegmentID() or ""):
        raise RuntimeError("Slicer could not compute the Segment Editor's editable area")
    # GenerateEditMask's output has the reference extent; non-zero = editing NOT allowed.
    return image_to_array(not_editable) == 0


def settings_from_segment_editor(editor_node, segmentation_node, segment_id: str, bbox_kji,
                                 ijk_to_ras_world, volume_array_kji=None) -> EditSettings:
    """The Segment Editor node's rules for writing ``segment_id`` inside ``bbox_kji``.

    bbox_kji: [[k0, j0, i0], [k1, j1, i1]] (stop exclusive) of the update, in voxels of the
        uploaded volume whose (4, 4) voxel -> world RAS matrix is ``ijk_to_ras_world``.
    volume_array_kji: the volume's (K, J, I) voxels; needed only when the editor's
        intensity range is on (voxels outside [min, max] are then not editable).
    Returns EditSettings whose ``editable_mask`` has the box's shape.
    """
    bbox_kji = [[int(v) for v in corner] for corner in bbox_kji]
    vol_to_seg = volume_ijk_to_segmentation(segmentation_node, ijk_to_ras_world)
    editable = _area_mask(editor_node, segmentation_node, segment_id, bbox_kji, vol_to_seg)
    if editor_node.GetSourceVolumeIntensityMask():
        if volume_array_kji is None:
            raise ValueError("the Segment Editor limits editing to an intensity range: pass "
                             "volume_array_kji so that it can be applied")
        low, high = editor_node.GetSourceVolumeIntensityMaskRange()
        box = np.asarray(volume_array_kji)[tuple(slice(a, b) for a, b in zip(*bbox_kji))]
        in_range = (box >= low) & (box <= high)
        editable = in_range if editable is None else editable & in_range
    return EditSettings(
        overwrite_other_segments=_overwrite_from_mode(editor_node, segmentation_node),
        editable_mask=editable,
        locked_segment_ids=locked_segment_ids(segmentation_node),
    )
