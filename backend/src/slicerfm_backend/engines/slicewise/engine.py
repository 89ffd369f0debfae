"""The base of the slice engines (``medsam``, ``sam``): a 2-D network on one slice at a time.

One interaction (:meth:`SliceEngine.segment`) segments the slice of the prompt just given
and answers that slice only; :meth:`SliceEngine.propagate` then carries the result to the
neighbouring slices (see :mod:`.walk`), which the server runs as a background job with
progress and cancel (``slicerfm_backend.propagation``).

The prompt of a slice: its user box (as drawn) and its points; a slice without a user box
but with a mask already (from propagation or earlier clicks) gets the bounding box of that
mask and its positive points, padded by ``box_padding`` input pixels; an empty slice with
points only gets the points. A propagated slice gets the padded box of the previous slice's
mask. Everything is computed from the segment's prompts and its current mask, so undo,
redo, a server restart (after a re-seed) or another engine's edits need no engine state.

Image embeddings are cached per image, axis and slice (a byte-capped LRU, ``engine_core/lru.py``,
``embedding_cache_mb`` per image): a refinement on a slice seen before runs only the prompt
encoder and mask decoder. Propagation encodes ``encoder_batch`` slices ahead at once.

Subclasses set ``network`` in ``load()``: an object with ``input_size``, ``prepare(pixels
uint8 (H, W), spacing (row mm, col mm)) -> (tensor [3, S, S], Frame)``, ``encode([tensors])
-> [embeddings]``, ``decode_logits(...)`` and ``to_mask(logits, frame) -> bool (H, W)``
(see :mod:`.sam_network`), and ``multimask(has_box, points)``.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ...engine_core.options import choice, fraction, non_negative_float, positive_float, positive_int
from ...errors import EngineError
from ..base import Engine, EngineResult, ImageData, SegmentationRequest
from . import slices, walk
from .intensity import CT_WINDOW, Intensity
from .prompts import Anchor, PixelBox, interpret

log = logging.getLogger(__name__)

BOX_PADDING = 5.0  # input pixels (1024 scale), as MedSAM's 3-D recipe pads the previous box
MAX_SLICES = 128  # per direction


def ct_window(value: str) -> Tuple[float, float]:
    """``"40,400"`` -> (level 40.0, width 400.0) in HU."""
    level, _, width = str(value).partition(",")
    parsed = (float(level), float(width))
    if not parsed[1] > 0:
        raise ValueError(f"expected LEVEL,WIDTH with a width > 0, got {value!r}")
    return parsed


ct_window.__name__ = "LEVEL,WIDTH in HU"


@dataclass
class PropagationPlan:
    """What one propagation needs, taken when the interaction was committed: the image, the
    engine's per-image store, the axis, the start slice and its committed mask, the slices
    with prompts, the range limits, and a copy of the segment's mask (``previous`` inside
    ``previous_bbox``; None when the segment was empty)."""

    image: ImageData
    store: "SliceStore"
    axis: int
    start: int
    start_mask: np.ndarray
    anchors: frozenset
    limits: Optional[Tuple[int, int]]
    max_slices: int
    previous_bbox: Any
    previous: Optional[np.ndarray]
    clear_only: Optional[Dict[int, List[int]]] = None  # the start slice is empty: clear these

    def existing(self, index: int) -> np.ndarray:
        """The segment's mask on slice ``index`` when the plan was made (empty outside)."""
        shape = [n for a, n in enumerate(self.image.array.shape) if a != self.axis]
        out = np.zeros(shape, bool)
        box = self.previous_bbox
        if box is None or not box[0][self.axis] <= index < box[1][self.axis]:
            return out
        rows, cols = slices.plane_axes(self.axis)
        part = slices.slice_of(self.previous, self.axis, index - box[0][self.axis])
        out[box[0][rows]:box[1][rows], box[0][cols]:box[1][cols]] = part
        return out


@dataclass
class Propagation:
    """A propagation's answer (``result``: the touched slab) and what it did (``summary``)."""

    result: EngineResult
    summary: Dict[str, Any]


class SliceStore:
    """Per image: the intensity mapping and the embedding cache (keys ``(axis, index)``)."""

    def __init__(self, image: ImageData, window: Tuple[float, float], cache_bytes: int):
        from ...engine_core.lru import ByteLRU

        self.array = image.array
        self.intensity = Intensity.for_image(image.array, image.modality, window)
        self.embeddings = ByteLRU(cache_bytes)


class SliceEngine(Engine):
    """A 2-D promptable network applied slice by slice; see the module docstring."""

    propagates = True
    slice_prompts = True
    option_types = {
        "precision": choice("bf16", "fp16", "fp32"),
        "embedding_cache_mb": positive_float,
        "max_slices": positive_int,
        "encoder_batch": positive_int,
        "min_overlap": fraction,
        "max_growth": positive_float,
        "box_padding": non_negative_float,
        "ct_window": ct_window,
    }

    def __init__(self, device: str = "cpu", options: Optional[Dict[str, Any]] = None):
        super().__init__(device, options)
        self.network = None

    # -- weights and options ---------------------------------------------------------------

    def weights_name(self) -> str:
        """The weights catalogue entry this engine loads (the engine's name by default)."""
        return self.name

    def checkpoint(self) -> Path:
        """``options["checkpoint"]`` (``--checkpoint NAME=PATH``), else the weights store's
        file of :meth:`weights_name`; WeightsMissingError naming the fix otherwise."""
        from ...weights.resolve import checkpoint_path

        root = self.options.get("weights_dir")
        return checkpoint_path(self.weights_name(), Path(root) if root else None, self.options.get("checkpoint"))

    def default_precision(self) -> str:
        return str(self.options.get("precision", "bf16" if self.device.startswith("cuda") else "fp32"))

    def warn_if_cpu(self) -> None:
        if not self.device.startswith("cuda"):
            log.warning("%s runs on the CPU: every slice not seen before needs an image-encoder pass "
                        "of several seconds (a GPU takes tens of milliseconds)", self.name)

    def rules(self) -> walk.StopRules:
        return walk.StopRules(min_overlap=float(self.options.get("min_overlap", 0.5)),
                              max_growth=float(self.options.get("max_growth", 3.0)))

    def multimask(self, has_box: bool, points: Sequence) -> bool:
        """Whether the decoder makes three masks and keeps the best (subclasses decide)."""
        return False

    # -- one slice -------------------------------------------------------------------------

    def store_for(self, request: SegmentationRequest) -> SliceStore:
        store = request.cache.get("slicewise")
        if store is None or store.array is not request.image.array:
            window = self.options.get("ct_window", CT_WINDOW)
            megabytes = float(self.options.get("embedding_cache_mb", 256))
            store = request.cache["slicewise"] = SliceStore(request.image, window, int(megabytes * (1 << 20)))
        return store

    def embeddings(self, store: SliceStore, image: ImageData, axis: int, indices: Sequence[int],
                   timings: Dict[str, float]) -> List[tuple]:
        """``(embedding, frame)`` of each slice in ``indices``; the missing ones are encoded
        as one batch."""
        missing = [n for n in dict.fromkeys(indices) if (axis, n) not in store.embeddings]
        fresh: Dict[int, tuple] = {}
        if missing:
            t = time.perf_counter()
            spacing = slices.pixel_spacing(image.spacing_kji, axis)
            prepared = [self.network.prepare(store.intensity.to_uint8(slices.slice_of(image.array, axis, n)),
                                             spacing) for n in missing]
            timings["preprocess"] = timings.get("preprocess", 0.0) + 1000 * (time.perf_counter() - t)
            t = time.perf_counter()
            encoded = self.network.encode([tensor for tensor, _ in prepared])
            timings["encoder"] = timings.get("encoder", 0.0) + 1000 * (time.perf_counter() - t)
            for n, embedding, (_, frame) in zip(missing, encoded, prepared):
                fresh[n] = (embedding, frame)
                store.embeddings.put((axis, n), fresh[n])
        store.embeddings.misses += len(missing)
        store.embeddings.hits += len(indices) - len(missing)
        # Fresh entries are answered from here: a small cache may already have dropped them.
        return [fresh[n] if n in fresh else store.embeddings.get((axis, n)) for n in indices]

    def predict(self, entry: tuple, box: Optional[PixelBox], padding: float, points: Sequence,
                timings: Dict[str, float]) -> np.ndarray:
        """Boolean mask (H, W) of a slice from its ``(embedding, frame)`` and prompts."""
        embedding, frame = entry
        t = time.perf_counter()
        box_in = None if box is None else frame.box(box, padding)
        coords, labels = frame.points(points)
        logits = self.network.decode_logits(embedding, box_in, coords, labels,
                                            multimask=self.multimask(box is not None, points))
        mask = self.network.to_mask(logits, frame)
        timings["decoder"] = timings.get("decoder", 0.0) + 1000 * (time.perf_counter() - t)
        return mask

    def slice_prompt(self, anchor: Anchor, existing: np.ndarray) -> Tuple[Optional[PixelBox], float]:
        """``(box, padding)`` of a slice with prompts (see the module docstring)."""
        if anchor.box is not None:
            return anchor.box, 0.0
        if not existing.any():
            return None, 0.0
        grown = existing.copy()
        for row, col, label in anchor.points:
            r, c = int(np.floor(row + 0.5)), int(np.floor(col + 0.5))
            if label == 1 and 0 <= r < grown.shape[0] and 0 <= c < grown.shape[1]:
                grown[r, c] = True
        return slices.mask_box(grown), float(self.options.get("box_padding", BOX_PADDING))

    def segment(self, request: SegmentationRequest) -> EngineResult:
        if self.network is None:
            raise EngineError(f"{self.name} is not loaded")
        t0 = time.perf_counter()
        timings: Dict[str, float] = {}
        image = request.image
        plan = interpret(request.prompts, image.array.shape, _axis_option(request.options))
        axis, index = plan.axis, plan.current
        height, width = (image.array.shape[a] for a in slices.plane_axes(axis))
        bbox = slices.slab_bbox(axis, index, index, (0, height), (0, width))
        existing = request.previous.region(bbox).reshape(height, width)
        store = self.store_for(request)
        (entry,) = self.embeddings(store, image, axis, [index], timings)
        box, padding = self.slice_prompt(plan.anchors[index], existing)
        mask = self.predict(entry, box, padding, plan.anchors[index].points, timings)
        timings["total"] = 1000 * (time.perf_counter() - t0)
        return EngineResult(bbox=bbox, mask=slices.stack([mask], axis), timings_ms=timings)

    # -- propagation -----------------------------------------------------------------------

    def plan_propagation(self, request: SegmentationRequest) -> Optional[PropagationPlan]:
        """What :meth:`propagate` needs after the interaction in ``request`` was committed
        (``request.previous`` holds its result); None when there is nothing to propagate
        (the prompted slice is empty and no earlier propagation hung on it, or the request
        says ``propagate: false``)."""
        if request.options.get("propagate") is False:
            return None
        image = request.image
        plan = interpret(request.prompts, image.array.shape, _axis_option(request.options))
        box = request.previous.bbox()
        previous = None if box is None else request.previous.region(box)
        cap = int(self.options.get("max_slices", MAX_SLICES))
        wanted = request.options.get("max_slices")
        out = PropagationPlan(image=image, store=self.store_for(request), axis=plan.axis, start=plan.current,
                              start_mask=np.zeros(0, bool), anchors=frozenset(plan.anchors) - {plan.current},
                              limits=plan.anchors[plan.current].limits,
                              max_slices=min(cap, int(wanted)) if wanted is not None else cap,
                              previous_bbox=box, previous=previous)
        out.start_mask = out.existing(plan.current)
        if not out.start_mask.any():  # an emptied slice: only its old continuations go
            out.clear_only = {d: walk.old_continuation(plan.current + d, d, set(out.anchors), out.existing)
                              for d in (1, -1)}
            if not any(out.clear_only.values()):
                return None
        return out

    def propagate(self, plan: PropagationPlan, progress: Optional[Callable[[str, int, int], None]] = None,
                  step: Optional[Callable[[], ContextManager]] = None) -> Propagation:
        """Propagate from the plan's start slice both ways (see :mod:`.walk`).

        ``progress(stage, done, total)`` is called after each slice (it may raise to cancel);
        ``step()`` is held around each encoder batch and each decode (a device scheduler slot).
        """
        if self.network is None:
            raise EngineError(f"{self.name} is not loaded")
        t0 = time.perf_counter()
        timings: Dict[str, float] = {}
        if plan.clear_only is not None:
            walks = {d: walk.Walk(cleared=cleared, stopped=walk.VANISHED) for d, cleared in plan.clear_only.items()}
        else:
            walks = self._walks(plan, _Progress(progress), step or nullcontext, timings)
        result = _assemble(plan, walks)
        timings["total"] = 1000 * (time.perf_counter() - t0)
        result.timings_ms = timings
        summary = {
            "axis": plan.axis, "plane": slices.plane_name(plan.image.ijk_to_ras, plan.axis),
            "start": plan.start, "slices_computed": sum(w.computed for w in walks.values()),
            "slices_written": sum(len(w.masks) for w in walks.values()),
            "slices_cleared": sum(len(w.cleared) for w in walks.values()),
            "stopped": {("increasing" if d > 0 else "decreasing"): w.stopped for d, w in walks.items()},
            "max_slices": plan.max_slices, "device": self.device,
            "precision": getattr(self.network, "precision", "fp32"),
            "timings_ms": {k: round(v, 1) for k, v in timings.items()},
        }
        return Propagation(result, summary)

    def _walks(self, plan: PropagationPlan, tracker: "_Progress", step: Callable[[], ContextManager],
               timings: Dict[str, float]) -> Dict[int, walk.Walk]:
        """Both directions' walks; progress counts slices against the most that may come."""
        routes = walk.directions(plan.start, plan.image.array.shape[plan.axis], plan.max_slices, plan.limits)
        tracker.total = sum(abs(last - plan.start) for _, last in routes)
        walks = {}
        for direction, last in routes:
            predict = self._predictor(plan, direction, last, step, timings)
            done = walk.walk(plan.start, plan.start_mask, direction, last, set(plan.anchors), plan.existing,
                             predict, self.rules(), tracker.slice_done)
            walks[direction] = done
            tracker.shrink(abs(last - plan.start) - done.computed)  # the direction may end early
        return walks

    def _predictor(self, plan: PropagationPlan, direction: int, last: int, step: Callable[[], ContextManager],
                   timings: Dict[str, float]) -> Callable[[int, np.ndarray], np.ndarray]:
        """``predict(n, previous mask)`` for one direction: the padded box of the previous
        mask on slice ``n``; encodes ``encoder_batch`` slices ahead at once; holds ``step()``
        around the encoder batch and around the decode."""
        batch = int(self.options.get("encoder_batch", 4 if self.device.startswith("cuda") else 1))
        padding = float(self.options.get("box_padding", BOX_PADDING))

        def predict(n: int, previous: np.ndarray) -> np.ndarray:
            ahead = [m for m in (n + direction * k for k in range(batch)) if (last - m) * direction >= 0]
            with step():
                entry = self.embeddings(plan.store, plan.image, plan.axis, ahead, timings)[0]
            with step():
                return self.predict(entry, slices.mask_box(previous), padding, (), timings)

        return predict


class _Progress:
    """Slices done of at most ``total``; reports ``propagating`` through ``callback``."""

    def __init__(self, callback: Optional[Callable[[str, int, int], None]]):
        self.callback, self.done, self.total = callback, 0, 0

    def slice_done(self, _: int) -> None:
        self.done += 1
        self._report()

    def shrink(self, slices: int) -> None:
        if slices:
            self.total -= slices
            self._report()

    def _report(self) -> None:
        if self.callback is not None:
            self.callback("propagating", self.done, self.total)


def _axis_option(options: Dict[str, Any]) -> Optional[int]:
    axis = options.get("slice_axis")
    return None if axis is None else int(axis)


def _assemble(plan: PropagationPlan, walks: Dict[int, walk.Walk]) -> EngineResult:
    """The slab of every slice a walk wrote or cleared, inside the in-plane box of the new
    and old masks there; untouched slices in between keep their values."""
    new: Dict[int, np.ndarray] = {}
    for w in walks.values():
        new.update(w.masks)
        for n in w.cleared:
            new[n] = None
    if not new:
        return EngineResult(bbox=((0, 0, 0), (0, 0, 0)), mask=np.zeros((0, 0, 0), bool))
    first, last = min(new), max(new)
    planes = []
    for n in range(first, last + 1):
        old = plan.existing(n)
        value = new[n] if n in new else old
        planes.append((old, np.zeros_like(old) if value is None else value))
    union = np.zeros_like(planes[0][0])
    for old, value in planes:
        union |= old | value
    box = slices.mask_box(union)
    if box is None:  # everything touched was and stays empty
        return EngineResult(bbox=((0, 0, 0), (0, 0, 0)), mask=np.zeros((0, 0, 0), bool))
    rows, cols = (box[0], box[2] + 1), (box[1], box[3] + 1)
    mask = slices.stack([value[rows[0]:rows[1], cols[0]:cols[1]] for _, value in planes], plan.axis)
    return EngineResult(bbox=slices.slab_bbox(plan.axis, first, last, rows, cols), mask=mask)
