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

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage
from skimage.segmentation import watershed

from .intensity import IntensityClass, Voxel, fits


COMPACTNESS = 0.3  # small structures' marker watersheds: distance cost per voxel vs edges in spreads per voxel


@dataclass(frozen=True)
class Style:
    """How far clicks reach, for large structures (coarse grid) or small and thin ones (fine).

    A segment's first click reaches at least ``max(first_min_mm, first_factor x d)`` mm from
    itself (``d``: its depth in its class) and at most ``max(first_max_mm, max_factor x d)``;
    a later click at ``gap`` mm from the segment reaches between ``max(refine_min_mm,
    refine_factor x s)`` and ``refine_max_factor x s`` with ``s = min(d, gap)``. With
    ``adaptive`` the reach grows from the minimum towards the maximum as :func:`_reach`
    allows, else it is the minimum (large structures: the engine as it was before styles).
    ``own_class``: a click's class is its own voxel's mode (see :func:`.intensity.click_class`).
    ``compactness``: of the marker watersheds (0: split along edges only; see
    :func:`edge_cost`). A cut with no positive click near keeps what lies farther than
    ``max(far_min_mm, FAR_FACTOR x depth)`` from the click.
    """

    first_factor: float
    first_min_mm: float
    first_max_mm: float
    refine_factor: float
    refine_min_mm: float
    max_factor: float
    refine_max_factor: float
    far_min_mm: float
    adaptive: bool
    own_class: bool
    compactness: float


LARGE = Style(first_factor=6.0, first_min_mm=30.0, first_max_mm=30.0, refine_factor=3.0, refine_min_mm=15.0,
              max_factor=6.0, refine_max_factor=6.0, far_min_mm=10.0, adaptive=False, own_class=False,
              compactness=0.0)
SMALL = Style(first_factor=2.5, first_min_mm=5.0, first_max_mm=30.0, refine_factor=2.5, refine_min_mm=5.0,
              max_factor=6.0, refine_max_factor=3.5, far_min_mm=4.0, adaptive=True, own_class=True,
              compactness=COMPACTNESS)

CORE_FRAC = 0.5  # seeded-opening ball radius as a fraction of the seed's depth
CORE_MAX_MM = 15.0  # cap of that radius (mm)
DEPTH_MAX_MM = 50.0  # depths are measured up to this (mm); bounds the work per seed
REACH_STEP = 1.3  # a small structure's reach grows by this factor per step ...
SHELL_DENSE = 0.4  # ... while the region fills at least this fraction of the new shell ...
SHELL_SMALL = 0.15  # ... or adds less than this fraction of its volume
SNAP_CONTRAST = 2.0  # snapping needs outside tissue at least this many class half-widths away
FAR_FACTOR = 2.0  # a cut with no positive click in reach keeps the segment beyond max(far_min_mm, this x depth)
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
    style: Style = LARGE,
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
    region = seeded_opening(candidate, seed, spacing, gap, style)
    inside = [q for q, _ in negatives if region[q]]
    if inside:
        markers = competing_markers(region, [], inside, spacing)
        markers[seed & (markers == 0)] = 1
        spread = max((cls[2] - cls[1]) / 2, 1e-6)
        basins = watershed(edge_cost(img, spacing, spread), markers, mask=region, compactness=style.compactness)
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
    style: Style = LARGE,
) -> np.ndarray:
    """Voxels of ``segment`` (bool) that the negative ``click`` removes (bool, same shape).

    Works within the connected part of the segment holding the click. ``positives`` and
    ``negatives`` are the segment's other clicks; those inside that part compete in a
    marker watershed on the gradient magnitude. The part's voxels deeper than
    ``CORE_PROTECT`` times the click's depth play the positive side (a click in a thin leak
    does not take the thick organ it leaks from), and without a positive click so do those
    farther than ``max(style.far_min_mm, FAR_FACTOR x depth)`` from the click.
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
        far = _distance_from(click, part.shape, spacing) >= max(style.far_min_mm, FAR_FACTOR * depth)
        markers[part & far & (markers == 0)] = 1
        if not (markers == 1).any():
            return part  # a small blob: the click removes all of it
    values = img[part]
    spread = 1.4826 * float(np.median(np.abs(values - np.median(values)))) + 1e-6
    basins = watershed(edge_cost(img, spacing, spread), markers, mask=part, compactness=style.compactness)
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


def edge_cost(img: np.ndarray, spacing: np.ndarray, spread: float) -> np.ndarray:
    """Flooding cost of the marker watersheds: |grad img| in ``spread`` units per working voxel.

    With ``COMPACTNESS`` (cost per voxel of distance from a marker) the watershed splits a
    region along edges where there are some and half-way between the markers where there
    are none, so a click takes the part of the region nearest to it.
    """
    return gradient_magnitude(img, spacing) * float(np.min(spacing)) / spread


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
    candidate: np.ndarray, seed: np.ndarray, spacing: np.ndarray, gap: Optional[float] = None,
    style: Style = LARGE,
) -> np.ndarray:
    """The part of ``candidate`` that ``seed`` reaches through balls of a radius set by its depth.

    A seed at depth ``d`` (mm to the candidate's border, at most ``DEPTH_MAX_MM``) gets balls
    of radius ``CORE_FRAC * d`` (at most ``CORE_MAX_MM``): a click deep in an organ does not
    leak through bridges thinner than that into neighbouring tissue of the same intensity.
    How far from the seed the region reaches follows ``style`` (see :class:`Style`). Work is
    done on a crop around the seed, so a click in a small structure costs little.
    """
    shape = np.array(candidate.shape)
    points = np.argwhere(seed)
    sl = _crop(points, np.ceil(DEPTH_MAX_MM / spacing).astype(int) + 1, shape)
    edt = ndimage.distance_transform_edt(np.pad(candidate[sl], 1, constant_values=True), sampling=spacing)
    depth = min(float(edt[1:-1, 1:-1, 1:-1][seed[sl]].max()), DEPTH_MAX_MM)
    step = float(np.min(spacing))
    r = np.floor(min(CORE_FRAC * depth, CORE_MAX_MM) / step) * step
    if gap is None:
        low = max(style.first_min_mm, style.first_factor * depth)
        high = max(low, style.first_max_mm, style.max_factor * depth)
    else:
        scale = min(depth, gap)
        low = max(style.refine_min_mm, style.refine_factor * scale)
        high = max(low, style.refine_max_factor * scale)
    if not style.adaptive:
        high = low

    sl = _crop(points, np.ceil(high / spacing).astype(int), shape)
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
    distance = np.sqrt(sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre, spacing)))
    out = np.zeros(candidate.shape, bool)
    out[sl] = _reach(core & cand, seed_c, distance, low, high)
    return out


def _reach(region: np.ndarray, seed: np.ndarray, distance: np.ndarray, low: float, high: float) -> np.ndarray:
    """The part of ``region`` connected to ``seed`` within a radius between ``low`` and ``high``
    mm (``distance``: mm from the seed).

    The radius grows from ``low`` by ``REACH_STEP`` while each new shell is either filled by
    the region (the click lies inside a larger object) or adds little to it (the object is
    closed by its own edges); it stops where the region goes on thinly through the shell --
    a network of tissue of the click's intensity (grey matter, fat planes) whose extent
    intensity cannot tell, so the click keeps to its neighbourhood.
    """
    chosen = keep_seeded(region & (distance <= low), seed)
    volume, radius = int(chosen.sum()), low
    while radius < high:
        outer = min(high, radius * REACH_STEP)
        grown = keep_seeded(region & (distance <= outer), seed)
        added = int(grown.sum()) - volume
        shell = int(np.count_nonzero((distance > radius) & (distance <= outer)))
        if added > SHELL_SMALL * volume and added < SHELL_DENSE * shell:
            break
        chosen, volume, radius = grown, volume + added, outer
    return chosen


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
