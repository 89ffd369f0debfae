"""Propagation through neighbouring slices, one direction at a time (MedSAM's 3-D recipe).

From a start slice with a mask, each next slice is segmented with the padded bounding box of
the previous slice's mask as its prompt (the caller's ``predict``), until one of:

- ``vanished``: the new mask has fewer than ``min_pixels`` pixels;
- ``jumped``: the new mask overlaps the previous one by less than ``min_overlap`` of the
  smaller of the two, or is more than ``max_growth`` times larger (a leak into a
  neighbour);
- ``unchanged``: the new mask equals the segment's mask on that slice already -- every
  later slice would get the same prompt as before, so nothing further changes;
- ``anchor``: the next slice has prompts of its own (its own propagation covers beyond it);
- ``limit``: ``max_slices`` slices done, or the end of the allowed range or the volume.

After ``vanished`` and ``jumped`` the slice is not written, and the old continuation is
cleared: the slices from there on that still hold the segment, up to the first empty one,
came from an earlier propagation through this slice that no longer holds -- unless that run
reaches a slice with prompts of its own, which holds it up from the other side. The same
clearing follows a refinement that empties the prompted slice (nothing propagates from it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Set, Tuple

import numpy as np

VANISHED, JUMPED, UNCHANGED, ANCHOR, LIMIT = "vanished", "jumped", "unchanged", "anchor", "limit"


@dataclass(frozen=True)
class StopRules:
    """When propagation stops; see the module docstring. Defaults are the engines' options."""

    min_pixels: int = 1
    min_overlap: float = 0.5
    max_growth: float = 3.0


@dataclass
class Walk:
    """One direction's outcome: new masks by slice index, indices set empty, the stop reason
    and the number of slices whose network result was computed."""

    masks: Dict[int, np.ndarray] = field(default_factory=dict)
    cleared: List[int] = field(default_factory=list)
    stopped: str = LIMIT
    computed: int = 0


def jumped(previous: np.ndarray, new: np.ndarray, rules: StopRules) -> bool:
    """Whether ``new`` is not a continuation of ``previous`` (2-D boolean masks)."""
    prev_area, new_area = int(np.count_nonzero(previous)), int(np.count_nonzero(new))
    overlap = int(np.count_nonzero(previous & new))
    if overlap < rules.min_overlap * min(prev_area, new_area):
        return True
    return new_area > rules.max_growth * prev_area


def walk(start: int, start_mask: np.ndarray, direction: int, last: int, anchors: Set[int],
         existing: Callable[[int], np.ndarray], predict: Callable[[int, np.ndarray], np.ndarray],
         rules: StopRules = StopRules(), on_slice: Optional[Callable[[int], None]] = None) -> Walk:
    """Walk from slice ``start`` (mask ``start_mask``) by ``direction`` (+1 / -1) up to slice
    ``last`` (inclusive, the limit of this direction).

    ``existing(n)`` is the segment's current mask on slice ``n`` (empty beyond the volume);
    ``predict(n, previous)``
    segments slice ``n`` given the previous slice's mask; ``on_slice(n)`` is called after each
    computed slice (progress; it may raise to cancel).
    """
    out = Walk()
    previous = start_mask
    n = start + direction
    while (n - last) * direction <= 0:
        if n in anchors:
            out.stopped = ANCHOR
            return out
        new = np.asarray(predict(n, previous), bool)
        out.computed += 1
        if on_slice is not None:
            on_slice(n)
        if np.count_nonzero(new) < rules.min_pixels or jumped(previous, new, rules):
            out.stopped = VANISHED if np.count_nonzero(new) < rules.min_pixels else JUMPED
            out.cleared = old_continuation(n, direction, anchors, existing)
            return out
        if np.array_equal(new, existing(n)):
            out.stopped = UNCHANGED
            return out
        out.masks[n] = new
        previous = new
        n += direction
    out.stopped = LIMIT
    return out


def old_continuation(n: int, direction: int, anchors: Set[int],
                     existing: Callable[[int], np.ndarray]) -> List[int]:
    """Slices from ``n`` on (by ``direction``) that hold the segment, up to the first empty
    one (``existing`` is empty beyond the volume) -- unless that run reaches a slice with
    prompts: then it is held up from that side, and nothing is cleared."""
    out = []
    while existing(n).any():
        if n in anchors:
            return []
        out.append(n)
        n += direction
    return out


def directions(start: int, count: int, max_slices: int,
               limits: Optional[Tuple[int, int]] = None) -> List[Tuple[int, int]]:
    """``[(direction, last slice), ...]`` for a walk from ``start`` in a volume of ``count``
    slices: at most ``max_slices`` per direction, within ``limits`` (inclusive) when given;
    directions with no slice to go are left out."""
    low, high = (0, count - 1) if limits is None else (max(0, limits[0]), min(count - 1, limits[1]))
    out = []
    for direction in (1, -1):
        bound = high if direction > 0 else low
        last = start + direction * max_slices
        last = min(last, bound) if direction > 0 else max(last, bound)
        if (last - start) * direction > 0:
            out.append((direction, last))
    return out
