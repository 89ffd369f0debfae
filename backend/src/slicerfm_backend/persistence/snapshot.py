"""A session's whole segment state as one record: masks, prompts, locks, undo and redo.

``fields`` describes each segment (name, label, locked, prompts, the mask's box and every
step's box, prompts and ``seq``); the blobs are the packed masks, in the order listed
(mask block, then each step's before and after where present).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from slicerfm_client.geometry import bbox_shape

from ..packed_mask import PackedMask
from ..segments import Segment, SegmentSet, Step, _box_json, box_from_json, prompt_from_json, prompt_json
from ..sparse_mask import SparseMask


def _step_fields(step: Step, blobs: List[bytes]) -> dict:
    for packed in (step.before, step.after):
        if packed is not None:
            blobs.append(packed.data)
    return {"bbox": _box_json(step.bbox), "seq": step.seq,
            "prompts_before": [prompt_json(p) for p in step.prompts_before],
            "prompts_after": [prompt_json(p) for p in step.prompts_after]}


def dump(segments: SegmentSet) -> Tuple[dict, List[bytes]]:
    """``(fields, blobs)`` of a snapshot of ``segments``."""
    blobs: List[bytes] = []
    rows = []
    for segment in segments:
        box = segment.mask.bbox()
        if box is not None:
            blobs.append(PackedMask.pack(segment.mask.region(box)).data)
        rows.append({"name": segment.name, "label": segment.label, "locked": segment.locked,
                     "prompts": [prompt_json(p) for p in segment.prompts], "box": _box_json(box),
                     "undo": [_step_fields(s, blobs) for s in segment.undo],
                     "redo": [_step_fields(s, blobs) for s in segment.redo]})
    return {"shape": list(segments.shape), "next_label": segments.next_label, "segments": rows}, blobs


def _take(blobs: Sequence[bytes], position: List[int], box) -> Optional[PackedMask]:
    if box is None:
        return None
    blob = blobs[position[0]]
    position[0] += 1
    return PackedMask.from_data(bbox_shape(box), blob)


def _step(row: dict, blobs, position) -> Step:
    box = box_from_json(row["bbox"])
    before = _take(blobs, position, box)
    after = _take(blobs, position, box)
    return Step(box, before, after, [prompt_from_json(p) for p in row["prompts_before"]],
                [prompt_from_json(p) for p in row["prompts_after"]], int(row["seq"]))


def load(fields: dict, blobs: Sequence[bytes], segments: SegmentSet) -> SegmentSet:
    """Fill the empty ``segments`` (made for ``fields["shape"]``) from a snapshot."""
    position = [0]
    for row in fields["segments"]:
        mask = SparseMask(segments.shape)
        box = box_from_json(row["box"])
        packed = _take(blobs, position, box)
        if packed is not None:
            mask.set_region(box, packed.unpack())
        segment = Segment(row["name"], int(row["label"]), mask, bool(row["locked"]),
                          [prompt_from_json(p) for p in row["prompts"]])
        segment.undo = [_step(step, blobs, position) for step in row["undo"]]
        segment.redo = [_step(step, blobs, position) for step in row["redo"]]
        segments.restore_segment(segment)
    segments.restore_next_label(int(fields["next_label"]))
    return segments
