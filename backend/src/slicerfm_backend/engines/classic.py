"""The built-in ``classic`` engine: click/box segmentation with classical image processing.

No weights, CPU only, deterministic. Every interaction recomputes the segment from all its
prompts inside a region of interest (ROI), on a working grid of about 2 mm voxels (block
means of the image, filled lazily and cached per image; see ``classic_grid``):

1. each positive click gets an intensity class (robust mean and spread of the smoothed
   image around it; a box gets the main mode of its middle third) and grows its own
   region: the voxels fitting that class, reached from the click by a *seeded opening*
   whose ball radius is half the click's depth in the region (so a click deep in an organ
   does not leak through thin bridges into neighbours of the same intensity), within a
   distance tied to that depth;
2. negative clicks of clearly different intensity split the intensity range; negative
   clicks in the grown region compete with the positive ones in a marker watershed on the
   gradient magnitude, so a negative click removes the region it lies in;
3. holes are filled (3-D and per axial slice), only components holding a positive click
   survive, and the ROI grows wherever the segment touches its border (large organs).

The result covers the whole ROI, which always includes the previous mask's bounding box,
so voxels a negative click removes are cleared. Arrays are numpy ``(k, j, i)``; spacings
are mm along the same axes.
"""

from __future__ import annotations

import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .base import BBox, Engine, EngineCapabilities, EngineResult, Prompt, SegmentationRequest
from .classic_grid import WorkingGrid
from .classic_region import RoiPrompts, segment_roi

INIT_MM = 45.0  # initial ROI half-size around positive clicks (mm)
GROW_MM = 45.0  # how far the ROI grows on a side the segment touches (mm)
MAX_EXTENT_MM = 330.0  # the ROI never grows beyond this per axis: a click cannot flood the body
MAX_GROWS = 4


def looks_like_ct(values: np.ndarray) -> bool:
    """True when intensities look like Hounsfield units (air near -1000, soft tissue near 0)."""
    lo, hi = np.percentile(values, [1, 99])
    return bool(lo < -500 and -200 < hi < 4000)


class _Prompts:
    """Prompts on the working grid: points as (k, j, i) working voxels, boxes as inclusive corners."""

    def __init__(self, prompts: Sequence[Prompt], grid: WorkingGrid):
        self.points: List[Tuple[np.ndarray, bool]] = []
        self.boxes: List[Tuple[np.ndarray, np.ndarray]] = []
        top = np.array(grid.image.shape) - 1
        f = np.array(grid.factors)
        for p in prompts:
            if p.kind == "point" and p.point_kji is not None:
                v = np.clip(np.round(np.asarray(p.point_kji, float)).astype(int), 0, top)
                self.points.append((v // f, bool(p.positive)))
            elif p.kind == "box" and p.box_kji is not None:
                a, b = (np.clip(np.round(np.asarray(c, float)).astype(int), 0, top) for c in p.box_kji)
                self.boxes.append((np.minimum(a, b) // f, np.maximum(a, b) // f))

    @property
    def positives(self) -> List[np.ndarray]:
        return [p for p, positive in self.points if positive]

    def relative(self, lo: np.ndarray, hi: np.ndarray) -> RoiPrompts:
        """Prompts relative to the ROI ``[lo, hi)``; points outside it are dropped."""
        out = RoiPrompts()
        for p, positive in self.points:
            if np.all(p >= lo) and np.all(p < hi):
                out.points.append((tuple(int(v) for v in p - lo), positive))
        for a, b in self.boxes:
            out.boxes.append((np.clip(a - lo, 0, hi - lo), np.clip(b + 1 - lo, 0, hi - lo)))
        return out


class ClassicEngine(Engine):
    """Intensity classes + seeded opening + marker watershed, inside a growing ROI."""

    name = "classic"
    capabilities = EngineCapabilities(
        prompt_kinds=("point", "box"),
        modalities=("CT", "MR"),
        needs_weights=False,
        devices=("cpu",),
        description="Classical region growing with leak control and a marker watershed (CPU, no weights).",
    )

    def segment(self, request: SegmentationRequest) -> EngineResult:
        timings: Dict[str, float] = {}
        t0 = time.perf_counter()
        image = request.image
        cache = request.cache
        grid = cache.get("classic_grid")
        if grid is None or grid.image is not image.array:
            grid = cache["classic_grid"] = WorkingGrid(image.array, image.spacing_kji)
            cache["classic_ct"] = None
        prompts = _Prompts(request.prompts, grid)
        prev = request.previous.bbox()
        if not prompts.positives and not prompts.boxes:
            # Only negative clicks: there is no object; clear what was there.
            bbox = prev if prev is not None else _last_point_bbox(request.prompts, image.array.shape)
            return EngineResult(bbox, np.zeros([b - a for a, b in zip(*bbox)], bool), timings)

        shape = np.array(grid.shape)
        spacing = np.array(grid.spacing)
        f = np.array(grid.factors)
        # Initial ROI in working voxels [lo, hi): positive clicks, boxes, previous mask.
        half = np.ceil(INIT_MM / spacing).astype(int)
        parts = [(p - half, p + half + 1) for p in prompts.positives]
        parts += [(a - 1, b + 2) for a, b in prompts.boxes]
        if prev is not None:
            parts.append((np.array(prev[0]) // f, -(-np.array(prev[1]) // f)))
        lo = np.clip(np.min([a for a, _ in parts], axis=0), 0, shape)
        hi = np.clip(np.max([b for _, b in parts], axis=0), 0, shape)
        max_extent = np.maximum(np.ceil(MAX_EXTENT_MM / spacing).astype(int), hi - lo)
        # Boxes bound the object: without clicks the ROI does not grow beyond them.
        limit_lo, limit_hi = np.zeros(3, int), shape
        if prompts.boxes and not prompts.positives:
            limit_lo = np.maximum(0, np.min([a for a, _ in prompts.boxes], axis=0) - 1)
            limit_hi = np.minimum(shape, np.max([b for _, b in prompts.boxes], axis=0) + 2)
        step = np.ceil(GROW_MM / spacing).astype(int)
        _tick(timings, "prepare", t0)

        for attempt in range(MAX_GROWS + 1):
            t = time.perf_counter()
            crop = grid.crop(lo, hi)
            _tick(timings, "grid", t)
            if cache.get("classic_ct") is None:
                cache["classic_ct"] = image.modality == "CT" or (
                    image.modality == "unknown" and looks_like_ct(crop[::2, ::2, ::2])
                )
            mask = segment_roi(crop, prompts.relative(lo, hi), spacing, cache["classic_ct"], timings)
            # Grow the ROI on every side the segment touches (unless at the image or box limit).
            new_lo, new_hi = lo.copy(), hi.copy()
            for axis in range(3):
                if lo[axis] > limit_lo[axis] and np.take(mask, 0, axis=axis).any():
                    new_lo[axis] = max(limit_lo[axis], lo[axis] - step[axis])
                if hi[axis] < limit_hi[axis] and np.take(mask, mask.shape[axis] - 1, axis=axis).any():
                    new_hi[axis] = min(limit_hi[axis], hi[axis] + step[axis])
            # The extent cap trims the growth, never the current ROI.
            over = np.maximum(0, (new_hi - new_lo) - max_extent)
            new_lo = np.minimum(lo, new_lo + (over + 1) // 2)
            new_hi = np.maximum(hi, new_hi - over // 2)
            if attempt == MAX_GROWS or (np.array_equal(new_lo, lo) and np.array_equal(new_hi, hi)):
                break
            lo, hi = new_lo, new_hi

        t = time.perf_counter()
        bbox = grid.to_image_bbox(lo, hi)
        full = grid.upsample(mask, lo, hi)
        _tick(timings, "upsample", t)
        timings["roi_voxels"] = float(np.prod(hi - lo))
        _tick(timings, "total", t0)
        return EngineResult(bbox, full, timings)


def _tick(timings: Dict[str, float], stage: str, start: float) -> None:
    timings[stage] = timings.get(stage, 0.0) + (time.perf_counter() - start) * 1e3


def _last_point_bbox(prompts: Sequence[Prompt], shape: Sequence[int]) -> BBox:
    """A one-voxel bbox at the last prompt's point (an empty answer needs some bbox)."""
    p: Optional[Sequence[float]] = prompts[-1].point_kji if prompts else None
    v = [int(np.clip(round(c), 0, n - 1)) for c, n in zip(p or (0, 0, 0), shape)]
    return tuple(v), tuple(c + 1 for c in v)
