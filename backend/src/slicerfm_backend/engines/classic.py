"""The built-in ``classic`` engine: click/box segmentation with classical image processing.

No weights, CPU only. Every interaction recomputes the segment from all its prompts inside
a region of interest (ROI) on a working grid of about 2 mm voxels (see ``classic_grid``):

1. intensity model: each positive click (and the centre of a box) contributes an intensity
   class (robust mean and spread of the smoothed image around it); a voxel is a candidate
   when it fits one of the positive classes and is not closer to the intensity of a
   clearly different negative click;
2. thin bridges between the candidate region and neighbouring tissue of similar intensity
   are cut by a small morphological opening;
3. a marker watershed on the gradient magnitude lets positive and negative clicks compete
   for the candidate voxels, so a negative click removes the region it lies in, split at
   the strongest edge between it and the positive clicks;
4. only components connected to positive clicks are kept, holes are filled (3-D and per
   axial slice), and the ROI grows where the segment touches its border (large organs).

All arrays are numpy ``(k, j, i)``; spacings in mm along the same axes.
"""

from __future__ import annotations

import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage
from skimage.segmentation import watershed

from .base import (
    BBox,
    Engine,
    EngineCapabilities,
    EngineResult,
    Prompt,
    SegmentationRequest,
    bbox_slices,
)
from .classic_grid import WorkingGrid

SMOOTH_MM = 2.0  # Gaussian sigma of the pre-smoothing (mm)
SAMPLE_MM = 6.0  # radius of the ball whose intensities describe a click (mm)
TOLERANCE = 2.5  # candidate when |I - mean| <= TOLERANCE * spread of some positive class
MIN_SPREAD_CT = 7.0  # HU; floor of a class's spread on CT (non-contrast organs differ by ~10 HU)
MIN_SPREAD_MR = 0.05  # MR: floor of a class's spread as a fraction of its mean intensity
CORE_FRAC = 0.5  # seeded opening radius as a fraction of the seed's depth in the candidate
CORE_MAX_MM = 15.0  # cap of that radius (mm)
EXTENT_FACTOR = 6.0  # a seed's region stays within this many times its depth (mm) ...
EXTENT_MIN_MM = 30.0  # ... or this distance (mm), whichever is larger
INIT_MM = 45.0  # initial ROI half-size around positive clicks (mm)
GROW_MM = 45.0  # how far the ROI grows on a side the segment touches (mm)
MAX_EXTENT_MM = 330.0  # the ROI never exceeds this per axis: a click cannot flood the body
MAX_GROWS = 4


def looks_like_ct(values: np.ndarray) -> bool:
    """True when intensities look like Hounsfield units (air near -1000, tissue near 0)."""
    lo, hi = np.percentile(values, [1, 99])
    return lo < -500 and hi > -200 and hi < 4000


class _Seeds:
    """Prompts mapped to the working grid. Points are int (k, j, i) working voxels."""

    def __init__(self, prompts: Sequence[Prompt], grid: WorkingGrid):
        self.points: List[Tuple[Tuple[int, int, int], bool]] = []
        self.boxes: List[Tuple[np.ndarray, np.ndarray]] = []  # inclusive working lo, hi
        last = np.array(grid.shape) - 1
        for p in prompts:
            if p.kind == "point" and p.point_kji is not None:
                v = np.clip(np.round(p.point_kji).astype(int), 0, np.array(grid.image.shape) - 1)
                self.points.append((tuple(int(a) for a in v // grid.factors), bool(p.positive)))
            elif p.kind == "box" and p.box_kji is not None:
                a, b = (np.round(np.asarray(c, float)).astype(int) for c in p.box_kji)
                lo = np.clip(np.minimum(a, b), 0, np.array(grid.image.shape) - 1) // grid.factors
                hi = np.clip(np.maximum(a, b), 0, np.array(grid.image.shape) - 1) // grid.factors
                self.boxes.append((np.minimum(lo, last), np.minimum(hi, last)))

    @property
    def positives(self):
        return [p for p, pos in self.points if pos]

    @property
    def negatives(self):
        return [p for p, pos in self.points if not pos]


class ClassicEngine(Engine):
    """Intensity classes + opening + marker watershed + connectivity; see the module doc."""

    name = "classic"
    capabilities = EngineCapabilities(
        prompt_kinds=("point", "box"),
        modalities=("CT", "MR"),
        needs_weights=False,
        devices=("cpu",),
        description="Classical region growing with a marker watershed (CPU, no weights).",
    )

    def segment(self, request: SegmentationRequest) -> EngineResult:
        timings: Dict[str, float] = {}
        t0 = time.perf_counter()
        image = request.image
        grid = request.cache.get("classic_grid")
        if grid is None or grid.image is not image.array:
            grid = WorkingGrid(image.array, image.spacing_kji)
            request.cache["classic_grid"] = grid
            request.cache["classic_ct"] = None
        seeds = _Seeds(request.prompts, grid)
        prev = request.previous.bbox()
        shape_w = np.array(grid.shape)
        spacing_w = np.array(grid.spacing)

        # Initial ROI (working voxels, [lo, hi)): positive clicks, boxes, previous mask.
        parts = []
        half = np.ceil(INIT_MM / spacing_w).astype(int)
        for p in seeds.positives:
            parts.append((np.array(p) - half, np.array(p) + half + 1))
        for lo, hi in seeds.boxes:
            parts.append((lo - 1, hi + 2))
        if prev is not None:
            parts.append((np.array(prev[0]) // grid.factors, -(-np.array(prev[1]) // grid.factors)))
        if not seeds.positives and not seeds.boxes:
            # Only negative clicks: there is nothing to segment; clear what was there.
            bbox = prev if prev is not None else self._point_bbox(request.prompts, image.array.shape)
            return EngineResult(bbox, np.zeros([b - a for a, b in zip(*bbox)], bool), timings)
        lo = np.clip(np.min([a for a, _ in parts], axis=0), 0, shape_w)
        hi = np.clip(np.max([b for _, b in parts], axis=0), 0, shape_w)
        max_extent = np.maximum(np.ceil(MAX_EXTENT_MM / spacing_w).astype(int), hi - lo)
        # Boxes bound the object: the ROI does not grow beyond the union of the boxes.
        box_lo = box_hi = None
        if seeds.boxes and not seeds.positives:
            box_lo = np.min([a for a, _ in seeds.boxes], axis=0)
            box_hi = np.max([b for _, b in seeds.boxes], axis=0) + 1
        timings["prepare"] = (time.perf_counter() - t0) * 1e3

        for attempt in range(MAX_GROWS + 1):
            t = time.perf_counter()
            crop = grid.crop(lo, hi)
            timings["grid"] = timings.get("grid", 0.0) + (time.perf_counter() - t) * 1e3
            if request.cache.get("classic_ct") is None:
                request.cache["classic_ct"] = image.modality == "CT" or (
                    image.modality == "unknown" and looks_like_ct(crop[::2, ::2, ::2])
                )
            mask = self._segment_roi(crop, lo, seeds, spacing_w, request.cache["classic_ct"], timings)
            grow_lo = np.zeros(3, int)
            grow_hi = np.zeros(3, int)
            step = np.ceil(GROW_MM / spacing_w).astype(int)
            for axis in range(3):
                face_lo = np.take(mask, 0, axis=axis).any()
                face_hi = np.take(mask, mask.shape[axis] - 1, axis=axis).any()
                if face_lo and lo[axis] > 0 and (box_lo is None or lo[axis] > box_lo[axis]):
                    grow_lo[axis] = step[axis]
                if face_hi and hi[axis] < shape_w[axis] and (box_hi is None or hi[axis] < box_hi[axis]):
                    grow_hi[axis] = step[axis]
            new_lo = np.clip(lo - grow_lo, 0, shape_w)
            new_hi = np.clip(hi + grow_hi, 0, shape_w)
            # Respect the extent cap: shrink the growth, never the current ROI.
            over = np.maximum(0, (new_hi - new_lo) - max_extent)
            new_lo = np.minimum(lo, new_lo + (over + 1) // 2)
            new_hi = np.maximum(hi, new_hi - over // 2)
            if attempt == MAX_GROWS or (np.array_equal(new_lo, lo) and np.array_equal(new_hi, hi)):
                break
            lo, hi = new_lo, new_hi

        t = time.perf_counter()
        bbox = grid.to_image_bbox(lo, hi)
        full = grid.upsample(mask, lo, hi)
        timings["upsample"] = (time.perf_counter() - t) * 1e3
        timings["total"] = (time.perf_counter() - t0) * 1e3
        return EngineResult(bbox, full, timings)

    @staticmethod
    def _point_bbox(prompts: Sequence[Prompt], shape: Sequence[int]) -> BBox:
        p = prompts[-1].point_kji if prompts and prompts[-1].point_kji is not None else (0, 0, 0)
        v = [int(np.clip(round(c), 0, n - 1)) for c, n in zip(p, shape)]
        return tuple(v), tuple(c + 1 for c in v)

    def _segment_roi(
        self,
        raw: np.ndarray,
        lo: np.ndarray,
        seeds: _Seeds,
        spacing: np.ndarray,
        is_ct: bool,
        timings: Dict[str, float],
    ) -> np.ndarray:
        """Boolean mask of the object over one ROI crop ``raw`` (working grid, origin ``lo``)."""
        t = time.perf_counter()
        sigma = SMOOTH_MM / spacing
        img = ndimage.gaussian_filter(raw, sigma=sigma, mode="nearest")
        floor = MIN_SPREAD_CT if is_ct else None  # MR: relative to each class, below
        timings["smooth"] = timings.get("smooth", 0.0) + (time.perf_counter() - t) * 1e3

        t = time.perf_counter()
        shape = np.array(raw.shape)
        inside = lambda p: bool(np.all(p >= 0) and np.all(p < shape))  # noqa: E731
        pos = [tuple(np.array(p) - lo) for p in seeds.positives]
        pos = [p for p in pos if inside(np.array(p))]
        neg = [tuple(np.array(p) - lo) for p in seeds.negatives]
        neg = [p for p in neg if inside(np.array(p))]
        radius = np.maximum(1, np.round(SAMPLE_MM / spacing)).astype(int)

        classes = [self._click_class(img, p, radius, floor) for p in pos]
        allowed = np.ones(raw.shape, bool)  # False outside every box
        box_markers = np.zeros(raw.shape, bool)
        if seeds.boxes:
            allowed[:] = False
        for b_lo, b_hi in seeds.boxes:
            a = np.clip(b_lo - lo, 0, shape)
            b = np.clip(b_hi + 1 - lo, 0, shape)
            allowed[a[0]:b[0], a[1]:b[1], a[2]:b[2]] = True
            centre, cls = self._box_class(img, a, b, floor)
            classes.append(cls)
            box_markers |= centre
        if seeds.boxes and any(not allowed[p] for p in pos):
            allowed[:] = True  # a positive click outside the boxes: the boxes no longer bound

        fit = np.full(raw.shape, np.inf, np.float32)
        for mean, spread in classes:
            np.minimum(fit, np.abs(img - mean) / (TOLERANCE * spread), out=fit)
        candidate = (fit <= 1.0) & allowed
        for q in neg:
            mean_n, _ = self._click_class(img, q, radius, floor)
            dist_pos = min(abs(mean_n - m) / (TOLERANCE * s) for m, s in classes)
            if dist_pos > 1.0:  # clearly another intensity: split the intensity axis there
                near_neg = np.abs(img - mean_n) < np.min([np.abs(img - m) for m, _ in classes], axis=0)
                candidate &= ~near_neg
        timings["classes"] = timings.get("classes", 0.0) + (time.perf_counter() - t) * 1e3

        t = time.perf_counter()
        markers = np.zeros(raw.shape, np.int32)
        markers[box_markers & candidate] = 1
        for p, value in [(p, 1) for p in pos] + [(q, 2) for q in neg]:
            sl = _ball_slices(p, np.ones(3, int), shape)
            markers[sl] = np.where(candidate[sl], value, markers[sl])
        # The latest prompt wins where a positive and a negative click coincide.
        for p, positive in seeds.points:
            v = tuple(np.array(p) - lo)
            if inside(np.array(v)):
                markers[v] = 1 if positive else 2
        candidate |= markers > 0
        groups = []
        for p in pos:
            m = np.zeros(raw.shape, bool)
            m[p] = True
            groups.append(m)
        if box_markers.any():
            groups.append(box_markers & candidate)
        if __import__("os").environ.get("DBG"): print(" classes", classes)
        keep = _seeded_opening(candidate, groups, spacing) | (markers == 1)
        has_neg = np.any(keep & (markers == 2))
        timings["components"] = timings.get("components", 0.0) + (time.perf_counter() - t) * 1e3
        if has_neg:
            t = time.perf_counter()
            grad = _gradient_magnitude(img, spacing)
            ws = watershed(grad, markers * keep, mask=keep)
            keep = ws == 1
            timings["watershed"] = timings.get("watershed", 0.0) + (time.perf_counter() - t) * 1e3

        t = time.perf_counter()
        keep = _fill_holes(keep)
        keep &= allowed | (markers == 1)
        labels, _ = ndimage.label(keep)
        seeded = np.unique(labels[markers == 1])
        keep = np.isin(labels, seeded[seeded > 0])
        timings["cleanup"] = timings.get("cleanup", 0.0) + (time.perf_counter() - t) * 1e3
        return keep

    @staticmethod
    def _click_class(img: np.ndarray, p, radius: np.ndarray, floor: float) -> Tuple[float, float]:
        """Robust (mean, spread) of the smoothed image in an ellipsoid around voxel ``p``."""
        sl = _ball_slices(p, radius, np.array(img.shape))
        grids = np.ogrid[tuple(slice(s.start - c, s.stop - c) for s, c in zip(sl, p))]
        ball = sum((g / float(r)) ** 2 for g, r in zip(grids, radius)) <= 1.0
        values = img[sl][ball]
        return _dominant_class(values, floor)

    @staticmethod
    def _box_class(img: np.ndarray, a: np.ndarray, b: np.ndarray, floor: float):
        """Central marker and intensity class of a box ``[a, b)``: the dominant intensity of its middle third."""
        size = np.maximum(b - a, 1)
        c_lo = a + size // 3
        c_hi = np.maximum(c_lo + 1, b - size // 3)
        centre = img[c_lo[0]:c_hi[0], c_lo[1]:c_hi[1], c_lo[2]:c_hi[2]]
        mode, spread = _dominant_class(centre.ravel(), floor)
        markers = np.zeros(img.shape, bool)
        markers[c_lo[0]:c_hi[0], c_lo[1]:c_hi[1], c_lo[2]:c_hi[2]] = np.abs(centre - mode) <= spread
        return markers, (mode, spread)


def _dominant_class(values: np.ndarray, floor: Optional[float]) -> Tuple[float, float]:
    """Robust (mean, spread) of the main intensity mode of ``values``.

    Median and MAD, then once more over the values near that median, so that a sample
    ball straddling an edge or a gas pocket describes the tissue that fills most of it.
    ``floor`` bounds the spread from below; None means ``MIN_SPREAD_MR`` of the mean (MR).
    """
    med = float(np.median(values))
    if floor is None:
        floor = max(MIN_SPREAD_MR * abs(med), 1e-6)
    spread = max(1.4826 * float(np.median(np.abs(values - med))), floor)
    near = values[np.abs(values - med) <= 2.0 * spread]
    if near.size >= 5:
        med = float(np.median(near))
        spread = 1.4826 * float(np.median(np.abs(near - med)))
    return med, max(spread, floor)


def _seeded_opening(candidate: np.ndarray, seeds: Sequence[np.ndarray], spacing: np.ndarray) -> np.ndarray:
    """Union of the balls inside ``candidate`` that a seed reaches through balls as large.

    ``seeds`` are boolean masks (a click's voxel, a box's central marker). A seed at depth
    ``d`` (mm from the candidate's border) gets balls of radius ``CORE_FRAC * d`` (capped):
    a click deep in an organ then does not leak through bridges thinner than that into
    neighbouring tissue of the same intensity. Each seed's region is also kept within
    ``max(EXTENT_MIN_MM, EXTENT_FACTOR * d)`` mm of it, which bounds the leaks of clicks in
    thin parts, whose balls are small.
    """
    edt = ndimage.distance_transform_edt(candidate, sampling=spacing)
    step = float(np.min(spacing))
    out = np.zeros(candidate.shape, bool)
    shape = np.array(candidate.shape)
    for seed in seeds:
        if not seed.any():
            continue
        depth = float(edt[seed].max())
        r = np.floor(min(CORE_FRAC * depth, CORE_MAX_MM) / step) * step
        reach = max(EXTENT_MIN_MM, EXTENT_FACTOR * depth)
        pts = np.argwhere(seed)
        half = np.ceil(reach / spacing).astype(int)
        lo = np.maximum(pts.min(0) - half, 0)
        hi = np.minimum(pts.max(0) + half + 1, shape)
        sl = tuple(slice(a, b) for a, b in zip(lo, hi))
        seed_c, cand_c, edt_c = seed[sl] & (edt[sl] >= CORE_FRAC * depth), candidate[sl], edt[sl]
        core = cand_c if r < step else edt_c >= r
        labels, _ = ndimage.label(core | seed_c)
        hit = np.unique(labels[seed_c])
        core = np.isin(labels, hit[hit > 0])
        if r >= step:
            core = ndimage.distance_transform_edt(~core, sampling=spacing) <= r
        centre = pts.mean(0) - lo
        grids = np.ogrid[tuple(slice(0, int(n)) for n in hi - lo)]
        near = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre, spacing)) <= reach**2
        out[sl] |= core & cand_c & near
    return out


def _ellipsoid(radius: Sequence[int]) -> np.ndarray:
    """Boolean ellipsoid with semi-axes ``radius`` (voxels, may be 0 on an axis)."""
    r = np.maximum(np.asarray(radius, float), 0)
    grids = np.ogrid[tuple(slice(-int(x), int(x) + 1) for x in r)]
    return sum((g / max(x, 0.5)) ** 2 for g, x in zip(grids, r)) <= 1.0


def _ball_slices(p, radius: np.ndarray, shape: np.ndarray):
    return tuple(slice(max(0, int(c) - int(r)), min(int(n), int(c) + int(r) + 1)) for c, r, n in zip(p, radius, shape))


def _gradient_magnitude(img: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    grads = np.gradient(img, *spacing)
    return np.sqrt(sum(g * g for g in grads)).astype(np.float32)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill enclosed cavities in 3-D and then slice by slice along k (axial)."""
    mask = ndimage.binary_fill_holes(mask)
    return ndimage.binary_fill_holes(mask, structure=np.array([[[0, 1, 0], [1, 1, 1], [0, 1, 0]]], bool))
