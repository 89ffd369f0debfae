"""Segments of one session: masks, prompts, undo/redo history and locks.

Every change to a segment goes through :meth:`SegmentSet.commit`, which

1. removes voxels owned by *locked* segments from the new values (segment protection:
   whatever an engine returns, a locked segment's voxels are never taken),
2. finds the bounding box of the voxels that really changed,
3. records the step (old and new values inside that box, prompts before and after) on the
   segment's undo stack, and
4. returns a :class:`Change` holding only that box -- what goes on the wire.

Segments may overlap unless locked; the label map export paints locked segments last.
Coordinates are voxel indices in numpy ``(k, j, i)`` order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from slicerfm_client import protocol
from slicerfm_client.geometry import (BBox, bbox_shape, bbox_slices, bbox_union, clip_bbox, slices_within,
                                      tight_bbox)

from .engines.base import Prompt
from .errors import DomainError, invalid
from .sparse_mask import SparseMask


@dataclass
class Change:
    """The new values of a segment inside ``bbox`` (None: nothing changed)."""

    segment: str
    bbox: Optional[BBox]
    values: np.ndarray


@dataclass
class _Step:
    bbox: Optional[BBox]
    before: Optional[np.ndarray]
    after: Optional[np.ndarray]
    prompts_before: List[Prompt]
    prompts_after: List[Prompt]


@dataclass
class Segment:
    name: str
    label: int
    mask: SparseMask
    locked: bool = False
    prompts: List[Prompt] = field(default_factory=list)
    undo: List[_Step] = field(default_factory=list)
    redo: List[_Step] = field(default_factory=list)

    def describe(self) -> dict:
        return {"name": self.name, "label": self.label, "locked": self.locked,
                "voxels": self.mask.count(), "prompts": len(self.prompts),
                "can_undo": bool(self.undo), "can_redo": bool(self.redo)}


def _not_found(name: str) -> DomainError:
    return DomainError(protocol.ERROR_SEGMENT_NOT_FOUND,
                       f"the session has no segment named {name!r}; segments are created by the "
                       "first interaction or seed on them")


class SegmentSet:
    """All segments of a session, on one image grid of ``shape`` (K, J, I)."""

    def __init__(self, shape, max_undo: int = 50, max_segments: int = 256):
        self.shape = tuple(int(s) for s in shape)
        self.max_undo = max_undo
        self.max_segments = max_segments
        self._segments: Dict[str, Segment] = {}
        self._next_label = 1

    def __iter__(self):
        return iter(self._segments.values())

    def find(self, name: str) -> Optional[Segment]:
        return self._segments.get(name)

    def get(self, name: str) -> Segment:
        segment = self._segments.get(name)
        if segment is None:
            raise _not_found(name)
        return segment

    def get_or_create(self, name: str) -> Segment:
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise invalid("a segment name must be 1 to 200 characters")
        segment = self._segments.get(name)
        if segment is None:
            if len(self._segments) >= self.max_segments:
                raise invalid(f"a session holds at most {self.max_segments} segments")
            segment = Segment(name, self._next_label, SparseMask(self.shape))
            self._next_label += 1
            self._segments[name] = segment
        return segment

    def change_meta(self, change: Change) -> dict:
        """The meta of a mask update message for ``change`` (docs/PROTOCOL.md section 7)."""
        segment = self.find(change.segment)
        described = segment.describe() if segment is not None else {}
        return {
            "segment": change.segment,
            "bbox_kji": None if change.bbox is None else [list(change.bbox[0]), list(change.bbox[1])],
            "voxels": described.get("voxels", 0),
            "can_undo": described.get("can_undo", False),
            "can_redo": described.get("can_redo", False),
        }

    def require_unlocked(self, segment: Segment) -> None:
        if segment.locked:
            raise DomainError(protocol.ERROR_SEGMENT_LOCKED,
                              f"segment {segment.name!r} is locked; unlock it to change it")

    def locked_region(self, bbox: BBox, exclude: str) -> Optional[np.ndarray]:
        """Union of locked segments other than ``exclude`` inside ``bbox`` (None if none)."""
        union = None
        for other in self._segments.values():
            if other.locked and other.name != exclude:
                region = other.mask.region(bbox)
                union = region if union is None else (union | region)
        return union

    def commit(self, segment: Segment, bbox: BBox, values: np.ndarray,
               prompts_after: List[Prompt]) -> Change:
        """Set ``segment`` to ``values`` inside ``bbox`` (locks applied); record an undo step."""
        bbox = clip_bbox(bbox, self.shape)
        values = np.asarray(values, dtype=bool)
        protected = self.locked_region(bbox, exclude=segment.name)
        if protected is not None:
            values = values & ~protected
        before = segment.mask.region(bbox)
        changed = tight_bbox(before != values)
        step_box = None
        if changed is not None:
            inner = bbox_slices(changed)
            step_box = (tuple(a + o for a, o in zip(changed[0], bbox[0])),
                        tuple(b + o for b, o in zip(changed[1], bbox[0])))
            old, new = before[inner].copy(), values[inner].copy()
            segment.mask.set_region(step_box, new)
        else:
            old = new = None
        self._push(segment, _Step(step_box, old, new, list(segment.prompts), list(prompts_after)))
        segment.prompts = list(prompts_after)
        return Change(segment.name, step_box, new if new is not None else np.zeros((0, 0, 0), bool))

    def _push(self, segment: Segment, step: _Step) -> None:
        segment.undo.append(step)
        del segment.undo[: -self.max_undo]
        segment.redo.clear()

    def undo(self, segment: Segment) -> Change:
        self.require_unlocked(segment)
        if not segment.undo:
            raise DomainError(protocol.ERROR_NOTHING_TO_UNDO, f"nothing to undo on {segment.name!r}")
        step = segment.undo.pop()
        segment.redo.append(step)
        return self._apply(segment, step.bbox, step.before, step.prompts_before)

    def redo(self, segment: Segment) -> Change:
        self.require_unlocked(segment)
        if not segment.redo:
            raise DomainError(protocol.ERROR_NOTHING_TO_UNDO, f"nothing to redo on {segment.name!r}")
        step = segment.redo.pop()
        segment.undo.append(step)
        return self._apply(segment, step.bbox, step.after, step.prompts_after)

    def _apply(self, segment: Segment, bbox, values, prompts) -> Change:
        # Undo/redo restore exact earlier values, but never into voxels locked meanwhile.
        if bbox is not None:
            protected = self.locked_region(bbox, exclude=segment.name)
            if protected is not None:
                values = values & ~protected
            segment.mask.set_region(bbox, values)
        segment.prompts = list(prompts)
        return Change(segment.name, bbox, values if bbox is not None else np.zeros((0, 0, 0), bool))

    def reset(self, segment: Segment) -> Change:
        """Empty the segment and forget its prompts (one undoable step)."""
        self.require_unlocked(segment)
        box = segment.mask.bbox()
        if box is None:
            return self.commit(segment, ((0, 0, 0), (0, 0, 0)), np.zeros((0, 0, 0), bool), [])
        return self.commit(segment, box, np.zeros(tuple(b - a for a, b in zip(*box)), bool), [])

    def seed(self, segment: Segment, bbox: BBox, values: np.ndarray) -> Change:
        """Replace the whole segment with ``values`` at ``bbox`` (e.g. from the client's copy)."""
        self.require_unlocked(segment)
        old = segment.mask.bbox()
        union = bbox if old is None else bbox_union(old, bbox)
        full = np.zeros(bbox_shape(union), dtype=bool)
        full[slices_within(bbox, union)] = values
        return self.commit(segment, union, full, [])

    def delete(self, name: str) -> None:
        segment = self.get(name)
        self.require_unlocked(segment)
        del self._segments[name]

    def labelmap(self) -> Tuple[np.ndarray, List[dict]]:
        """Dense label volume (K, J, I); locked segments are painted last so they win overlaps."""
        dtype = np.uint8 if self._next_label - 1 <= 255 else np.uint16
        labels = np.zeros(self.shape, dtype=dtype)
        ordered = sorted(self._segments.values(), key=lambda s: (s.locked, s.label))
        for segment in ordered:
            box = segment.mask.bbox()
            if box is not None:
                region = labels[bbox_slices(box)]
                region[segment.mask.region(box)] = segment.label
        return labels, [{"name": s.name, "label": s.label, "locked": s.locked}
                        for s in self._segments.values()]
