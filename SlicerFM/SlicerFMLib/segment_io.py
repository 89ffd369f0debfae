"""Write a server's mask update into a segment, and read a segment back on the volume grid.

Coordinates: ``bbox_kji`` = ``[[k0, j0, i0], [k1, j1, i1]]`` (start inclusive, stop
exclusive) and ``mask_kji`` (bool, shape (k1-k0, j1-j0, i1-i0)) are in voxels of the image
that was uploaded, whose geometry is ``ijk_to_ras_world`` ((4, 4), (i, j, k, 1) -> world
RAS mm, from :func:`SlicerFMLib.volume_io.volume_to_array`). The segmentation node may sit
under its own linear transform and may store its labelmaps on another grid (spacing,
direction, origin) than the volume: the update is resampled (nearest neighbour) onto the
segment's own grid, so Slicer never resamples the layer, and voxels of that grid change only
where their centre falls inside the box.

Writes go through ``vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment`` with the
merge modes the Segment Editor uses (MERGE_MIN restricted to one segment to erase,
MERGE_MASK to paint), never MODE_REPLACE: REPLACE clears the whole segment when it shares
a layer, and drops what lies outside the extent otherwise.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence, Union

import numpy as np

from .labelmap_grid import (box_extent_on_lattice, resample_codes, resample_labelmap,
                            segment_labelmap, segment_lattice, volume_ijk_to_segmentation)
from .undo import save_state_for_undo
from .vtk_arrays import extent_is_empty, image_to_world, oriented_image

# Codes of a box voxel, resampled together so that every grid sees the same decision.
_OUTSIDE, _KEEP, _CLEAR, _SET = 0, 1, 2, 3


def _box_codes(bbox_kji, mask_kji, editable_mask) -> np.ndarray:
    """uint8 (K, J, I) codes of the box: _SET / _CLEAR where editable, _KEEP elsewhere."""
    start = np.asarray(bbox_kji[0], dtype=int)
    stop = np.asarray(bbox_kji[1], dtype=int)
    mask = np.asarray(mask_kji, dtype=bool)
    if mask.shape != tuple(stop - start):
        raise ValueError(f"mask shape {mask.shape} does not match bbox_kji "
                         f"{start.tolist()}..{stop.tolist()} (expected {tuple(stop - start)})")
    codes = np.where(mask, _SET, _CLEAR).astype(np.uint8)
    if editable_mask is not None:
        editable = np.asarray(editable_mask, dtype=bool)
        if editable.shape != mask.shape:  # a full-volume mask: take the box
            editable = editable[tuple(slice(a, b) for a, b in zip(start, stop))]
            if editable.shape != mask.shape:
                raise ValueError("editable_mask must have the shape of the mask or of the whole "
                                 f"volume around bbox_kji; got {np.shape(editable_mask)}")
        codes[~editable] = _KEEP
    return codes


def _codes_on_segment_grid(segmentation_node, segment_id, codes, bbox_kji, vol_to_seg):
    """(lattice, extent, codes) of the box on ``segment_id``'s own grid."""
    lattice = segment_lattice(segmentation_node, segment_id, vol_to_seg)
    extent = box_extent_on_lattice(lattice, vol_to_seg, bbox_kji)
    k0, j0, i0 = (int(v) for v in bbox_kji[0])
    if np.allclose(lattice, vol_to_seg, atol=1e-6):   # same grid: no resampling at all
        return lattice, (i0, i0 + codes.shape[2] - 1, j0, j0 + codes.shape[1] - 1,
                         k0, k0 + codes.shape[0] - 1), codes
    return lattice, extent, resample_codes(codes, vol_to_seg, (i0, j0, k0), lattice, extent)


def _merge(segmentation_node, segment_id, lattice, extent, values_kji, mode,
           overwrite_ids=()) -> None:
    from slicer import vtkSlicerSegmentationsModuleLogic as Logic

    image = oriented_image(lattice, extent, values_kji.astype(np.uint8))
    if not Logic.SetBinaryLabelmapToSegment(image, segmentation_node, segment_id, mode,
                                            tuple(extent), False, list(overwrite_ids)):
        raise RuntimeError(f"Slicer refused to write segment {segment_id!r}")


def _erase(segmentation_node, segment_id, lattice, extent, erase_kji) -> None:
    """Remove ``segment_id`` from the voxels where ``erase_kji`` is True (only that
    segment's label is touched, also in a shared layer)."""
    from slicer import vtkSlicerSegmentationsModuleLogic as Logic

    if erase_kji.any():
        _merge(segmentation_node, segment_id, lattice, extent, ~erase_kji, Logic.MODE_MERGE_MIN)


def _segments_to_overwrite(segmentation_node, segment_id, overwrite, locked) -> list:
    segmentation = segmentation_node.GetSegmentation()
    all_ids = [segmentation.GetNthSegmentID(n) for n in range(segmentation.GetNumberOfSegments())]
    if overwrite is True:
        candidates = all_ids
    elif not overwrite:
        candidates = []
    else:
        candidates = [s for s in overwrite if s in all_ids]
    return [s for s in candidates if s != segment_id and s not in locked]


def apply_mask_update(segmentation_node, segment_id: str, bbox_kji, mask_kji: np.ndarray,
                      ijk_to_ras_world, *,
                      overwrite_other_segments: Union[bool, Iterable[str]] = False,
                      editable_mask: Optional[np.ndarray] = None,
                      locked_segment_ids: Sequence[str] = (),
                      save_undo_state: bool = True, history=None) -> None:
    """Make ``segment_id`` equal ``mask_kji`` inside ``bbox_kji``; nothing outside the box changes.

    bbox_kji: ``[[k0, j0, i0], [k1, j1, i1]]`` (stop exclusive) in voxels of the uploaded
        image; None or an empty box does nothing (like an update without change).
    mask_kji: bool (k1-k0, j1-j0, i1-i0): the segment's new voxels in the box.
    ijk_to_ras_world: (4, 4) voxel (i, j, k, 1) -> world RAS of the uploaded image.
    overwrite_other_segments: False (default): other segments keep their voxels (segments
        may overlap; a shared layer is split by Slicer when needed). True: voxels set here
        are removed from every other unlocked segment. A list of segment IDs: removed from
        those only (e.g. the visible ones, as the Segment Editor's "visible segments").
    editable_mask: optional bool array, of the box's shape or of the whole volume (K, J, I):
        voxels where it is False keep their current state in every segment (the Segment
        Editor's editable area / intensity range; see :mod:`SlicerFMLib.editor_settings`).
    locked_segment_ids: segments never changed, even with overwrite. Editing a locked
        ``segment_id`` raises ValueError.
    save_undo_state / history: before the change, record an undo state (see
        :func:`SlicerFMLib.undo.save_state_for_undo`).
    Raises ValueError for an unknown segment, a non-linear transform on the segmentation,
    a mask/box shape mismatch or a non-labelmap segmentation.
    """
    from slicer import vtkSlicerSegmentationsModuleLogic as Logic

    locked = set(locked_segment_ids)
    if segment_id in locked:
        raise ValueError(f"segment {segment_id!r} is locked: unlock it before editing it")
    segment_labelmap(segmentation_node, segment_id)          # validates the segment
    if bbox_kji is None or np.any(np.asarray(bbox_kji[1]) <= np.asarray(bbox_kji[0])):
        return
    vol_to_seg = volume_ijk_to_segmentation(segmentation_node, ijk_to_ras_world)
    codes = _box_codes(bbox_kji, mask_kji, editable_mask)
    others = _segments_to_overwrite(segmentation_node, segment_id, overwrite_other_segments,
                                    locked)
    if save_undo_state:
        save_state_for_undo(segmentation_node, history)

    lattice, extent, on_grid = _codes_on_segment_grid(segmentation_node, segment_id, codes,
                                                      bbox_kji, vol_to_seg)
    _erase(segmentation_node, segment_id, lattice, extent, on_grid == _CLEAR)
    for other_id in others:
        other_labelmap = segment_labelmap(segmentation_node, other_id)
        if other_labelmap is None or extent_is_empty(other_labelmap.GetExtent()):
            continue
        o_lattice, o_extent, o_codes = _codes_on_segment_grid(
            segmentation_node, other_id, codes, bbox_kji, vol_to_seg)
        _erase(segmentation_node, other_id, o_lattice, o_extent, o_codes == _SET)
    painted = on_grid == _SET
    if painted.any():
        _merge(segmentation_node, segment_id, lattice, extent, painted, Logic.MODE_MERGE_MASK,
               others)


def segment_to_mask(segmentation_node, segment_id: str, shape_kji: Sequence[int],
                    ijk_to_ras_world, bbox_kji=None) -> np.ndarray:
    """The segment resampled (nearest neighbour) onto the volume's grid: bool (K, J, I).

    shape_kji: (K, J, I) of the volume; ijk_to_ras_world its (4, 4) voxel -> world RAS
    matrix. With ``bbox_kji`` ([[k0, j0, i0], [k1, j1, i1]], stop exclusive) only that block
    is computed and returned (shape (k1-k0, j1-j0, i1-i0)). The segment's labelmap may be on
    another grid and the segmentation under a linear transform. Used to re-seed a segment on
    the server (``SlicerFMClient.seed``) after a reconnect.
    """
    labelmap = segment_labelmap(segmentation_node, segment_id)
    if bbox_kji is None:
        bbox_kji = [[0, 0, 0], [int(s) for s in shape_kji]]
    (k0, j0, i0), (k1, j1, i1) = [[int(v) for v in corner] for corner in bbox_kji]
    shape = (max(k1 - k0, 0), max(j1 - j0, 0), max(i1 - i0, 0))
    if labelmap is None or min(shape) == 0 or extent_is_empty(labelmap.GetExtent()):
        return np.zeros(shape, dtype=bool)
    label = segmentation_node.GetSegmentation().GetSegment(segment_id).GetLabelValue()
    vol_to_seg = volume_ijk_to_segmentation(segmentation_node, ijk_to_ras_world)
    values = resample_labelmap(labelmap, vol_to_seg, (i0, i1 - 1, j0, j1 - 1, k0, k1 - 1))
    return values == label


def segment_box_on_volume(segmentation_node, segment_id: str, shape_kji: Sequence[int],
                          ijk_to_ras_world):
    """The volume-grid box ``((k0, j0, i0), (k1, j1, i1))`` (stop exclusive, clipped to
    ``shape_kji``) that covers the extent of ``segment_id``'s labelmap layer (a superset
    of its voxels); None when the segment is empty or lies outside the volume."""
    labelmap = segment_labelmap(segmentation_node, segment_id)
    if labelmap is None or extent_is_empty(labelmap.GetExtent()):
        return None
    i0, i1, j0, j1, k0, k1 = labelmap.GetExtent()
    corners = np.array([[i, j, k, 1.0] for i in (i0 - 0.5, i1 + 0.5)
                        for j in (j0 - 0.5, j1 + 0.5) for k in (k0 - 0.5, k1 + 0.5)])
    vol_to_seg = volume_ijk_to_segmentation(segmentation_node, ijk_to_ras_world)
    kji = ((np.linalg.inv(vol_to_seg) @ image_to_world(labelmap) @ corners.T)[2::-1]).T
    low = np.clip(np.floor(kji.min(axis=0)).astype(int), 0, None)
    high = np.minimum(np.ceil(kji.max(axis=0)).astype(int) + 1, np.asarray(shape_kji, int))
    if np.any(high <= low):
        return None
    return tuple(int(v) for v in low), tuple(int(v) for v in high)


def replace_segment(segmentation_node, segment_id: str, bbox_kji, mask_kji: np.ndarray,
                    ijk_to_ras_world, shape_kji: Optional[Sequence[int]] = None,
                    **kwargs) -> None:
    """Make ``segment_id`` exactly ``mask_kji`` inside ``bbox_kji`` and EMPTY elsewhere
    (unlike :func:`apply_mask_update`, which leaves the outside alone). Only the box and
    the segment's current extent are written, so a small segment costs little on a large
    volume. shape_kji: the volume's (K, J, I) (default: the box's stop corner).
    kwargs: as for :func:`apply_mask_update` (editable_mask may cover the whole volume).
    """
    start = np.asarray(bbox_kji[0], dtype=int)
    stop = np.asarray(bbox_kji[1], dtype=int)
    shape = stop if shape_kji is None else np.asarray(shape_kji, dtype=int)
    current = segment_box_on_volume(segmentation_node, segment_id, shape, ijk_to_ras_world)
    low, high = start.copy(), stop.copy()
    if current is not None:
        low = np.minimum(low, current[0])
        high = np.maximum(high, current[1])
    if np.any(high <= low):
        return
    block = np.zeros(tuple(high - low), dtype=bool)
    block[tuple(slice(a, b) for a, b in zip(start - low, stop - low))] = mask_kji
    apply_mask_update(segmentation_node, segment_id, [low.tolist(), high.tolist()], block,
                      ijk_to_ras_world, **kwargs)
