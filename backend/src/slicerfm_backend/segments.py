"""Segments of one session: masks, prompts, undo/redo history and locks.

Every change to a segment goes through :meth:`SegmentSet.commit`, which

1. removes voxels owned by *locked* segments from the new values (segment protection:
   whatever an engine returns, a locked segment's voxels are never taken),
2. finds the bounding box of the voxels that really changed,
3. records the step (old and new values inside that box, compressed, and the prompts
   before and after) on the segment's undo stack, and
4. returns a :class:`Change` holding only that box -- what goes on the wire.

Every change is first handed to ``recorder(kind, fields, blobs)`` and applied only when
that returns: with a journal as recorder (:mod:`.persistence.session_files`), what a client
was told is on disk, and a change the journal cannot take changes nothing. ``replay``
applies a recorded change again after a restart, with the same result.

Memory: the masks (tight boolean blocks) and the compressed steps count against
``byte_limit`` (the session's share of the sessions budget). A change that would pass it
drops the session's oldest history steps first (any segment's; recorded with the change);
a change whose masks alone would pass it is refused (413) and changes nothing.

Segments may overlap unless locked; the label map export paints locked segments last.
Coordinates are voxel indices in numpy ``(k, j, i)`` order.
"""

from __future__ import annotations

import itertools
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from slicerfm_client import protocol
from slicerfm_client.geometry import (BBox, bbox_shape, bbox_slices, bbox_union, clip_bbox, slices_within,
                                      tight_bbox)

from .engines.base import Prompt
from .errors import DomainError, invalid
from .memory import megabytes
from .packed_mask import PackedMask
from .sparse_mask import SparseMask

MAX_NAME_CHARS = 200
Recorder = Callable[[str, dict, Sequence[bytes]], None]


def check_segment_name(name) -> str:
    """``name`` when usable as a segment name: 1-200 characters, not blank, valid Unicode
    (no lone surrogates), no control characters; 422 otherwise."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
        raise invalid(f"a segment name must be 1 to {MAX_NAME_CHARS} characters, not blank")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid("a segment name must be valid Unicode text (it holds a lone surrogate)") from None
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
        raise invalid("a segment name must not contain control characters (newlines, tabs, ...)")
    return name


@dataclass
class Change:
    """The new values of a segment inside ``bbox`` (None: nothing changed)."""

    segment: str
    bbox: Optional[BBox]
    values: np.ndarray


@dataclass
class Step:
    """One undo step: old and new values inside ``bbox`` (None: no voxel changed) and the
    prompts before and after. ``seq`` orders steps across segments (oldest first)."""

    bbox: Optional[BBox]
    before: Optional[PackedMask]
    after: Optional[PackedMask]
    prompts_before: List[Prompt]
    prompts_after: List[Prompt]
    seq: int = 0

    @property
    def nbytes(self) -> int:
        return 256 + sum(p.nbytes for p in (self.before, self.after) if p is not None)


@dataclass
class Segment:
    name: str
    label: int
    mask: SparseMask
    locked: bool = False
    prompts: List[Prompt] = field(default_factory=list)
    undo: List[Step] = field(default_factory=list)
    redo: List[Step] = field(default_factory=list)

    def describe(self) -> dict:
        return {"name": self.name, "label": self.label, "locked": self.locked,
                "voxels": self.mask.count(), "prompts": len(self.prompts),
                "can_undo": bool(self.undo), "can_redo": bool(self.redo)}

    @property
    def nbytes(self) -> int:
        return self.mask.nbytes + sum(s.nbytes for s in self.undo) + sum(s.nbytes for s in self.redo)


def _not_found(name: str) -> DomainError:
    return DomainError(protocol.ERROR_SEGMENT_NOT_FOUND,
                       "the session has no segment of that name; segments are created by the first "
                       "interaction or seed on them")


def _box_json(box: Optional[BBox]):
    return None if box is None else [list(box[0]), list(box[1])]


def box_from_json(raw) -> Optional[BBox]:
    return None if raw is None else (tuple(int(v) for v in raw[0]), tuple(int(v) for v in raw[1]))


def _no_record(kind: str, fields: dict, blobs: Sequence[bytes]) -> None:
    return None


class SegmentSet:
    """All segments of a session, on one image grid of ``shape`` (K, J, I)."""

    def __init__(self, shape, max_undo: int = 50, max_segments: int = 256,
                 byte_limit: Optional[int] = None, recorder: Recorder = _no_record):
        self.shape = tuple(int(s) for s in shape)
        self.max_undo = max_undo
        self.max_segments = max_segments
        self.byte_limit = byte_limit
        self.recorder = recorder
        self._segments: Dict[str, Segment] = {}
        self._next_label = 1
        self._seq = itertools.count(1)

    def __iter__(self):
        return iter(self._segments.values())

    @property
    def nbytes(self) -> int:
        """Memory held by the masks and the (compressed) history, in bytes."""
        return sum(segment.nbytes for segment in self._segments.values())

    def find(self, name: str) -> Optional[Segment]:
        return self._segments.get(name)

    def get(self, name: str) -> Segment:
        segment = self._segments.get(name)
        if segment is None:
            raise _not_found(name)
        return segment

    def get_or_create(self, name: str) -> Segment:
        check_segment_name(name)
        segment = self._segments.get(name)
        if segment is None:
            if len(self._segments) >= self.max_segments:
                raise invalid(f"a session holds at most {self.max_segments} segments")
            self.recorder("create", {"segment": name, "label": self._next_label}, ())
            segment = self._create(name, self._next_label)
        return segment

    def _create(self, name: str, label: int) -> Segment:
        segment = Segment(name, label, SparseMask(self.shape))
        self._next_label = max(self._next_label, label + 1)
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
            raise DomainError(protocol.ERROR_SEGMENT_LOCKED, "the segment is locked; unlock it to change it")

    def locked_region(self, bbox: BBox, exclude: str) -> Optional[np.ndarray]:
        """Union of locked segments other than ``exclude`` inside ``bbox`` (None if none)."""
        union = None
        for other in self._segments.values():
            if other.locked and other.name != exclude:
                region = other.mask.region(bbox)
                union = region if union is None else (union | region)
        return union

    # -- memory ----------------------------------------------------------------------------

    def _plan_drops(self, segment: Segment, box: Optional[BBox], values_any: bool,
                    added: int, keep: Sequence[Step] = ()) -> List[List]:
        """Steps to drop (``[[segment, "undo"|"redo", count]]``, oldest first) so that the
        set fits ``byte_limit`` after a change that writes ``box`` (any voxel set:
        ``values_any``) into ``segment`` and adds ``added`` bytes of history; 413 when
        the masks alone would not fit."""
        if self.byte_limit is None:
            return []
        masks = sum(s.mask.nbytes for s in self._segments.values() if s is not segment)
        masks += segment.mask.nbytes_after(box, values_any) if box is not None else segment.mask.nbytes
        if masks > self.byte_limit:
            raise DomainError(protocol.ERROR_TOO_LARGE,
                              f"this session's segments would need {megabytes(masks)}, more than the "
                              f"{megabytes(self.byte_limit)} the server gives one session "
                              "(SLICERFM_SESSION_BYTES / max_sessions); delete segments you no longer "
                              "need. Nothing was changed.")
        # Candidates, least valuable first: redo steps (bottom first: the last to be redone),
        # then undo steps, oldest first across segments.
        candidates = [(s.name, "redo", step) for s in self._segments.values() for step in s.redo
                      if step not in keep]
        candidates += sorted(((s.name, "undo", step) for s in self._segments.values() for step in s.undo
                              if step not in keep), key=lambda entry: entry[2].seq)
        total = masks + added + sum(st.nbytes for s in self._segments.values() for st in s.undo + s.redo)
        counts: Dict[Tuple[str, str], int] = {}
        for name, stack, step in candidates:
            if total <= self.byte_limit:
                break
            total -= step.nbytes
            counts[(name, stack)] = counts.get((name, stack), 0) + 1
        return [[name, stack, count] for (name, stack), count in counts.items()]

    def _drop(self, drops: List[List]) -> None:
        """Drop the bottom ``count`` steps of each named stack (undo: the oldest; redo: the
        last to be redone)."""
        for name, stack, count in drops:
            steps = getattr(self._segments[name], stack)
            del steps[:int(count)]

    # -- changes ---------------------------------------------------------------------------

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
        step_box, old, new = None, None, None
        if changed is not None:
            inner = bbox_slices(changed)
            step_box = (tuple(a + o for a, o in zip(changed[0], bbox[0])),
                        tuple(b + o for b, o in zip(changed[1], bbox[0])))
            old, new = before[inner].copy(), values[inner].copy()
        step = Step(step_box, None if old is None else PackedMask.pack(old),
                    None if new is None else PackedMask.pack(new),
                    list(segment.prompts), list(prompts_after), next(self._seq))
        # The new step itself is never dropped; the redo stack it clears frees its bytes.
        redo_bytes = sum(s.nbytes for s in segment.redo)
        drops = self._plan_drops(segment, step_box, bool(new is not None and new.any()),
                                 step.nbytes - redo_bytes, keep=segment.redo)
        self.recorder("step", {"segment": segment.name, "bbox": _box_json(step_box),
                               "prompts_before": [prompt_json(p) for p in step.prompts_before],
                               "prompts_after": [prompt_json(p) for p in step.prompts_after],
                               "drop": drops},
                      [p.data for p in (step.before, step.after) if p is not None])
        self._apply_step(segment, step, new, drops)
        return Change(segment.name, step_box, new if new is not None else np.zeros((0, 0, 0), bool))

    def _apply_step(self, segment: Segment, step: Step, new: Optional[np.ndarray], drops) -> None:
        self._drop(drops)
        if step.bbox is not None:
            segment.mask.set_region(step.bbox, new)
        segment.undo.append(step)
        del segment.undo[: -self.max_undo]
        segment.redo.clear()
        segment.prompts = list(step.prompts_after)

    def undo(self, segment: Segment) -> Change:
        self.require_unlocked(segment)
        if not segment.undo:
            raise DomainError(protocol.ERROR_NOTHING_TO_UNDO, "nothing to undo on this segment")
        return self._walk(segment, "undo")

    def redo(self, segment: Segment) -> Change:
        self.require_unlocked(segment)
        if not segment.redo:
            raise DomainError(protocol.ERROR_NOTHING_TO_UNDO, "nothing to redo on this segment")
        return self._walk(segment, "redo")

    def _walk(self, segment: Segment, direction: str) -> Change:
        step = (segment.undo if direction == "undo" else segment.redo)[-1]
        values = step.before if direction == "undo" else step.after
        any_true = values is not None and bool(values.unpack().any())
        drops = self._plan_drops(segment, step.bbox, any_true, 0, keep=(step,))
        self.recorder(direction, {"segment": segment.name, "drop": drops}, ())
        return self._apply_walk(segment, direction, drops)

    def _apply_walk(self, segment: Segment, direction: str, drops) -> Change:
        self._drop(drops)  # never the step that moves (planned with keep=(step,))
        source, target = (segment.undo, segment.redo) if direction == "undo" else (segment.redo, segment.undo)
        step = source.pop()
        target.append(step)
        packed = step.before if direction == "undo" else step.after
        prompts = step.prompts_before if direction == "undo" else step.prompts_after
        return self._restore(segment, step.bbox, None if packed is None else packed.unpack(), prompts)

    def _restore(self, segment: Segment, bbox, values, prompts) -> Change:
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

    def set_locked(self, segment: Segment, locked: bool) -> None:
        if segment.locked != locked:
            self.recorder("lock", {"segment": segment.name, "locked": bool(locked)}, ())
            segment.locked = bool(locked)

    def delete(self, name: str) -> None:
        segment = self.get(name)
        self.require_unlocked(segment)
        self.recorder("delete", {"segment": name}, ())
        del self._segments[name]

    # -- after a restart -------------------------------------------------------------------

    def replay(self, kind: str, fields: dict, blobs: Sequence[bytes]) -> None:
        """Apply a change handed to the recorder before (the journal after a restart)."""
        if kind == "create":
            self._create(fields["segment"], int(fields["label"]))
            return
        segment = self._segments[fields["segment"]]
        if kind == "step":
            box = box_from_json(fields["bbox"])
            packed = [PackedMask.from_data(bbox_shape(box), blob) for blob in blobs] if box else [None, None]
            step = Step(box, packed[0], packed[1], [prompt_from_json(p) for p in fields["prompts_before"]],
                        [prompt_from_json(p) for p in fields["prompts_after"]], next(self._seq))
            self._apply_step(segment, step, None if box is None else packed[1].unpack(), fields.get("drop", []))
        elif kind in ("undo", "redo"):
            self._apply_walk(segment, kind, fields.get("drop", []))
        elif kind == "lock":
            segment.locked = bool(fields["locked"])
        elif kind == "delete":
            del self._segments[fields["segment"]]
        else:
            raise ValueError(f"unknown journal record {kind!r}")

    # -- snapshots (persistence/snapshot.py) -----------------------------------------------

    @property
    def next_label(self) -> int:
        return self._next_label

    def restore_segment(self, segment: Segment) -> None:
        """Put back a segment read from a snapshot (steps keep their ``seq``)."""
        self._segments[segment.name] = segment
        self._next_label = max(self._next_label, segment.label + 1)
        top = max([s.seq for s in segment.undo + segment.redo] + [0])
        current = next(self._seq)
        self._seq = itertools.count(max(current, top + 1))

    def restore_next_label(self, label: int) -> None:
        self._next_label = max(self._next_label, int(label))

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


def prompt_json(prompt: Prompt) -> dict:
    return {"kind": prompt.kind, "positive": prompt.positive,
            "point_kji": None if prompt.point_kji is None else list(prompt.point_kji),
            "box_kji": None if prompt.box_kji is None else [list(c) for c in prompt.box_kji]}


def prompt_from_json(raw: dict) -> Prompt:
    point = raw.get("point_kji")
    box = raw.get("box_kji")
    return Prompt(raw["kind"], bool(raw["positive"]), point_kji=None if point is None else tuple(point),
                  box_kji=None if box is None else (tuple(box[0]), tuple(box[1])))
