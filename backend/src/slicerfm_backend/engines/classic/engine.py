"""The built-in ``classic`` engine: click/box segmentation with classical image processing.

No weights, CPU only, deterministic. Each interaction edits the segment locally, so a click
can only change what it points at:

- a positive click (or a box) *adds* the object it marks: voxels of its intensity class
  reached from it through a seeded opening, split by a compact marker watershed from any
  negative click of the segment it would swallow (see :func:`.region.grow`); a later
  positive click's addition is checked against the segment so far (:mod:`.edit`; not for
  large CT organs);
- a negative click *removes* its watershed basin from the connected part of the segment it
  lies in, competing with the positive clicks there (:func:`.region.cut`); outside
  the segment it changes nothing;
- a later click's proposed addition or removal is then confirmed by a random walker whose
  seeds are every click and the segment so far (:mod:`.walker`): a part joined to the
  proposal through a narrow neck goes to the side that holds it (engine option ``refine``:
  ``walk-check``, the default, or ``grow`` for the engine without this check; not for CT
  segments of the large style, nor additions next to a large structure on an image no finer
  than the coarse grid).

A segment's first prompt sets its working grid and :class:`.region.Style` (see
``ClassicEngine._level``): a click shallow in its intensity class marks a small or thin
structure, which is segmented on a ~1 mm grid (``FINE_MM``, the image's own voxels where
they are coarser), with its click's own intensity mode and reaches that grow only as far as
the structure is closed by edges; a large one on a ~2 mm grid (``COARSE_MM``) with reaches set
by its depth. Grids hold block means of the image, filled lazily and cached per image (see
:mod:`.grid`). All work happens inside a region of interest (ROI) around the click, which
grows on every side the result touches (large organs) up to ``MAX_EXTENT_MM`` per axis and
``MAX_ROI_VOXELS`` in all. Earlier segment edits outside the answer's bounding box stay
untouched. Arrays are numpy ``(k, j, i)``; spacings are mm along the same axes.
"""

from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

from ...engine_core.options import choice
from ..base import Engine, EngineCapabilities, EngineResult, Prompt, SegmentationRequest
from .edit import checked_addition
from .grid import COARSE_MM, FINE_MM, WorkingGrid
from .intensity import MIN_SPREAD_CT, MR_FLOOR, box_class, click_class, fits, looks_like_ct, mr_scale
from .region import LARGE, SMALL, Style, cut, grow
from .walker import trim_change

INIT_MM = 45.0  # initial ROI half-size around a click (mm) ...
INIT_SMALL_MM = 30.0  # ... for a small or thin structure (fine grid: about a third of the voxels)
GROW_MM = 45.0  # how far the ROI grows on a side the result touches (mm)
MAX_EXTENT_MM = 330.0  # the ROI never grows beyond this per axis: a click cannot flood the body
MAX_GROWS = 4
MAX_ROI_VOXELS = 900_000  # nor beyond this many working voxels: bounds one click to ~1 s on 2 cores
SMOOTH_MM = 2.0  # Gaussian sigma of the pre-smoothing (mm) ...
SMOOTH_FINE = 0.5  # ... for small and thin structures at most this many working voxels
MIXED_CT_MM = 3.0  # a CT click at most this deep in its own class sits amid mixed content
SMALL_BELOW_MM = 6.5  # a segment whose first click lies less deep than this in its class is small or thin
BOX_DEPTH = 0.25  # a box counts as a click this many times its shortest side deep
PROBE_MM = 30.0  # half-size of the window in which that depth is measured (mm)
MIN_REGION_VOXELS = 8  # a small structure's click whose own mode grows fewer voxels uses the main mode
MAX_LEVELS = 256  # segments whose grid choice is remembered per image
REFINE_MODES = ("walk-check", "grow")  # engine option ``refine``: how a later click's proposal is checked

Vec = np.ndarray  # int (3,) working-grid voxel index


class _Prompts:
    """The segment's prompts on the working grid, oldest first."""

    def __init__(self, prompts: Sequence[Prompt], grid: WorkingGrid):
        self.points: List[Tuple[Vec, bool]] = []
        self.boxes: List[Tuple[Vec, Vec]] = []  # inclusive corners
        top = np.array(grid.image.shape) - 1
        f = np.array(grid.factors)
        for p in prompts:
            if p.kind == "point" and p.point_kji is not None:
                v = np.clip(np.round(np.asarray(p.point_kji, float)).astype(int), 0, top)
                self.points.append((v // f, bool(p.positive)))
            elif p.kind == "box" and p.box_kji is not None:
                a, b = (np.clip(np.round(np.asarray(c, float)).astype(int), 0, top) for c in p.box_kji)
                self.boxes.append((np.minimum(a, b) // f, np.maximum(a, b) // f))

    def inside(self, lo: Vec, hi: Vec, positive: bool) -> List[Tuple[int, int, int]]:
        """ROI-relative voxels of the clicks of one sign that lie in ``[lo, hi)``."""
        return [tuple(int(v) for v in p - lo) for p, s in self.points
                if s == positive and np.all(p >= lo) and np.all(p < hi)]

    def around(self, lo: Vec, hi: Vec) -> List[Tuple[Tuple[int, int, int], bool]]:
        """ROI-relative ``(voxel, positive)`` of every click in ``[lo, hi)``, oldest first."""
        return [(tuple(int(v) for v in p - lo), s) for p, s in self.points if np.all(p >= lo) and np.all(p < hi)]

    def box_around(self, p: Vec) -> Optional[Tuple[Vec, Vec]]:
        """Bounding box ``[lo, hi)`` of the boxes holding ``p`` (None when none does)."""
        holding = [(a, b + 1) for a, b in self.boxes if np.all(p >= a) and np.all(p <= b)]
        if not holding:
            return None
        return np.min([a for a, _ in holding], axis=0), np.max([b for _, b in holding], axis=0)


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
    option_types = {"refine": choice(*REFINE_MODES)}

    @property
    def _walk_check(self) -> bool:
        """Whether a later click's proposal is confirmed by a random walk (option ``refine``)."""
        return self.options.get("refine", REFINE_MODES[0]) == "walk-check"

    def segment(self, request: SegmentationRequest) -> EngineResult:
        t0 = time.perf_counter()
        timings: Dict[str, float] = {}
        image, cache = request.image, request.cache
        grids = cache.get("classic_grids")
        if grids is None or grids[COARSE_MM].image is not image.array:
            grids = cache["classic_grids"] = {t: WorkingGrid(image.array, image.spacing_kji, t)
                                              for t in (COARSE_MM, FINE_MM)}
            cache["classic_levels"] = {}
            cache["classic_ct"] = None
        if cache.get("classic_ct") is None:
            if image.modality in ("CT", "MR"):
                cache["classic_ct"] = image.modality == "CT"
            else:
                cache["classic_ct"] = looks_like_ct(_sample(image.array))
            sample = _sample(image.array).astype(np.float32)
            cache["classic_mr_scale"] = 0.0 if cache["classic_ct"] else mr_scale(sample)
        t = time.perf_counter()
        target, style, keep_additions = self._level(grids, request.prompts[0], cache)
        # CT segments of the large style keep the engine of before (a stomach's gas, fluid and
        # wall are one object; checked removals took the five organs' mean Dice after 5 clicks
        # from 0.879 to 0.878).
        is_ct = cache["classic_ct"]
        walk_check = self._walk_check and not (is_ct and style is LARGE)
        grid = grids[target]
        _tick(timings, "level", t)
        timings["working_mm"] = float(min(grid.spacing))
        prompts = _Prompts(request.prompts, grid)
        last = request.prompts[-1]
        if last.kind == "point" and not last.positive:
            result = self._negative(grid, style, prompts, request, walk_check, timings)
        else:
            result = self._positive(grid, style, prompts, request, is_ct, walk_check, keep_additions, timings)
        _tick(timings, "total", t0)
        return result

    def _level(self, grids, first: Prompt, cache) -> Tuple[float, Style, bool]:
        """The working grid (``FINE_MM`` or ``COARSE_MM``), :class:`.region.Style` and
        ``keep_additions`` of a segment, from the depth of its first prompt in its intensity
        class on the fine grid (a box: a quarter of its shortest side): small and thin
        structures get the fine grid and the ``SMALL`` style, others the coarse grid and the
        ``LARGE`` style (the engine as it was before styles). ``keep_additions``: a large
        structure on an image no finer than the coarse grid, whose additions next to the
        segment are not checked by a random walk. Remembered per first prompt."""
        key = (first.kind, first.point_kji, first.box_kji)
        levels = cache["classic_levels"]
        if key not in levels:
            if len(levels) >= MAX_LEVELS:
                levels.pop(next(iter(levels)))
            fine = grids[FINE_MM]
            depth = _first_depth(fine, first, cache["classic_ct"])
            # A click at most one voxel deep in its own class sits amid mixed content (gas,
            # fluid and wall of a stomach) or noise: no small structure of one tissue.
            # On CT "one voxel" means one voxel of a 3 mm scan (MIXED_CT_MM), whatever the grid:
            # a stomach's click is as deep in mixed content on a 0.7 mm CT as on a 3 mm one.
            one_voxel = depth <= max(float(np.max(fine.spacing)), MIXED_CT_MM if cache["classic_ct"] else 0.0) + 1e-3
            # The small style segments on the fine grid; on MR whose voxels are no finer than the
            # coarse grid (the 3 mm abdominal MR) its own-mode classes lost to the large style
            # (Dice after 5 clicks, large vs small style: spinal cord 0.88 vs 0.70, aorta 0.71 vs 0.63).
            finer = min(fine.spacing) < min(grids[COARSE_MM].spacing) - 1e-6
            small = depth < SMALL_BELOW_MM and not one_voxel and (finer or cache["classic_ct"])
            style = SMALL if small else LARGE
            # On images no finer than the coarse grid, a large structure (first click deep in its
            # class) keeps its additions next to the segment unchecked: see _positive.
            unchecked = style is LARGE and depth >= SMALL_BELOW_MM and not finer
            levels[key] = (COARSE_MM if style is LARGE else FINE_MM, style, unchecked)
        return levels[key]

    def _positive(self, grid, style: Style, prompts: _Prompts, request, is_ct: bool, walk_check: bool,
                  keep_additions: bool, timings) -> EngineResult:
        """Add the object the last prompt (positive click or box) marks. ``walk_check``: a later
        click's addition is confirmed by a random walk (:func:`.walker.trim_change`), except an
        addition next to the segment when ``keep_additions``."""
        shape, spacing = np.array(grid.shape), np.array(grid.spacing)
        own = style.own_class
        floor = MIN_SPREAD_CT if is_ct else (MR_FLOOR * request.cache["classic_mr_scale"] if own else None)
        if request.prompts[-1].kind == "box":
            a, b = prompts.boxes[-1]
            bound: Optional[Tuple[Vec, Vec]] = (a, b + 1)
            lo, hi = np.maximum(a - 1, 0), np.minimum(b + 2, shape)
            limit = (lo, hi)
        else:
            p = prompts.points[-1][0]
            bound = prompts.box_around(p)
            half = np.ceil(_init_mm(style) / spacing).astype(int)
            lo, hi = np.maximum(p - half, 0), np.minimum(p + half + 1, shape)
            limit = ((np.maximum(bound[0] - 1, 0), np.minimum(bound[1] + 1, shape)) if bound
                     else (np.zeros(3, int), shape))
            lo, hi = np.maximum(lo, limit[0]), np.minimum(hi, limit[1])

        def compute(lo: Vec, hi: Vec):
            raw, img = self._crop(grid, style, lo, hi, timings)
            t = time.perf_counter()
            allowed = np.ones(img.shape, bool)
            if bound is not None:
                allowed[:] = False
                b_lo, b_hi = np.maximum(bound[0] - lo, 0), np.maximum(bound[1] - lo, 0)
                allowed[b_lo[0]:b_hi[0], b_lo[1]:b_hi[1], b_lo[2]:b_hi[2]] = True
            if request.prompts[-1].kind == "box":
                seed, cls = box_class(img, np.maximum(bound[0] - lo, 0), bound[1] - lo, floor)
            else:
                v = tuple(int(c) for c in prompts.points[-1][0] - lo)
                seed = np.zeros(img.shape, bool)
                seed[v] = True
                cls = click_class(img, v, spacing, floor, own=own)
            negatives = [(q, click_class(img, q, spacing, floor, own=own)) for q in prompts.inside(lo, hi, False)]
            gap = None
            before = None
            model_floor = floor if floor is not None else MR_FLOOR * request.cache["classic_mr_scale"]
            if request.prompts[-1].kind == "point":
                before = grid.downsample_mask(request.previous.region(grid.to_image_bbox(lo, hi)), lo, hi)
                if before.any() and not before[v]:
                    gap = float(ndimage.distance_transform_edt(~before, sampling=spacing)[v])
            region = grow(img, raw, seed, cls, spacing, allowed, negatives, gap, style)
            if own and request.prompts[-1].kind == "point" and np.count_nonzero(region) < MIN_REGION_VOXELS:
                # The clicked voxel's own mode is not a tissue here (a click amid mixed content):
                # fall back to the main mode around it.
                cls = click_class(img, v, spacing, floor)
                region = grow(img, raw, seed, cls, spacing, allowed, negatives, gap, style)
            if gap is not None and not (is_ct and style is LARGE):
                # Check the proposed addition against the segment so far (see .edit); large CT
                # organs keep the engine of before: their class is the main mode around the click.
                region = checked_addition(img, raw, before, region, v, cls, spacing, model_floor,
                                          [q for q, _ in negatives], gap) & allowed
            walk = None
            if len(request.prompts) > 1 and before is not None and walk_check and (gap is None or not keep_additions):
                walk = (img, before, region & ~before, v, True, prompts.around(lo, hi), spacing, model_floor)
            _tick(timings, "grow", t)
            return region, (region, walk)

        (lo, hi), (region, walk) = _grow_roi(compute, lo, hi, limit, spacing)
        t = time.perf_counter()
        if walk is not None:
            # Confirm a later click's addition (next to the segment or a new part of it) by a
            # random walk from every click (see .walker), once, on the final ROI.
            region = trim_change(*walk) | walk[1]
        _tick(timings, "walk", t)
        t = time.perf_counter()
        bbox = grid.to_image_bbox(lo, hi)
        previous = request.previous.region(bbox)
        before = grid.downsample_mask(previous, lo, hi)
        union = before | region
        added = region | (ndimage.binary_fill_holes(union) & ~union)
        values = previous | grid.upsample(added, lo, hi)
        _tick(timings, "compose", t)
        return EngineResult(bbox, values, timings, counts={"roi_voxels": float(np.prod(hi - lo))})

    def _negative(self, grid, style: Style, prompts: _Prompts, request, walk_check: bool, timings) -> EngineResult:
        """Remove the part of the segment the last (negative) click marks."""
        shape, spacing = np.array(grid.shape), np.array(grid.spacing)
        n = prompts.points[-1][0]
        half = np.ceil(_init_mm(style) / spacing).astype(int)
        lo, hi = np.maximum(n - half, 0), np.minimum(n + half + 1, shape)
        state: Dict[str, np.ndarray] = {}

        def compute(lo: Vec, hi: Vec):
            bbox = grid.to_image_bbox(lo, hi)
            previous = request.previous.region(bbox)
            segment = grid.downsample_mask(previous, lo, hi)
            v = tuple(int(c) for c in n - lo)
            labels, _ = ndimage.label(segment)
            part = labels == labels[v] if labels[v] else np.zeros(segment.shape, bool)
            state.update(previous=previous, segment=segment)
            return part, None

        (lo, hi), _ = _grow_roi(compute, lo, hi, (np.zeros(3, int), shape), spacing)
        previous, segment = state["previous"], state["segment"]
        bbox = grid.to_image_bbox(lo, hi)
        v = tuple(int(c) for c in n - lo)
        if not segment[v]:
            # Outside the segment: nothing to remove; answer the clicked voxel unchanged.
            pt = tuple(int(round(float(c))) for c in request.prompts[-1].point_kji)
            pt = tuple(int(np.clip(c, 0, s - 1)) for c, s in zip(pt, grid.image.shape))
            one = (pt, tuple(c + 1 for c in pt))
            return EngineResult(one, request.previous.region(one), timings)
        _, img = self._crop(grid, style, lo, hi, timings)
        t = time.perf_counter()
        removed = cut(img, segment, v, prompts.inside(lo, hi, True), prompts.inside(lo, hi, False), spacing, style)
        _tick(timings, "cut", t)
        t = time.perf_counter()
        if walk_check:
            # Confirm the removal by a random walk from every click (see .walker).
            floor = MIN_SPREAD_CT if request.cache["classic_ct"] else MR_FLOOR * request.cache["classic_mr_scale"]
            removed = trim_change(img, segment, removed & segment, v, False, prompts.around(lo, hi), spacing, floor)
        _tick(timings, "walk", t)
        t = time.perf_counter()
        values = previous & ~grid.upsample(removed, lo, hi)
        _tick(timings, "compose", t)
        return EngineResult(bbox, values, timings, counts={"roi_voxels": float(np.prod(hi - lo))})

    @staticmethod
    def _crop(grid: WorkingGrid, style: Style, lo: Vec, hi: Vec, timings) -> Tuple[np.ndarray, np.ndarray]:
        """The working-grid image over ``[lo, hi)``: ``(raw, smoothed)``."""
        t = time.perf_counter()
        crop = grid.crop(lo, hi)
        _tick(timings, "grid", t)
        t = time.perf_counter()
        img = ndimage.gaussian_filter(crop, sigma=_smoothing(grid, style), mode="nearest")
        _tick(timings, "smooth", t)
        return crop, img


def _init_mm(style: Style) -> float:
    """Initial ROI half-size (mm) of a click of ``style``; the ROI grows where the result
    touches its sides."""
    return INIT_SMALL_MM if style is SMALL else INIT_MM


def _smoothing(grid: WorkingGrid, style: Style = LARGE) -> np.ndarray:
    """Gaussian sigma (working voxels per axis) of the pre-smoothing on ``grid``: ``SMOOTH_MM``,
    at most ``SMOOTH_FINE`` voxels for small and thin structures (which it would blur away)."""
    sigma = SMOOTH_MM / np.array(grid.spacing)
    return np.minimum(sigma, SMOOTH_FINE) if style is SMALL else sigma


def _sample(array: np.ndarray) -> np.ndarray:
    """About 32^3 voxels of ``array`` on a regular lattice."""
    return array[tuple(slice(None, None, max(1, n // 32)) for n in array.shape)]


def _first_depth(grid: WorkingGrid, first: Prompt, is_ct: bool) -> float:
    """Depth (mm) of the first prompt in its own intensity class on ``grid`` (smoothed as for
    large structures); for a box, ``BOX_DEPTH`` times its shortest side."""
    spacing = np.array(grid.spacing)
    f = np.array(grid.factors)
    top = np.array(grid.image.shape) - 1
    if first.kind == "box":
        a, b = (np.clip(np.round(np.asarray(c, float)), 0, top) for c in first.box_kji)
        return float(np.min((np.abs(b - a) + 1) * spacing / f)) * BOX_DEPTH
    p = np.clip(np.round(np.asarray(first.point_kji, float)).astype(int), 0, top) // f
    half = np.ceil(PROBE_MM / spacing).astype(int)
    lo, hi = np.maximum(p - half, 0), np.minimum(p + half + 1, np.array(grid.shape))
    img = ndimage.gaussian_filter(grid.crop(lo, hi), sigma=_smoothing(grid), mode="nearest")
    v = tuple(int(c) for c in p - lo)
    cls = click_class(img, v, spacing, MIN_SPREAD_CT if is_ct else None, own=True)
    inside = fits(img, cls)
    inside[v] = True
    depth = ndimage.distance_transform_edt(np.pad(inside, 1, constant_values=True), sampling=spacing)
    return float(depth[1:-1, 1:-1, 1:-1][v])


def _grow_roi(compute: Callable, lo: Vec, hi: Vec, limit: Tuple[Vec, Vec], spacing: np.ndarray):
    """Run ``compute(lo, hi) -> (extent_mask, value)`` and enlarge ``[lo, hi)`` while the mask
    touches a side of the ROI that is not at ``limit``; returns ``((lo, hi), value)``."""
    step = np.ceil(GROW_MM / spacing).astype(int)
    max_extent = np.maximum(np.ceil(MAX_EXTENT_MM / spacing).astype(int), hi - lo)
    for attempt in range(MAX_GROWS + 1):
        mask, value = compute(lo, hi)
        new_lo, new_hi = lo.copy(), hi.copy()
        for axis in range(3):
            if lo[axis] > limit[0][axis] and np.take(mask, 0, axis=axis).any():
                new_lo[axis] = max(limit[0][axis], lo[axis] - step[axis])
            if hi[axis] < limit[1][axis] and np.take(mask, mask.shape[axis] - 1, axis=axis).any():
                new_hi[axis] = min(limit[1][axis], hi[axis] + step[axis])
        # The extent cap trims the growth, never the current ROI.
        over = np.maximum(0, (new_hi - new_lo) - max_extent)
        new_lo = np.minimum(lo, new_lo + (over + 1) // 2)
        new_hi = np.maximum(hi, new_hi - over // 2)
        if np.prod(new_hi - new_lo) > MAX_ROI_VOXELS:
            return (lo, hi), value
        if attempt == MAX_GROWS or (np.array_equal(new_lo, lo) and np.array_equal(new_hi, hi)):
            return (lo, hi), value
        lo, hi = new_lo, new_hi
    raise AssertionError("unreachable")


def _tick(timings: Dict[str, float], stage: str, start: float) -> None:
    timings[stage] = timings.get(stage, 0.0) + (time.perf_counter() - start) * 1e3
