"""The classic engine's two operations on one region of interest (ROI) of the working grid.

``grow``: the object a positive click (or a box) points at -- voxels of the click's intensity
class, reached from it through a *seeded opening* (balls whose radius follows the click's
depth, so a click deep in an organ does not leak through thin bridges into neighbours of the
same intensity), split off by a marker watershed from any negative click it would swallow.

``cut``: the part of the current segment a negative click points at -- the watershed basin
of the click inside its connected part of the segment, competing with the positive clicks
there (or, without any, with the part of the segment far from the click).

Inputs are the smoothed image over the ROI (float32, numpy ``(k, j, i)``, working voxels of
``spacing`` mm) and prompts as ROI-relative working voxel indices; outputs are boolean masks
of the ROI's shape.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage
from skimage.segmentation import watershed

from .intensity import IntensityClass, Voxel, fits

CORE_FRAC = 0.5  # seeded-opening ball radius as a fraction of the seed's depth
CORE_MAX_MM = 15.0  # cap of that radius (mm)
DEPTH_MAX_MM = 50.0  # depths are measured up to this (mm); bounds the work per seed
EXTENT_FACTOR = 2.5  # a grown region stays within this many times the seed's depth (mm) ...
EXTENT_MIN_MM = 5.0  # ... or this distance (mm), whichever is larger
REFINE_FACTOR = 3.0  # a click outside the segment adds within this many times min(depth, gap) ...
REFINE_MIN_MM = 5.0  # ... or this distance (mm): it fills in what is missing near it
SNAP_CONTRAST = 2.0  # snapping needs outside tissue at least this many class half-widths away
FAR_MIN_MM = 4.0  # a cut with no positive click in reach keeps the segment beyond max(this, FAR_FACTOR x depth)
FAR_FACTOR = 2.0
CORE_PROTECT = 1.5  # a cut keeps the segment's voxels deeper than this many times the click's depth


def grow(
    img: np.ndarray,
    raw: np.ndarray,
    seed: np.ndarray,
    cls: IntensityClass,
    spacing: np.ndarray,
    allowed: np.ndarray,
    negatives: Sequence[Tuple[Voxel, IntensityClass]],
    gap: Optional[float] = None,
) -> np.ndarray:
    """Region of the object that ``seed`` (bool mask) marks, as a bool mask of ``img.shape``.

    ``img`` is the smoothed working-grid image, ``raw`` the unsmoothed one (for the boundary).

    ``allowed`` bounds it (a box); ``negatives`` are the segment's negative clicks with their
    classes: one of clearly another intensity splits the intensity axis, one inside the
    grown region takes its watershed basin away. ``gap`` (mm), given when the segment already
    exists and the click lies outside it, is the click's distance to the segment: the click
    fills in what is missing there, so the region stays within a few gaps of it.
    """
    candidate = fits(img, cls) & allowed
    for _, neg_cls in negatives:
        if not cls[1] <= neg_cls[0] <= cls[2]:
            candidate &= np.abs(img - neg_cls[0]) >= np.abs(img - cls[0])
    candidate |= seed
    region = seeded_opening(candidate, seed, spacing, gap)
    inside = [q for q, _ in negatives if region[q]]
    if inside:
        markers = competing_markers(region, [], inside, spacing)
        markers[seed & (markers == 0)] = 1
        basins = watershed(gradient_magnitude(img, spacing), markers, mask=region)
        region = keep_seeded(basins == 1, seed)
    region = snap_boundary(raw, region, cls[0], SNAP_CONTRAST * (cls[2] - cls[1]) / 2)
    return fill_holes(region) & (allowed | seed)


def cut(
    img: np.ndarray,
    segment: np.ndarray,
    click: Voxel,
    positives: Sequence[Voxel],
    negatives: Sequence[Voxel],
    spacing: np.ndarray,
) -> np.ndarray:
    """Voxels of ``segment`` (bool) that the negative ``click`` removes (bool, same shape).

    Works within the connected part of the segment holding the click. ``positives`` and
    ``negatives`` are the segment's other clicks; those inside that part compete in a
    marker watershed on the gradient magnitude. The part's voxels deeper than
    ``CORE_PROTECT`` times the click's depth play the positive side (a click in a thin leak
    does not take the thick organ it leaks from), and without a positive click so do those
    farther than ``max(FAR_MIN_MM, FAR_FACTOR x depth)`` from the click.
    """
    labels, _ = ndimage.label(segment)
    if not labels[click]:
        return np.zeros(segment.shape, bool)
    part = labels == labels[click]
    pos = [p for p in positives if part[p]]
    neg = [q for q in negatives if part[q] and q != click] + [click]
    markers = competing_markers(part, pos, neg, spacing)
    edt = ndimage.distance_transform_edt(part, sampling=spacing)
    depth = float(edt[click])
    # Parts of the segment much thicker than where the click lies are not what it points at.
    markers[(edt >= CORE_PROTECT * depth + float(np.min(spacing))) & (markers == 0)] = 1
    if not pos:
        far = _distance_from(click, part.shape, spacing) >= max(FAR_MIN_MM, FAR_FACTOR * depth)
        markers[part & far & (markers == 0)] = 1
        if not (markers == 1).any():
            return part  # a small blob: the click removes all of it
    basins = watershed(gradient_magnitude(img, spacing), markers, mask=part)
    return basins == 2


def snap_boundary(raw: np.ndarray, region: np.ndarray, mean: float, min_contrast: float) -> np.ndarray:
    """``region`` with its one-voxel outer shell added where the voxel is mostly object.

    Boundary voxels mix the object with what lies beyond it (partial volume), and the
    smoothed image used for growing pushes them out. A shell voxel of ``raw`` (the
    unsmoothed working-grid image) joins when its value is nearer the object's ``mean``
    than the mean of the non-object voxels two steps out around it, and those differ from
    ``mean`` by at least ``min_contrast`` (no snapping into a neighbour of equal intensity).
    """
    ball = ndimage.generate_binary_structure(3, 1)
    grown = ndimage.binary_dilation(region, ball)
    shell = grown & ~region
    beyond = ~ndimage.binary_dilation(grown, ball)
    weight = ndimage.uniform_filter(beyond.astype(np.float32), size=5, mode="constant")
    total = ndimage.uniform_filter(np.where(beyond, raw, 0).astype(np.float32), size=5, mode="constant")
    outside = np.divide(total, weight, out=np.full(raw.shape, np.nan, np.float32), where=weight > 0)
    contrast = np.abs(outside - mean)
    join = shell & (contrast >= min_contrast) & (np.abs(raw - mean) < np.abs(raw - outside))
    return region | join


def gradient_magnitude(img: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """|grad img| in intensity units per mm (float32)."""
    grads = np.gradient(img, *spacing)
    return np.sqrt(sum(g * g for g in grads)).astype(np.float32)


def competing_markers(
    region: np.ndarray, positives: Sequence[Voxel], negatives: Sequence[Voxel], spacing: np.ndarray
) -> np.ndarray:
    """Watershed markers (int32: 1 positive, 2 negative): a ball in ``region`` per click.

    Each ball's radius is half the distance to the nearest click of the other sign and at
    most the click's depth in ``region``, so neither side can be flooded away entirely by a
    single click of the other.
    """
    markers = np.zeros(region.shape, np.int32)
    edt = ndimage.distance_transform_edt(region, sampling=spacing)
    points: List[Tuple[Voxel, bool]] = [(p, True) for p in positives] + [(q, False) for q in negatives]
    coords = np.array([p for p, _ in points], float) * spacing
    signs = np.array([s for _, s in points])
    for (p, positive), c in zip(points, coords):
        if not region[p]:
            continue
        other = coords[signs != positive]
        radius = float(edt[p])
        if len(other):
            radius = min(radius, 0.5 * float(np.min(np.linalg.norm(other - c, axis=1))))
        half = np.ceil(radius / spacing).astype(int)
        sl = tuple(slice(max(0, v - h), min(n, v + h + 1)) for v, h, n in zip(p, half, region.shape))
        local = np.ogrid[tuple(slice(s.start - v, s.stop - v) for s, v in zip(sl, p))]
        d2 = sum((g * h) ** 2 for g, h in zip(local, spacing))
        markers[sl] = np.where((d2 <= radius**2) & region[sl], 1 if positive else 2, markers[sl])
    for p, positive in points:  # the click's own voxel always carries its sign
        if region[p]:
            markers[p] = 1 if positive else 2
    return markers


def seeded_opening(
    candidate: np.ndarray, seed: np.ndarray, spacing: np.ndarray, gap: Optional[float] = None
) -> np.ndarray:
    """The part of ``candidate`` that ``seed`` reaches through balls of a radius set by its depth.

    A seed at depth ``d`` (mm to the candidate's border, at most ``DEPTH_MAX_MM``) gets balls
    of radius ``CORE_FRAC * d`` (at most ``CORE_MAX_MM``): a click deep in an organ does not
    leak through bridges thinner than that into neighbouring tissue of the same intensity.
    The region also stays within ``max(EXTENT_MIN_MM, EXTENT_FACTOR * d)`` mm of the seed,
    which bounds the leaks of clicks in thin parts, whose balls are small (for a click at
    ``gap`` mm from the segment: ``max(REFINE_MIN_MM, REFINE_FACTOR * min(d, gap))``). Work is done on a
    crop around the seed, so a click in a small structure costs little.
    """
    shape = np.array(candidate.shape)
    points = np.argwhere(seed)
    sl = _crop(points, np.ceil(DEPTH_MAX_MM / spacing).astype(int) + 1, shape)
    edt = ndimage.distance_transform_edt(np.pad(candidate[sl], 1, constant_values=True), sampling=spacing)
    depth = min(float(edt[1:-1, 1:-1, 1:-1][seed[sl]].max()), DEPTH_MAX_MM)
    step = float(np.min(spacing))
    r = np.floor(min(CORE_FRAC * depth, CORE_MAX_MM) / step) * step
    if gap is None:
        reach = max(EXTENT_MIN_MM, EXTENT_FACTOR * depth)
    else:
        reach = max(REFINE_MIN_MM, REFINE_FACTOR * min(depth, gap))

    sl = _crop(points, np.ceil(reach / spacing).astype(int), shape)
    cand, seed_c = candidate[sl], seed[sl]
    if r >= step:
        edt = ndimage.distance_transform_edt(cand, sampling=spacing)
        core = edt >= r
        deep = seed_c & core
        seed_c = deep if deep.any() else seed_c
    else:
        core = cand
    core = keep_seeded(core | seed_c, seed_c)
    if r >= step:
        core = ndimage.distance_transform_edt(~core, sampling=spacing) <= r
    centre = points.mean(0) - np.array([s.start for s in sl])
    grids = np.ogrid[tuple(slice(0, n) for n in cand.shape)]
    near = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre, spacing)) <= reach**2
    out = np.zeros(candidate.shape, bool)
    out[sl] = keep_seeded(core & cand & near, seed_c)
    return out


def keep_seeded(mask: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """The connected components of ``mask`` that touch ``seed``."""
    labels, _ = ndimage.label(mask)
    hit = np.unique(labels[seed & mask])
    return np.isin(labels, hit[hit > 0])


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill enclosed cavities in 3-D, then slice by slice along k (axial)."""
    mask = ndimage.binary_fill_holes(mask)
    return ndimage.binary_fill_holes(mask, structure=np.array([[[0, 1, 0], [1, 1, 1], [0, 1, 0]]], bool))


def _crop(points: np.ndarray, half: np.ndarray, shape: np.ndarray) -> Tuple[slice, slice, slice]:
    lo = np.maximum(points.min(0) - half, 0)
    hi = np.minimum(points.max(0) + half + 1, shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def _distance_from(p: Voxel, shape: Sequence[int], spacing: np.ndarray) -> np.ndarray:
    """Euclidean distance (mm) of every voxel of ``shape`` from voxel ``p``."""
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    return np.sqrt(sum(((g - c) * s) ** 2 for g, c, s in zip(grids, p, spacing)))
