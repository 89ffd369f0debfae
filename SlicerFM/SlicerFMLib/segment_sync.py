"""Keeping the server's copy of each segment in step with what Slicer holds.

For every segment SlicerFM works on, the Logic keeps a :class:`SegmentState`:

* ``mirror``: the segment as Slicer holds it, resampled onto the uploaded volume's grid
  (bool ``(K, J, I)``, stored cropped to its bounding box). It is refreshed after every
  SlicerFM write from the written box only, so it costs nothing per click.
* ``stamp``: the segment's labelmap object, its modified time and label value after the
  last write or check. A different stamp means something else edited the segmentation
  (paint brush, Slicer's undo, another segment sharing the layer); the segment is then
  compared with the mirror in full, and if it really changed it is marked ``dirty``.
* ``generation``: the connection generation in which the server last held exactly the
  mirror (see :class:`SlicerFMLib.connection.Connection`); -1 = never.

Before each server operation the Logic sends a seed of the mirror when the segment is dirty
or the server's generation moved on (new session after a restart, another image), so the
server always works from what the user sees. MRML is read here on the main thread only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np

from slicerfm_client.geometry import BBox, bbox_slices, bbox_union, slices_within, tight_bbox

from .labelmap_grid import segment_labelmap
from .segment_io import segment_to_mask

NEVER = -1


class CroppedMask:
    """A bool mask of shape ``shape`` (K, J, I) stored as its tight bbox and that block."""

    def __init__(self, shape):
        self.shape = tuple(int(s) for s in shape)
        self.bbox: Optional[BBox] = None
        self.crop = np.zeros((0, 0, 0), dtype=bool)

    @classmethod
    def from_full(cls, mask: np.ndarray) -> "CroppedMask":
        result = cls(mask.shape)
        result.bbox = tight_bbox(mask)
        if result.bbox is not None:
            result.crop = np.ascontiguousarray(mask[bbox_slices(result.bbox)], dtype=bool)
        return result

    @property
    def voxels(self) -> int:
        return int(self.crop.sum())

    def write(self, bbox: BBox, values: np.ndarray) -> None:
        """Set the block ``bbox`` (stop exclusive) to ``values`` (bool, the box's shape)."""
        union = bbox if self.bbox is None else bbox_union(self.bbox, bbox)
        block = np.zeros(tuple(b - a for a, b in zip(*union)), dtype=bool)
        if self.bbox is not None:
            block[slices_within(self.bbox, union)] = self.crop
        block[slices_within(bbox, union)] = values
        local = tight_bbox(block)
        if local is None:
            self.bbox, self.crop = None, np.zeros((0, 0, 0), dtype=bool)
            return
        self.crop = np.ascontiguousarray(block[bbox_slices(local)])
        self.bbox = (tuple(u + a for u, a in zip(union[0], local[0])),
                     tuple(u + b for u, b in zip(union[0], local[1])))

    def full(self) -> np.ndarray:
        """The whole (K, J, I) bool mask (a new array)."""
        mask = np.zeros(self.shape, dtype=bool)
        if self.bbox is not None:
            mask[bbox_slices(self.bbox)] = self.crop
        return mask

    def equals(self, mask: np.ndarray) -> bool:
        """True when the full (K, J, I) ``mask`` holds exactly these voxels."""
        other = CroppedMask.from_full(mask)
        return other.bbox == self.bbox and np.array_equal(other.crop, self.crop)

    def seed_block(self) -> Tuple[list, np.ndarray]:
        """``(bbox_kji, uint8 block)`` for ``SlicerFMClient.seed``; an empty mask gives one
        zero voxel at the origin (seeding it empties the segment)."""
        if self.bbox is None:
            return [[0, 0, 0], [1, 1, 1]], np.zeros((1, 1, 1), dtype=np.uint8)
        return [list(self.bbox[0]), list(self.bbox[1])], self.crop.astype(np.uint8)


def labelmap_stamp(segmentation_node, segment_id: str) -> tuple:
    """What changes whenever the segment's voxels may have changed: the layer's
    ``vtkOrientedImageData`` (object and modified time) and the segment's label value."""
    labelmap = segment_labelmap(segmentation_node, segment_id)
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    if labelmap is None:
        return (None, 0, segment.GetLabelValue())
    return (labelmap.__this__, labelmap.GetMTime(), segment.GetLabelValue())


def server_segment_name(segmentation_node, segment_id: str) -> str:
    """The segment's name on the server: unique per segmentation node and segment ID."""
    return f"{segmentation_node.GetID()}/{segment_id}"[:200]


@dataclass(eq=False)
class SegmentState:
    """SlicerFM's bookkeeping for one segment (see the module docstring).

    grid_key: identifies the volume grid the mirror is on (shape and ijk_to_ras_world).
    """

    segmentation_id: str
    segment_id: str
    server_name: str
    grid_key: tuple
    mirror: CroppedMask
    stamp: tuple = ()
    generation: int = NEVER
    dirty: bool = False
    can_undo: bool = False
    can_redo: bool = False
    prompts: int = field(default=0)

    def needs_seed(self, generation: int) -> bool:
        """True when the server must be sent the mirror before the next operation."""
        if self.dirty:
            return True
        return self.generation != generation and self.mirror.bbox is not None


def grid_key(shape_kji, ijk_to_ras_world) -> tuple:
    """Hashable identity of a volume grid: shape and the (4, 4) matrix rounded to 1 µm."""
    return (tuple(int(s) for s in shape_kji),
            tuple(np.round(np.asarray(ijk_to_ras_world, dtype=np.float64), 6).ravel().tolist()))


def new_state(segmentation_node, segment_id: str, shape_kji, ijk_to_ras_world) -> SegmentState:
    """A state whose mirror is read from Slicer now (full resample onto the volume grid)."""
    mask = segment_to_mask(segmentation_node, segment_id, shape_kji, ijk_to_ras_world)
    return SegmentState(segmentation_node.GetID(), segment_id,
                        server_segment_name(segmentation_node, segment_id),
                        grid_key(shape_kji, ijk_to_ras_world), CroppedMask.from_full(mask),
                        stamp=labelmap_stamp(segmentation_node, segment_id))


def refresh_state(state: SegmentState, segmentation_node, shape_kji, ijk_to_ras_world,
                  force: bool = False) -> SegmentState:
    """Check the segment against the mirror; returns the state to use from now on.

    Another grid (volume changed or moved) gives a new state. A changed stamp (or
    ``force``) re-reads the whole segment; when it differs from the mirror the mirror is
    replaced and the state marked dirty (the server must be seeded).
    """
    key = grid_key(shape_kji, ijk_to_ras_world)
    if state.grid_key != key:
        return new_state(segmentation_node, state.segment_id, shape_kji, ijk_to_ras_world)
    stamp = labelmap_stamp(segmentation_node, state.segment_id)
    if force or stamp != state.stamp:
        mask = segment_to_mask(segmentation_node, state.segment_id, shape_kji, ijk_to_ras_world)
        if not state.mirror.equals(mask):
            state.mirror = CroppedMask.from_full(mask)
            state.dirty = True
        state.stamp = stamp
    return state


def record_write(state: SegmentState, segmentation_node, bbox: BBox, shape_kji,
                 ijk_to_ras_world) -> None:
    """After SlicerFM wrote ``bbox`` of the segment: copy what Slicer now holds there into
    the mirror (the written box only) and take a new stamp."""
    block = segment_to_mask(segmentation_node, state.segment_id, shape_kji, ijk_to_ras_world,
                            bbox_kji=[list(bbox[0]), list(bbox[1])])
    state.mirror.write(bbox, block)
    state.stamp = labelmap_stamp(segmentation_node, state.segment_id)
