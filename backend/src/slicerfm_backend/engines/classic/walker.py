"""A refining click as a local random-walker edit that honours every click (issue 18).

A segment's later click (after its first) no longer re-runs region growing: it edits the
segment inside a ball around itself, by a random walker (:func:`skimage.segmentation.random_walker`)
whose seeds are hard constraints:

- outside the ball the segment stays as it is (its voxels are object seeds, the rest
  background seeds), so a click can only move the boundary near itself;
- every earlier click in the ball keeps its side (positive: object, negative: background);
- a positive click only adds (the segment inside the ball is an object seed) and a negative
  click only removes (the background inside the ball is a background seed);
- voxels in the ball unlike the clicked tissue (outside a widened intensity class of a
  positive click) are background seeds.

The ball's radius follows the click's distance to the segment boundary (``REACH`` times it,
between ``MIN_MM`` and ``MAX_MM``): a click far from the boundary marks a large error, one near
it a small one. The walk runs on the engine's fine grid (~1 mm, the image's own voxels where
coarser) for small balls and on its coarse grid (~2 mm) for large ones, so its size stays
bounded (about ``2 * MAX_MM / COARSE_MM`` voxels across). Intensities are divided by the
clicked tissue's robust spread, so edge weights mean the same on CT and MR (MR has no
absolute scale). Arrays are numpy ``(k, j, i)``; spacings are mm along the same axes.
"""

from __future__ import annotations

import time
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage
from skimage.segmentation import random_walker

from ..base import EngineResult, Prompt
from .grid import COARSE_MM, FINE_MM, WorkingGrid
from .intensity import ball_values, click_class, dominant_class

REACH = 3.0  # ball radius: this many times the click's distance to the segment boundary ...
MIN_MM = 8.0  # ... at least this (mm) ...
MAX_MM = 40.0  # ... at most this (mm)
FAR_MM = 30.0  # a positive click farther than this from the segment starts a new part (region growing)
FINE_UP_TO_MM = 20.0  # balls up to this radius are walked on the fine grid, larger ones on the coarse
BETA = 0.5  # edge weight exp(-BETA * (step in clicked-tissue spreads)^2)
CLASS_WIDEN = 2.0  # voxels beyond this many class half-widths from the clicked value are background
PROBE_MM = 48.0  # half-size of the window in which the click's distance to the boundary is measured
SEED_MM = 2.0  # radius of the ball of seeds around the new click (at most half its distance)

try:  # pyamg's multigrid solver is much faster on 3D Laplacians; conjugate gradient otherwise
    import pyamg  # noqa: F401

    MODE = "cg_mg"
except ImportError:  # pragma: no cover - pyamg is a dependency of the backend
    MODE = "cg_j"


def refine(grids: Dict[float, WorkingGrid], prompts: Sequence[Prompt], previous, floor: Optional[float],
           timings: Dict[str, float]) -> Optional[EngineResult]:
    """Edit ``previous`` (the segment's mask, image voxels) for the last prompt (a point).

    Returns None when the click is not a local edit (a positive click farther than
    ``FAR_MM`` from the segment, or no segment near it): region growing handles it then.
    ``floor``: lower bound of an intensity spread (HU on CT; a fraction of the MR range).
    """
    t0 = time.perf_counter()
    last = prompts[-1]
    positive = bool(last.positive)
    gap = _gap(grids[COARSE_MM], grids[FINE_MM], last, previous)
    _tick(timings, "gap", t0)
    if gap is None:
        return None if positive else _unchanged(grids[FINE_MM], last, previous, timings)
    if gap == 0.0:  # a positive click inside the segment, a negative one outside: nothing to do
        return _unchanged(grids[FINE_MM], last, previous, timings)
    if positive and gap > FAR_MM:
        return None
    radius = float(np.clip(REACH * gap, MIN_MM, MAX_MM))
    grid = grids[FINE_MM] if radius <= FINE_UP_TO_MM else grids[COARSE_MM]
    spacing = np.array(grid.spacing)
    f = np.array(grid.factors)
    top = np.array(grid.image.shape) - 1
    p = np.clip(np.round(np.asarray(last.point_kji, float)).astype(int), 0, top) // f
    half = np.ceil(radius / spacing).astype(int) + 1
    lo, hi = np.maximum(p - half, 0), np.minimum(p + half + 1, np.array(grid.shape))
    t = time.perf_counter()
    raw = grid.crop(lo, hi)
    img = ndimage.gaussian_filter(raw, sigma=np.minimum(1.0 / spacing, 0.5), mode="nearest")
    bbox = grid.to_image_bbox(lo, hi)
    prev_img = previous.region(bbox)
    before = grid.downsample_mask(prev_img, lo, hi)
    _tick(timings, "grid", t)
    t = time.perf_counter()
    v = tuple(int(c) for c in p - lo)
    after = _walk(img, before, v, positive, _clicks(prompts[:-1], grid, lo, hi), spacing, radius,
                  min(SEED_MM, gap / 2.0), floor)
    _tick(timings, "walk", t)
    t = time.perf_counter()
    if positive:
        values = prev_img | grid.upsample(after & ~before, lo, hi)
    else:
        values = prev_img & ~grid.upsample(before & ~after, lo, hi)
    _tick(timings, "compose", t)
    return EngineResult(bbox, values, timings, counts={"roi_voxels": float(np.prod(hi - lo)),
                                                       "walk_radius_mm": radius})


def _walk(img: np.ndarray, before: np.ndarray, v: Tuple[int, int, int], positive: bool,
          clicks, spacing: np.ndarray, radius: float, seed_mm: float, floor: Optional[float]) -> np.ndarray:
    """The segment over the ROI after the click at ``v``: a random walk inside the ball of
    ``radius`` mm around ``v``, everything else seeded by ``before`` and the clicks."""
    ball = _ball(img.shape, v, spacing, radius)
    labels = np.where(before, 1, 2).astype(np.int32)
    free = ball & (~before if positive else before)  # a positive click adds, a negative removes
    labels[free] = 0
    cls = click_class(img, v, spacing, floor, own=True)
    mean, half_width = cls[0], max(cls[0] - cls[1], cls[2] - cls[0])
    if positive:
        unlike = np.abs(img - mean) > CLASS_WIDEN * half_width
        labels[free & unlike] = 2
    for q, sign in clicks:
        labels[q] = 1 if sign else 2
    seeds = _ball(img.shape, v, spacing, max(seed_mm, float(spacing.min()) * 0.5))
    labels[seeds & ball] = 1 if positive else 2
    if not (labels == 0).any():
        return labels == 1
    spread = _spread(img, v, spacing, floor, positive, before)
    data = (img / spread).astype(np.float64)
    beta = BETA * 10.0 * float(data.std()) * float(np.min(spacing)) ** 2 + 1e-9
    out = random_walker(data, labels, beta=beta, mode=MODE, spacing=spacing / spacing.min(), tol=1e-2)
    return out == 1


def _spread(img, v, spacing, floor, positive: bool, before: np.ndarray) -> float:
    """Robust spread of the tissue the click decides about: the clicked tissue for a positive
    click, the segment near the click for a negative one (MAD-based, at least ``floor``)."""
    values = ball_values(img, v, 6.0, spacing)
    _, spread = dominant_class(values, floor)
    return max(float(spread), 1e-6)


def _clicks(prompts: Sequence[Prompt], grid: WorkingGrid, lo, hi):
    """Earlier point prompts inside ``[lo, hi)``: ``[(ROI voxel, positive)]``, oldest first."""
    f = np.array(grid.factors)
    top = np.array(grid.image.shape) - 1
    out = []
    for q in prompts:
        if q.kind != "point" or q.point_kji is None:
            continue
        w = np.clip(np.round(np.asarray(q.point_kji, float)).astype(int), 0, top) // f
        if np.all(w >= lo) and np.all(w < hi):
            out.append((tuple(int(c) for c in w - lo), bool(q.positive)))
    return out


def _gap(coarse: WorkingGrid, fine: WorkingGrid, last: Prompt, previous) -> Optional[float]:
    """Distance (mm) from the click to the segment boundary on the side it corrects: to the
    segment for a positive click outside it, to the background for a negative click inside.
    0 when the click is on the side it asks for; None when no segment lies within
    ``PROBE_MM``. Measured on the fine grid near the click, on the coarse grid when far."""
    for grid in (fine, coarse):
        spacing = np.array(grid.spacing)
        f = np.array(grid.factors)
        top = np.array(grid.image.shape) - 1
        p = np.clip(np.round(np.asarray(last.point_kji, float)).astype(int), 0, top) // f
        probe = 12.0 if grid is fine else PROBE_MM
        half = np.ceil(probe / spacing).astype(int)
        lo, hi = np.maximum(p - half, 0), np.minimum(p + half + 1, np.array(grid.shape))
        seg = grid.downsample_mask(previous.region(grid.to_image_bbox(lo, hi)), lo, hi)
        v = tuple(int(c) for c in p - lo)
        if bool(seg[v]) == bool(last.positive):
            return 0.0
        other = ~seg if last.positive else seg
        if not (~other).any():
            continue  # no boundary within the window: try the wider one
        d = float(ndimage.distance_transform_edt(other, sampling=spacing)[v])
        if d < probe * 0.9 or grid is coarse:
            return d
    return None


def _ball(shape, v, spacing: np.ndarray, radius: float) -> np.ndarray:
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, v, spacing))
    return d2 <= radius ** 2


def _unchanged(grid: WorkingGrid, last: Prompt, previous, timings) -> EngineResult:
    """The clicked voxel as it is: a click on the side it asks for changes nothing."""
    pt = tuple(int(np.clip(round(float(c)), 0, s - 1)) for c, s in zip(last.point_kji, grid.image.shape))
    one = (pt, tuple(c + 1 for c in pt))
    return EngineResult(one, previous.region(one), timings)


def _tick(timings: Dict[str, float], stage: str, start: float) -> None:
    timings[stage] = timings.get(stage, 0.0) + (time.perf_counter() - start) * 1e3
