"""The ``sam-med3d`` engine: SAM-Med3D-turbo, interactive point (and box) prompts.

Pipeline (docs/MODELS.md §1; geometry in :mod:`.pipeline`, crop and point
rules in :mod:`.steps`, network in :mod:`.model`): a 128³ crop at
1.5 mm in RAS orientation centred on the first prompt, z-normalised over its voxels > 0;
the image encoder runs once per (image, crop) and its embedding is cached
(:class:`slicerfm_backend.engine_core.lru.ByteLRU`, ``embedding_cache_mb`` per image); every click re-sends
all clicks inside the crop with the previous low-resolution logits as mask prompt; the
logits are upsampled trilinearly to 128³, thresholded at 0.5 and pasted back onto the
image grid by nearest neighbour -- on the network's device, through per-axis index tables,
only at the image voxels the crop covers (:mod:`.logits`). Objects reaching a crop face get
further crops.

Boxes: SAM-Med3D has no box embedding. A box counts as a positive click at its centre
(which also centres the first crop), and the answer is kept inside the segment's boxes.

Options (``Engine.options``): ``checkpoint`` (file), ``weights_dir`` (store),
``precision`` ("bf16" default on CUDA, "fp32", "fp16"; always fp32 on the CPU),
``max_crops`` (8), ``embedding_cache_mb`` (256).

Per-segment state (crops, seeds, logits) lives in the per-image ``request.cache`` keyed by
the prompt sequence, so undo or a lost state is rebuilt by replaying the prompts (decoder
passes only, once the embeddings are cached).
"""

from __future__ import annotations

import time
from typing import Any, Dict, Optional

import numpy as np

from ...engine_core.options import choice, positive_float, positive_int
from ...errors import EngineError
from ..base import Engine, EngineCapabilities, EngineResult, SegmentationRequest

NAME = "sam-med3d"
STATES_BYTES = 64 << 20  # per image: low-resolution logits of recent steps


def _key(prompt) -> tuple:
    """A hashable form of one prompt (kind, sign, point, box corners)."""
    point = None if prompt.point_kji is None else tuple(float(v) for v in prompt.point_kji)
    box = None if prompt.box_kji is None else tuple(tuple(float(v) for v in c) for c in prompt.box_kji)
    return prompt.kind, bool(prompt.positive), point, box


def _crops_to_paste(image, state, before, pipeline):
    """``(crops, region)``: the decoded crops of ``state`` to paste and the image bbox the
    answer covers. When ``before`` (the state right before the last step) is given, the
    region is the footprint of the crops that step changed and the crops are those meeting
    it (where crops overlap, the one with the nearest centre decides, changed or not);
    otherwise every decoded crop and their whole footprint (region None)."""
    decoded = [c for c in state if c.logits is not None]
    if before is None:
        return decoded, None
    changed = [c for c in decoded if not any(c is old for old in before)]
    boxes = [pipeline.footprint(image, c.crop) for c in changed]
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return [], None
    region = (tuple(int(v) for v in np.min([b[0] for b in boxes], axis=0)),
              tuple(int(v) for v in np.max([b[1] for b in boxes], axis=0)))

    def meets(box) -> bool:
        return box is not None and all(a0 < r1 and r0 < a1 for a0, a1, r0, r1
                                       in zip(box[0], box[1], region[0], region[1]))

    return [c for c in decoded if meets(pipeline.footprint(image, c.crop))], region


class _ImageCache:
    """What the engine keeps per image: the SimpleITK copy, embeddings, segment states."""

    def __init__(self, array: np.ndarray, embedding_bytes: int):
        from ...engine_core.lru import ByteLRU

        self.array = array
        self.source = None
        self.embeddings = ByteLRU(embedding_bytes)
        self.states = ByteLRU(STATES_BYTES)


class SamMed3DEngine(Engine):
    """SAM-Med3D-turbo on 128³ crops at 1.5 mm; see the module docstring."""

    name = NAME
    capabilities = EngineCapabilities(
        prompt_kinds=("point", "box"),
        modalities=("CT", "MR"),
        needs_weights=True,
        devices=("cuda", "cpu"),
        description="SAM-Med3D-turbo: interactive 3D segmentation from clicks (box = click at its "
                    "centre, result kept inside the box); 128³ crops at 1.5 mm.",
    )
    option_types = {
        "precision": choice("bf16", "fp16", "fp32"),
        "max_crops": positive_int,
        "embedding_cache_mb": positive_float,
    }

    def __init__(self, device: str = "cpu", options: Optional[Dict[str, Any]] = None):
        super().__init__(device, options)
        self.network = None  # set by load(): encode(image) / decode(embedding, points, labels, logits)

    def load(self) -> None:
        from .model import load_network

        default = "bf16" if self.device.startswith("cuda") else "fp32"
        self.network = load_network(self.checkpoint(), self.device,
                                    str(self.options.get("precision", default)))

    def segment(self, request: SegmentationRequest) -> EngineResult:
        from . import pipeline
        from . import steps

        if self.network is None:
            raise EngineError("sam-med3d is not loaded")
        t0 = time.perf_counter()
        timings: Dict[str, float] = {"encoder": 0.0, "decoder": 0.0}
        store = self._image_cache(request)
        image, prompts = request.image, list(request.prompts)
        keys = [_key(p) for p in prompts]

        def embed(crop):
            def compute():
                t = time.perf_counter()
                if store.source is None:
                    store.source = pipeline.to_sitk(image)
                value = self.network.encode(pipeline.znormalise(pipeline.extract(store.source, crop)))
                timings["encoder"] += 1000 * (time.perf_counter() - t)
                return value
            return store.embeddings.get_or_compute(crop, compute)

        def decode(*args):
            t = time.perf_counter()
            out = self.network.decode(*args)
            timings["decoder"] += 1000 * (time.perf_counter() - t)
            return out

        start = next((n for n in range(len(keys), 0, -1) if tuple(keys[:n]) in store.states), 0)
        state = store.states.get(tuple(keys[:start])) if start else ()
        # Only the last step's crops need pasting when it is the one step computed now (the
        # previous mask holds the others); a replay or a cached answer repastes all.
        before = state if start == len(prompts) - 1 else None
        max_crops = int(self.options.get("max_crops", steps.MAX_CROPS))
        for n in range(start + 1, len(prompts) + 1):
            state = steps.step(state, image, prompts[:n], embed, decode, max_crops)
            store.states.put(tuple(keys[:n]), state)
        t = time.perf_counter()
        crops, region = _crops_to_paste(image, state, before, pipeline)
        result = self._paste(request, crops, region, pipeline)
        timings["paste"] = 1000 * (time.perf_counter() - t)
        result.timings_ms.update(timings)
        result.timings_ms["total"] = 1000 * (time.perf_counter() - t0)
        return result

    def _image_cache(self, request: SegmentationRequest) -> _ImageCache:
        store = request.cache.get("sam_med3d")
        if store is None or store.array is not request.image.array:
            megabytes = float(self.options.get("embedding_cache_mb", 256))
            store = request.cache["sam_med3d"] = _ImageCache(request.image.array, int(megabytes * (1 << 20)))
        return store

    @staticmethod
    def _paste(request: SegmentationRequest, crops, region, pipeline) -> EngineResult:
        """``crops`` (decoded crop states) pasted onto the image grid, answered over
        ``region`` (an image bbox; None = all their footprint); uncovered voxels keep the
        previous mask; with boxes among the prompts, nothing outside them."""
        from . import logits

        pasted = logits.paste(request.image, [c.crop for c in crops],
                              [c.logits for c in crops]) if crops else None
        if pasted is None:
            empty = ((0, 0, 0), (0, 0, 0))
            return EngineResult(bbox=empty, mask=np.zeros((0, 0, 0), bool))
        bbox, mask, covered = pasted
        if region is not None:  # inside the crops' footprint: cut the answer to the region
            lo = np.maximum(region[0], bbox[0])
            hi = np.minimum(region[1], bbox[1])
            inner = tuple(slice(int(a - o), int(b - o)) for a, b, o in zip(lo, hi, bbox[0]))
            bbox = (tuple(int(v) for v in lo), tuple(int(v) for v in hi))
            mask, covered = mask[inner], covered[inner]
        mask = np.where(covered, mask, request.previous.region(bbox))
        boxes = [p.box_kji for p in request.prompts if p.kind == "box" and p.box_kji is not None]
        if boxes:
            mask &= pipeline.box_region(request.image, boxes, bbox)
        return EngineResult(bbox=bbox, mask=mask)
