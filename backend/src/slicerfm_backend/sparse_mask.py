"""A binary mask on a large grid stored as a bounding box plus a boolean block.

A segment of a 512x512x300 CT stored as a full boolean volume costs 79 MB; most segments
cover a small part of the volume, so each is kept as ``(origin, block)`` and grows only as
far as its voxels reach. All coordinates are voxel indices in numpy ``(k, j, i)`` order.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from slicerfm_client.geometry import (BBox, bbox_intersection, bbox_shape, bbox_slices, bbox_union, clip_bbox,
                                      slices_within, tight_bbox)

from .engines.base import MaskView


class SparseMask(MaskView):
    """Boolean mask over a grid of ``shape`` (k, j, i), stored as its bounding block."""

    def __init__(self, shape: Sequence[int]):
        self.shape = tuple(int(s) for s in shape)
        self._box: Optional[BBox] = None
        self._block: Optional[np.ndarray] = None

    @property
    def nbytes(self) -> int:
        return 0 if self._block is None else int(self._block.nbytes)

    def nbytes_after(self, bbox: BBox, any_set: bool) -> int:
        """What ``nbytes`` would be after ``set_region(bbox, values)``, where ``any_set``
        says whether ``values`` holds a True voxel (storage only grows for those)."""
        clipped = clip_bbox(bbox, self.shape)
        if not any_set or any(a >= b for a, b in zip(*clipped)):
            return self.nbytes
        box = clipped if self._box is None else bbox_union(clipped, self._box)
        return int(np.prod(bbox_shape(box), dtype=np.int64))

    def bbox(self) -> Optional[BBox]:
        """Tight bounding box of the set voxels (None when empty)."""
        if self._block is None:
            return None
        tight = tight_bbox(self._block)
        if tight is None:
            return None
        origin = self._box[0]
        return (
            tuple(o + s for o, s in zip(origin, tight[0])),
            tuple(o + s for o, s in zip(origin, tight[1])),
        )

    def count(self) -> int:
        return 0 if self._block is None else int(np.count_nonzero(self._block))

    def region(self, bbox: BBox) -> np.ndarray:
        """Copy of the mask inside ``bbox`` (voxels outside the grid read as False)."""
        out = np.zeros(bbox_shape(bbox), dtype=bool)
        if self._block is None:
            return out
        common = bbox_intersection(bbox, self._box)
        if common is not None:
            out[slices_within(common, bbox)] = self._block[slices_within(common, self._box)]
        return out

    def set_region(self, bbox: BBox, values: np.ndarray) -> None:
        """Overwrite the mask inside ``bbox`` (clipped to the grid) with ``values``."""
        clipped = clip_bbox(bbox, self.shape)
        if any(a >= b for a, b in zip(*clipped)):
            return
        values = np.asarray(values, dtype=bool)[slices_within(clipped, bbox)]
        if self._block is None:
            if not values.any():
                return
            self._box, self._block = clipped, values.copy()
            return
        if bbox_intersection(clipped, self._box) != clipped:
            if not values.any():
                # Only clearing: nothing to do outside the stored block.
                common = bbox_intersection(clipped, self._box)
                if common is not None:
                    self._block[slices_within(common, self._box)] = False
                return
            self._grow(bbox_union(clipped, self._box))
        self._block[slices_within(clipped, self._box)] = values

    def _grow(self, box: BBox) -> None:
        block = np.zeros(bbox_shape(box), dtype=bool)
        block[slices_within(self._box, box)] = self._block
        self._box, self._block = box, block

    def compact(self) -> None:
        """Shrink storage to the tight bounding box (call after large erasures)."""
        tight = self.bbox()
        if tight is None:
            self._box = self._block = None
        elif tight != self._box:
            self._block = self._block[slices_within(tight, self._box)].copy()
            self._box = tight

    def to_dense(self) -> np.ndarray:
        """The full boolean volume of ``shape``."""
        out = np.zeros(self.shape, dtype=bool)
        if self._block is not None:
            out[bbox_slices(self._box)] = self._block
        return out

    def clear(self) -> None:
        self._box = self._block = None
