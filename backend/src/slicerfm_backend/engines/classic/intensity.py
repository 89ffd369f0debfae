"""Intensity classes of the classic engine: which values belong with a click or a box.

A class is ``(mean, lo, hi)``: the robust mean of the tissue under a prompt and the value
interval taken to be the same tissue. Values are those of the smoothed working-grid image
(Hounsfield units on CT, scanner units on MR). Arrays are numpy ``(k, j, i)``.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

Voxel = Tuple[int, int, int]
IntensityClass = Tuple[float, float, float]

SAMPLE_MM = 6.0  # radius of the ball whose intensities describe a click (mm)
HIST_MM = 20.0  # radius of the ball whose histogram bounds a click's class (mm)
MIN_TOL = 1.5  # a class spans at least mean -/+ MIN_TOL * spread ...
MAX_TOL = 4.0  # ... and at most MAX_TOL * spread; in between it ends at the local histogram's valleys
MIN_SPREAD_CT = 7.0  # HU; floor of a class's spread on CT (organs differ by ~10 HU without contrast)
MR_FLOOR = 0.02  # MR, small structures: floor of a class's spread as a fraction of the image's range
START_ROUNDS = 5  # rounds of that search from a clicked value (the window can widen ~1.5x per round)
NEAR_TOL = 2.0  # values within this many spreads of a mode's centre describe it
MIN_SPREAD_MR = 0.05  # MR: floor of a class's spread as a fraction of its mean intensity


def looks_like_ct(values: np.ndarray) -> bool:
    """True when intensities look like Hounsfield units (air near -1000, soft tissue near 0)."""
    lo, hi = np.percentile(values, [1, 99])
    return bool(lo < -500 and -200 < hi < 4000)


def ball_slices(p: Sequence[int], radius: Sequence[int], shape: Sequence[int]):
    """Slices of the box ``p -/+ radius`` (voxels) clipped to ``shape``."""
    return tuple(slice(max(0, int(c) - int(r)), min(int(n), int(c) + int(r) + 1)) for c, r, n in zip(p, radius, shape))


def ball_values(img: np.ndarray, p: Voxel, radius_mm: float, spacing: np.ndarray) -> np.ndarray:
    """Values of ``img`` within ``radius_mm`` of voxel ``p`` (``spacing`` in mm per axis)."""
    radius = np.maximum(1, np.round(radius_mm / spacing)).astype(int)
    sl = ball_slices(p, radius, img.shape)
    grids = np.ogrid[tuple(slice(s.start - c, s.stop - c) for s, c in zip(sl, p))]
    return img[sl][sum((g / float(r)) ** 2 for g, r in zip(grids, radius)) <= 1.0]


def fits(values: np.ndarray, cls: IntensityClass) -> np.ndarray:
    """Boolean array: which ``values`` lie in the class's interval."""
    return (values >= cls[1]) & (values <= cls[2])


def click_class(img: np.ndarray, p: Voxel, spacing: np.ndarray, floor: Optional[float],
                own: bool = False) -> IntensityClass:
    """Class of a click at ``p``: the main mode near it, bounded by the local histogram.

    With ``own`` (small or thin structures) the mode is the one of the clicked voxel's own
    value, not the ball's main one: the ball of a click in a thin structure is mostly the
    tissue around it. ``floor``: see :func:`dominant_class`.
    """
    values = ball_values(img, p, SAMPLE_MM, spacing)
    mean, spread = dominant_class(values, floor, start=float(img[p]) if own else None)
    return interval(ball_values(img, p, HIST_MM, spacing), mean, spread)


def mr_scale(values: np.ndarray) -> float:
    """Robust intensity range of an MR image (from a sample of its voxels): the 99th minus
    the 1st percentile of the voxels above the background. MR has no absolute scale; spread
    floors of small structures are fractions of this."""
    values = values[values > np.percentile(values, 1)]
    if values.size < 10:
        return 0.0
    lo, hi = np.percentile(values, [1, 99])
    return float(hi - lo)


def box_class(img: np.ndarray, a: np.ndarray, b: np.ndarray, floor: Optional[float]):
    """``(marker, class)`` of a box ``[a, b)`` (ROI voxels): the main mode of its middle third.

    ``marker`` (bool, ``img.shape``) is the largest connected part of the middle third that
    fits the mode: the seed from which the box's object grows.
    """
    size = np.maximum(b - a, 1)
    c_lo = a + size // 3
    c_hi = np.maximum(c_lo + 1, b - size // 3)
    centre = img[c_lo[0]:c_hi[0], c_lo[1]:c_hi[1], c_lo[2]:c_hi[2]]
    mean, spread = dominant_class(centre.ravel(), floor)
    cls = interval(img[a[0]:b[0], a[1]:b[1], a[2]:b[2]].ravel(), mean, spread)
    marker = np.zeros(img.shape, bool)
    marker[c_lo[0]:c_hi[0], c_lo[1]:c_hi[1], c_lo[2]:c_hi[2]] = np.abs(centre - mean) <= MIN_TOL * spread
    if marker.any():
        labels, _ = ndimage.label(marker)
        marker = labels == (1 + int(np.argmax(np.bincount(labels.ravel())[1:])))
    else:
        marker[tuple((c_lo + c_hi) // 2)] = True
    return marker, cls


def dominant_class(values: np.ndarray, floor: Optional[float], start: Optional[float] = None) -> Tuple[float, float]:
    """Robust ``(mean, spread)`` of the main intensity mode of ``values``.

    Median and MAD, then again over the values near that median, so that a sample ball
    straddling an edge or a gas pocket describes the tissue that fills most of it. With
    ``start`` (the clicked voxel's value) the mode is sought from ``start`` instead, in a
    window that starts at the floor and widens as the values allow: a click in a thin
    structure, whose ball is mostly the tissue around it, keeps its own mode.
    ``floor`` bounds the spread from below; None means ``MIN_SPREAD_MR`` of the mean (MR).
    """
    if floor is None:
        floor = max(MIN_SPREAD_MR * abs(float(np.median(values))), 1e-6)
    if start is not None:
        return _refine(values, start, floor, floor, START_ROUNDS)
    med = float(np.median(values))
    spread = max(1.4826 * float(np.median(np.abs(values - med))), floor)
    return _refine(values, med, spread, floor, 1)


def _refine(values: np.ndarray, med: float, spread: float, floor: float, rounds: int) -> Tuple[float, float]:
    """Median and MAD-based spread of the values within ``NEAR_TOL`` spreads of ``med``, repeated."""
    for _ in range(rounds):
        near = values[np.abs(values - med) <= NEAR_TOL * spread]
        if near.size < 5:
            break
        med = float(np.median(near))
        spread = max(1.4826 * float(np.median(np.abs(near - med))), floor)
    return med, spread


def interval(values: np.ndarray, mean: float, spread: float) -> IntensityClass:
    """``(mean, lo, hi)``: the histogram mode of ``values`` around ``mean``, out to its valleys.

    The class reaches at least ``MIN_TOL`` and at most ``MAX_TOL`` spreads from ``mean``; in
    between it stops where the smoothed histogram of the neighbourhood rises again (another
    tissue) or fades out, so a click next to a tissue of close intensity gets a class that
    stops short of it while one surrounded by fat or air gets a wide one.
    """
    width = spread / 2.0
    edges = mean + width * np.arange(-2 * MAX_TOL - 0.5, 2 * MAX_TOL + 1.0)
    hist = ndimage.gaussian_filter1d(np.histogram(values, edges)[0].astype(float), 1.0)
    centre = len(hist) // 2
    top = float(hist[centre - 3:centre + 4].max()) + 1e-9
    inner = int(2 * MIN_TOL)

    def falls(frm: int, to: int) -> bool:
        return hist[to] <= hist[frm] + 0.05 * top and hist[frm] > 0.05 * top

    lo_bin = hi_bin = centre
    while lo_bin > 0 and (centre - lo_bin < inner or falls(lo_bin, lo_bin - 1)):
        lo_bin -= 1
    while hi_bin < len(hist) - 1 and (hi_bin - centre < inner or falls(hi_bin, hi_bin + 1)):
        hi_bin += 1
    return mean, float(edges[lo_bin]), float(edges[hi_bin + 1])
