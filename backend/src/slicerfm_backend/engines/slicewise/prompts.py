"""A segment's prompts as prompts on slices of one axis.

Rules (docs/PROTOCOL.md, "Slice engines"):

- A box one voxel thick on exactly one axis (its two corners round to the same index
  there) is a *slice box* on that axis, on that slice. A box thick on all three axes is a
  3-D box: it is used on its middle slice of the segment's axis, and propagation from it
  stays within the box's extent on that axis. A box thin on two or three axes is refused.
- A point lies on the slice of the segment's axis nearest to it.
- The segment's axis is the axis of its first slice box; without one, the ``slice_axis``
  the client sends with the interaction (0 = k, 1 = j, 2 = i), else 0. A slice box or a
  ``slice_axis`` on another axis is refused: one segment is worked on one axis.
- Every slice with a prompt is an *anchor*. A new box on a slice replaces the slice's box
  and drops its earlier points; points add up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ...errors import PromptError
from ..base import Prompt
from .slices import AXIS_NAMES, plane_axes, to_pixel

PixelBox = Tuple[float, float, float, float]  # row0, col0, row1, col1: inclusive pixel coordinates
PixelPoint = Tuple[float, float, int]  # row, col, label (1 inside, 0 outside)


@dataclass
class Anchor:
    """The prompts on one slice: a user box (or None), points, and for a 3-D box the
    inclusive slice range ``limits`` that propagation from it keeps to."""

    index: int
    box: Optional[PixelBox] = None
    points: List[PixelPoint] = field(default_factory=list)
    limits: Optional[Tuple[int, int]] = None


@dataclass
class SlicePrompts:
    """A segment's prompts on ``axis``: anchors by slice index; ``current`` is the slice of
    the last prompt (the one the user just gave)."""

    axis: int
    anchors: Dict[int, Anchor]
    current: int


def _box_axes(prompt: Prompt) -> Tuple[np.ndarray, np.ndarray, List[int]]:
    low = np.minimum(prompt.box_kji[0], prompt.box_kji[1]).astype(float)
    high = np.maximum(prompt.box_kji[0], prompt.box_kji[1]).astype(float)
    thin = [a for a in range(3) if np.floor(low[a] + 0.5) == np.floor(high[a] + 0.5)]
    if len(thin) > 1:
        raise PromptError("a box must span at least two voxels on two axes (one voxel thick on "
                          f"one axis for a slice box); got corners {prompt.box_kji}")
    return low, high, thin


def segment_axis(prompts: Sequence[Prompt], requested: Optional[int]) -> int:
    """The axis the segment is worked on (see the module docstring)."""
    for prompt in prompts:
        if prompt.kind == "box" and prompt.box_kji is not None:
            _, _, thin = _box_axes(prompt)
            if thin:
                axis = thin[0]
                if requested is not None and requested != axis:
                    raise PromptError(
                        f"this segment is worked on slices of axis {AXIS_NAMES[axis]} (its first box); "
                        f"prompts from slices of axis {AXIS_NAMES[requested]} need another segment, "
                        "or reset this one")
                return axis
    return 0 if requested is None else int(requested)


def _box_anchor(prompt: Prompt, axis: int, shape: Sequence[int]) -> Anchor:
    low, high, thin = _box_axes(prompt)
    rows, cols = plane_axes(axis)
    box = (float(low[rows]), float(low[cols]), float(high[rows]), float(high[cols]))
    if thin:
        if thin[0] != axis:
            raise PromptError(f"this box is on a slice of axis {AXIS_NAMES[thin[0]]}, but the segment "
                              f"is worked on axis {AXIS_NAMES[axis]} (one axis per segment); use "
                              "another segment or reset this one")
        return Anchor(int(np.floor(low[axis] + 0.5)), box=box)
    first = int(np.clip(np.floor(low[axis] + 0.5), 0, shape[axis] - 1))
    last = int(np.clip(np.floor(high[axis] + 0.5), 0, shape[axis] - 1))
    return Anchor((first + last) // 2, box=box, limits=(first, last))


def interpret(prompts: Sequence[Prompt], shape: Sequence[int], requested_axis: Optional[int] = None) -> SlicePrompts:
    """The slice prompts of a segment whose prompts are ``prompts`` (oldest first) on an
    image of ``shape`` (K, J, I); PromptError when they do not fit the rules above."""
    if not prompts:
        raise PromptError("no prompt given")
    axis = segment_axis(prompts, requested_axis)
    anchors: Dict[int, Anchor] = {}
    current = 0
    for prompt in prompts:
        if prompt.kind == "box" and prompt.box_kji is not None:
            anchor = _box_anchor(prompt, axis, shape)
            anchors[anchor.index] = anchor
            current = anchor.index
        elif prompt.kind == "point" and prompt.point_kji is not None:
            index, row, col = to_pixel(prompt.point_kji, axis)
            index = int(np.clip(index, 0, shape[axis] - 1))
            anchor = anchors.setdefault(index, Anchor(index))
            anchor.points.append((row, col, 1 if prompt.positive else 0))
            current = index
        else:
            raise PromptError(f"unusable prompt of kind {prompt.kind!r}")
    return SlicePrompts(axis, anchors, current)
