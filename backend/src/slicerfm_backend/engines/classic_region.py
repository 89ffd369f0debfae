"""The classic engine's segmentation of one region of interest (ROI) on the working grid.

Input: the block-averaged image over the ROI (float32, ``(k, j, i)``, working voxels of
``spacing`` mm) and the prompts as working-grid voxel indices relative to the ROI origin.
Output: a boolean mask of the ROI's shape. See :mod:`.classic` for the overall method.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import time

import numpy as np
from scipy import ndimage
from skimage.segmentation import watershed

Voxel = Tuple[int, int, int]

SMOOTH_MM = 2.0  # Gaussian sigma of the pre-smoothing (mm)
SAMPLE_MM = 6.0  # radius of the ball whose intensities describe a click (mm)
MIN_TOL = 1.5  # a class spans at least mean -/+ MIN_TOL * spread ...
MAX_TOL = 4.0  # ... and at most MAX_TOL * spread; in between it ends at the local histogram's valleys
HIST_MM = 20.0  # radius of the ball whose histogram bounds a click's class (mm)
MIN_SPREAD_CT = 7.0  # HU; floor of a class's spread on CT (organs differ by ~10 HU without contrast)
MIN_SPREAD_MR = 0.05  # MR: floor of a class's spread as a fraction of its mean intensity
CORE_FRAC = 0.5  # seeded-opening ball radius as a fraction of the seed's depth
CORE_MAX_MM = 15.0  # cap of that radius (mm)
DEPTH_MAX_MM = 50.0  # depths are measured up to this (mm); bounds the work per seed
EXTENT_FACTOR = 6.0  # a seed's region stays within this many times its depth (mm) ...
EXTENT_MIN_MM = 30.0  # ... or this distance (mm), whichever is larger
GAP_FACTOR = 4.0  # a click outside the segment so far adds within this many times its gap ...
GAP_MIN_MM = 10.0  # ... or this distance (mm)
GAP_MAX_MM = 60.0  # gaps are measured up to this (mm)
FILL_MAX = 0.3  # a seed's region may fill at most this fraction of the ball it reaches


@dataclass
class RoiPrompts:
    """Prompts in ROI-relative working voxels. ``points`` keeps the order given (oldest first)."""

    points: List[Tuple[Voxel, bool]] = field(default_factory=list)
    boxes: List[Tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # [lo, hi) per box


def segment_roi(
    raw: np.ndarray,
    prompts: RoiPrompts,
    spacing: np.ndarray,
    is_ct: bool,
    timings: Dict[str, float],
) -> np.ndarray:
    """Boolean mask of the object over the ROI crop ``raw`` (see the module docstring).

    Each positive click (and each box, through its central marker) grows its own region:
    the voxels that fit the click's intensity class, reached from it by a seeded opening
    and kept within a distance tied to the click's depth. Negative clicks then compete with
    the positive ones in a marker watershed on the gradient magnitude; holes are filled and
    only components holding a positive marker survive.
    """
    t = time.perf_counter()
    img = ndimage.gaussian_filter(raw, sigma=SMOOTH_MM / spacing, mode="nearest")
    _tick(timings, "smooth", t)

    t = time.perf_counter()
    shape = np.array(raw.shape)
    floor = MIN_SPREAD_CT if is_ct else None
    radius = np.maximum(1, np.round(SAMPLE_MM / spacing)).astype(int)
    pos = [p for p, positive in prompts.points if positive]
    neg_classes = [_click_class(img, q, radius, floor, spacing) for q, positive in prompts.points if not positive]

    allowed = np.ones(raw.shape, bool)  # False outside every box, unless a click says otherwise
    if prompts.boxes:
        allowed[:] = False
        for a, b in prompts.boxes:
            allowed[a[0]:b[0], a[1]:b[1], a[2]:b[2]] = True
        if any(not allowed[p] for p in pos):
            allowed[:] = True

    markers = np.zeros(raw.shape, np.int32)
    ones = np.ones(3, int)
    seeds = []  # (seed mask, (mean, lo, hi)); boxes first, then clicks oldest first
    for a, b in prompts.boxes:
        marker, cls = _box_class(img, a, b, floor)
        markers[marker] = 1
        seeds.append((marker, cls))
    for p in pos:
        cls = _click_class(img, p, radius, floor, spacing)
        sl = _ball_slices(p, ones, shape)
        markers[sl] = np.where(_fits(img[sl], cls), 1, markers[sl])
        seed = np.zeros(raw.shape, bool)
        seed[p] = True
        seeds.append((seed, cls))
    for (q, positive), cls in zip([(q, s) for q, s in prompts.points if not s], neg_classes):
        sl = _ball_slices(q, ones, shape)
        markers[sl] = np.where(_fits(img[sl], cls), 2, markers[sl])
    # The latest prompt wins where a positive and a negative click coincide.
    for p, positive in prompts.points:
        markers[p] = 1 if positive else 2
    _tick(timings, "markers", t)

    t = time.perf_counter()
    keep = np.zeros(raw.shape, bool)
    for seed, cls in seeds:
        candidate = _fits(img, cls) & allowed
        for mean_n, _, _ in neg_classes:
            # A negative click of clearly another intensity splits the intensity axis.
            if not cls[1] <= mean_n <= cls[2]:
                candidate &= np.abs(img - mean_n) >= np.abs(img - cls[0])
        candidate |= seed
        gap = None
        if keep.any() and not (keep & seed).any():
            gap = _gap(keep, seed, spacing)
        keep |= _seeded_opening(candidate, seed, spacing, gap)
    keep = (keep | (markers == 1)) & (markers != 2)
    _tick(timings, "grow", t)

    labels, _ = ndimage.label(keep | (markers == 2))
    touched = np.unique(labels[markers == 2])
    if np.isin(np.unique(labels[markers == 1]), touched[touched > 0]).any():
        # Positive and negative clicks share a component: split it along the strongest edges.
        t = time.perf_counter()
        region = np.isin(labels, touched[touched > 0])
        grads = np.gradient(img, *spacing)
        grad = np.sqrt(sum(g * g for g in grads)).astype(np.float32)
        ws = watershed(grad, _competing_markers(region, prompts.points, spacing), mask=region)
        keep = np.where(region, ws == 1, keep)
        _tick(timings, "watershed", t)

    t = time.perf_counter()
    keep = _fill_holes(keep) & (allowed | (markers == 1))
    keep &= markers != 2
    labels, _ = ndimage.label(keep)
    hit = np.unique(labels[markers == 1])
    keep = np.isin(labels, hit[hit > 0])
    _tick(timings, "cleanup", t)
    return keep


def _competing_markers(region: np.ndarray, points: Sequence[Tuple[Voxel, bool]], spacing: np.ndarray) -> np.ndarray:
    """Watershed markers (1 positive, 2 negative): a ball in ``region`` around each click.

    Each ball's radius is half the distance to the nearest click of the other sign and at
    most the click's depth in ``region``, so neither side can be flooded away entirely by a
    single click of the other: a negative click never deletes the whole object.
    """
    markers = np.zeros(region.shape, np.int32)
    edt = ndimage.distance_transform_edt(region, sampling=spacing)
    coords = np.array([p for p, _ in points], float) * spacing
    signs = np.array([positive for _, positive in points])
    for (p, positive), c in zip(points, coords):
        if not region[p]:
            continue
        other = coords[signs != positive]
        radius = float(edt[p])
        if len(other):
            radius = min(radius, 0.5 * float(np.min(np.linalg.norm(other - c, axis=1))))
        half = np.ceil(radius / spacing).astype(int)
        sl = _ball_slices(p, half, region.shape)
        local = np.ogrid[tuple(slice(s.start - q, s.stop - q) for s, q in zip(sl, p))]
        d2 = sum((g * h) ** 2 for g, h in zip(local, spacing))
        markers[sl] = np.where((d2 <= radius**2) & region[sl], 1 if positive else 2, markers[sl])
    for p, positive in points:  # the latest prompt wins on its own voxel
        markers[p] = 1 if positive else 2
    return markers


def _tick(timings: Dict[str, float], stage: str, start: float) -> None:
    timings[stage] = timings.get(stage, 0.0) + (time.perf_counter() - start) * 1e3


def _fits(values: np.ndarray, cls: Tuple[float, float, float]) -> np.ndarray:
    return (values >= cls[1]) & (values <= cls[2])


def _ball_slices(p: Sequence[int], radius: Sequence[int], shape: Sequence[int]):
    return tuple(slice(max(0, int(c) - int(r)), min(int(n), int(c) + int(r) + 1)) for c, r, n in zip(p, radius, shape))


def _ball(img: np.ndarray, p: Voxel, radius: np.ndarray) -> np.ndarray:
    """Values of ``img`` in the ellipsoid of semi-axes ``radius`` (voxels) around ``p``."""
    sl = _ball_slices(p, radius, img.shape)
    grids = np.ogrid[tuple(slice(s.start - c, s.stop - c) for s, c in zip(sl, p))]
    return img[sl][sum((g / float(r)) ** 2 for g, r in zip(grids, radius)) <= 1.0]


def _click_class(img: np.ndarray, p: Voxel, radius: np.ndarray, floor: Optional[float], spacing: np.ndarray):
    """Intensity class ``(mean, lo, hi)`` of a click at ``p``: mode near it, bounded by the local histogram."""
    mean, spread = _dominant_class(_ball(img, p, radius), floor)
    wide = _ball(img, p, np.maximum(1, np.round(HIST_MM / spacing)).astype(int))
    return _interval(wide, mean, spread)


def _interval(values: np.ndarray, mean: float, spread: float) -> Tuple[float, float, float]:
    """``(mean, lo, hi)``: the histogram mode of ``values`` around ``mean``, out to its valleys.

    The class reaches at least ``MIN_TOL`` and at most ``MAX_TOL`` spreads from ``mean``;
    in between it stops where the smoothed histogram of the neighbourhood rises again
    (another tissue) or fades out, so a click next to a tissue of close intensity gets a
    class that stops short of it while one surrounded by fat or air gets a wide one.
    """
    width = spread / 2.0
    edges = mean + width * np.arange(-2 * MAX_TOL - 0.5, 2 * MAX_TOL + 1.0)
    hist = ndimage.gaussian_filter1d(np.histogram(values, edges)[0].astype(float), 1.0)
    centre = len(hist) // 2
    top = float(hist[centre - 3:centre + 4].max()) + 1e-9
    lo_bin, hi_bin = centre, centre
    inner = int(2 * MIN_TOL)
    while lo_bin > 0 and (centre - lo_bin < inner or (hist[lo_bin - 1] <= hist[lo_bin] + 0.05 * top and hist[lo_bin] > 0.05 * top)):
        lo_bin -= 1
    while hi_bin < len(hist) - 1 and (hi_bin - centre < inner or (hist[hi_bin + 1] <= hist[hi_bin] + 0.05 * top and hist[hi_bin] > 0.05 * top)):
        hi_bin += 1
    return mean, float(edges[lo_bin]), float(edges[hi_bin + 1])


def _box_class(img: np.ndarray, a: np.ndarray, b: np.ndarray, floor: Optional[float]):
    """Central marker (bool, ROI shape) and class of a box ``[a, b)``: the main mode of its middle third."""
    size = np.maximum(b - a, 1)
    c_lo = a + size // 3
    c_hi = np.maximum(c_lo + 1, b - size // 3)
    centre = img[c_lo[0]:c_hi[0], c_lo[1]:c_hi[1], c_lo[2]:c_hi[2]]
    mean, spread = _dominant_class(centre.ravel(), floor)
    cls = _interval(img[a[0]:b[0], a[1]:b[1], a[2]:b[2]].ravel(), mean, spread)
    marker = np.zeros(img.shape, bool)
    marker[c_lo[0]:c_hi[0], c_lo[1]:c_hi[1], c_lo[2]:c_hi[2]] = np.abs(centre - mean) <= MIN_TOL * spread
    if marker.any():
        # Keep the largest connected part of the central marker: one object per box.
        labels, n = ndimage.label(marker)
        marker = labels == (1 + int(np.argmax(np.bincount(labels.ravel())[1:])))
    return marker, cls


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


def _crop(points: np.ndarray, half: np.ndarray, shape: np.ndarray):
    lo = np.maximum(points.min(0) - half, 0)
    hi = np.minimum(points.max(0) + half + 1, shape)
    return lo, tuple(slice(a, b) for a, b in zip(lo, hi))


def _gap(region: np.ndarray, seed: np.ndarray, spacing: np.ndarray) -> float:
    """Distance (mm) from ``seed`` to ``region``, measured within ``GAP_MAX_MM``."""
    points = np.argwhere(seed)
    _, sl = _crop(points, np.ceil(GAP_MAX_MM / spacing).astype(int), np.array(seed.shape))
    if not region[sl].any():
        return GAP_MAX_MM
    d = ndimage.distance_transform_edt(~region[sl], sampling=spacing)
    return min(float(d[seed[sl]].min()), GAP_MAX_MM)


def _seeded_opening(
    candidate: np.ndarray, seed: np.ndarray, spacing: np.ndarray, gap: Optional[float] = None
) -> np.ndarray:
    """The part of ``candidate`` that ``seed`` reaches through balls of a radius set by its depth.

    A seed at depth ``d`` (mm to the candidate's border, at most ``DEPTH_MAX_MM``) gets
    balls of radius ``CORE_FRAC * d`` (at most ``CORE_MAX_MM``): a click deep in an organ
    does not leak through bridges thinner than that into neighbouring tissue of the same
    intensity. The region also stays within ``max(EXTENT_MIN_MM, EXTENT_FACTOR * d)`` mm
    of the seed, which bounds the leaks of clicks in thin parts, whose balls are small.
    Work is done on crops around the seed so a click in a small structure costs little.
    """
    shape = np.array(candidate.shape)
    points = np.argwhere(seed)
    # Depth of the seed, measured on a crop just large enough for DEPTH_MAX_MM.
    _, sl = _crop(points, np.ceil(DEPTH_MAX_MM / spacing).astype(int) + 1, shape)
    edt = ndimage.distance_transform_edt(np.pad(candidate[sl], 1, constant_values=True), sampling=spacing)
    depth = min(float(edt[1:-1, 1:-1, 1:-1][seed[sl]].max()), DEPTH_MAX_MM)
    step = float(np.min(spacing))
    r = np.floor(min(CORE_FRAC * depth, CORE_MAX_MM) / step) * step
    if gap is None:
        reach = max(EXTENT_MIN_MM, EXTENT_FACTOR * depth)
    else:
        # A click beside the segment fills a gap: it adds a region about the gap's size.
        reach = max(GAP_MIN_MM, GAP_FACTOR * min(depth, gap))

    lo, sl = _crop(points, np.ceil(reach / spacing).astype(int), shape)
    cand = candidate[sl]
    seed_c = seed[sl]
    if r >= step:
        edt = ndimage.distance_transform_edt(cand, sampling=spacing)
        core = edt >= r
        deep = seed_c & (edt >= r)
        seed_c = deep if deep.any() else seed_c
    else:
        core = cand
    labels, _ = ndimage.label(core | seed_c)
    hit = np.unique(labels[seed_c])
    core = np.isin(labels, hit[hit > 0])
    if r >= step:
        core = ndimage.distance_transform_edt(~core, sampling=spacing) <= r
    grown = core & cand
    centre = points.mean(0) - lo
    grids = np.ogrid[tuple(slice(0, n) for n in cand.shape)]
    dist2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre, spacing))
    # Leak guard: a region that fills much of the ball it may reach is flooding the
    # surroundings, not following an object; shrink the reach until it does not.
    floor = max(min(EXTENT_MIN_MM, reach), 2.0 * depth) if gap is None else max(GAP_MIN_MM, min(depth, gap))
    while True:
        near = dist2 <= reach**2
        region = grown & near
        if reach <= floor or region.sum() <= FILL_MAX * near.sum():
            break
        reach = max(floor, reach * 0.7)
    out = np.zeros(candidate.shape, bool)
    out[sl] = region
    return out


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill enclosed cavities in 3-D, then slice by slice along k (axial)."""
    mask = ndimage.binary_fill_holes(mask)
    return ndimage.binary_fill_holes(mask, structure=np.array([[[0, 1, 0], [1, 1, 1], [0, 1, 0]]], bool))
