"""A refining positive click of the classic engine, checked against the segment so far.

A positive click outside an existing segment says "this is object too". What growing from it
reaches (:func:`.region.grow`) is an addition *proposed* by the click's own intensity class,
which for a click amid mixed content or on a blurred rim can take in a neighbouring tissue.
The segment the earlier clicks made is the best model of the object there, so the proposal is
checked against it before it is accepted (:func:`checked_addition`):

- where the clicked value looks like the segment near it (:func:`add_class`), only voxels of
  the segment's intensity class are added, connected to the click, with the one-voxel rim
  around them that growing took in (partial volume at the boundary);
- an addition larger than both the segment and a ball of twice the click's distance to the
  segment is a leak, not a correction: the click then adds only its local part
  (:func:`add_near`: within a few times the smaller of its distance to the segment and its
  depth, nearer to it than to any earlier negative click).

So an accepted edit is monotone (a positive click only adds) and local to the click.
Inputs are ROI arrays of the working grid (numpy ``(k, j, i)``, ``spacing`` mm per axis); the
clicks are ROI-relative voxel indices; outputs are boolean masks of the ROI's shape.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
from scipy import ndimage

from .intensity import IntensityClass, Voxel, fits
from .region import SNAP_CONTRAST, fill_holes, keep_seeded, snap_boundary

MODEL_MM = 20.0  # the segment's intensities within this distance (mm) of a click describe it there
MODEL_MIN_VOXELS = 50  # ... when at least this many of its voxels lie that near
ADD_SPREADS = 2.5  # a positive click adds voxels within this many spreads of the segment's mean ...
FAR_SPREADS = 4.0  # ... unless its own value lies farther than this from it (a part that looks different)
ADD_REACH = 3.0  # a positive click adds within this many times its scale (mm) of itself
LEAK_GAPS = 2.0  # an addition beyond the segment's volume and a ball of this many gaps' radius is a leak


def distance_from(p: Voxel, shape: Sequence[int], spacing: np.ndarray) -> np.ndarray:
    """Euclidean distance (mm) of every voxel of ``shape`` from voxel ``p``."""
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    return np.sqrt(sum(((g - c) * s) ** 2 for g, c, s in zip(grids, p, spacing)))


def segment_class(img: np.ndarray, segment: np.ndarray, click: Voxel, spacing: np.ndarray,
                  floor: float) -> Tuple[float, float]:
    """Robust ``(mean, spread)`` of the segment's intensities near ``click``: median and MAD
    of its voxels within ``MODEL_MM`` (all of them in the ROI where fewer than
    ``MODEL_MIN_VOXELS`` lie that near). ``floor`` bounds the spread from below."""
    near = segment & (distance_from(click, img.shape, spacing) <= MODEL_MM)
    values = img[near] if np.count_nonzero(near) >= MODEL_MIN_VOXELS else img[segment]
    mean = float(np.median(values))
    spread = max(1.4826 * float(np.median(np.abs(values - mean))), floor)
    return mean, spread


def add_class(img: np.ndarray, segment: np.ndarray, click: Voxel, own: IntensityClass,
              spacing: np.ndarray, floor: float) -> IntensityClass:
    """Intensity class of what a positive click outside ``segment`` adds.

    The click says its voxel is object: when its value is like the segment's (within
    ``FAR_SPREADS`` spreads of the segment's mean near it), the class is the segment's
    mean -/+ ``ADD_SPREADS`` spreads, widened to just include the clicked value -- voxels
    at least as object-like as the one clicked; otherwise the click marks a part of the
    object that looks different, and ``own`` (the click's own class) is used.
    """
    mean, spread = segment_class(img, segment, click, spacing, floor)
    t = abs(float(img[click]) - mean) / spread
    if t > FAR_SPREADS:
        return own
    half = max(ADD_SPREADS, t) * spread
    return mean, mean - half, mean + half


def add_near(img: np.ndarray, raw: np.ndarray, segment: np.ndarray, click: Voxel, cls: IntensityClass,
             spacing: np.ndarray, negatives: Sequence[Voxel]) -> np.ndarray:
    """Voxels a positive ``click`` outside ``segment`` adds: those of ``cls`` (see
    :func:`add_class`) within ``ADD_REACH`` scales of it (the smaller of its distance to the
    segment and its depth in ``cls``), connected to it outside the segment, and nearer to it
    than to any earlier negative click."""
    gap = float(ndimage.distance_transform_edt(~segment, sampling=spacing)[click])
    inside = fits(img, cls)
    inside[click] = True
    depth = float(ndimage.distance_transform_edt(np.pad(inside | segment, 1, constant_values=True),
                                                 sampling=spacing)[1:-1, 1:-1, 1:-1][click])
    scale = max(min(gap, depth), float(np.min(spacing)))
    distance = distance_from(click, img.shape, spacing)
    reach = ADD_REACH * scale
    candidate = inside & ~segment & (distance <= reach)
    for q in negatives:
        candidate &= distance < distance_from(q, img.shape, spacing)
    seed = np.zeros(img.shape, bool)
    seed[click] = True
    region = keep_seeded(candidate, seed)
    region = snap_boundary(raw, region | segment, cls[0], SNAP_CONTRAST * (cls[2] - cls[1]) / 2) & ~segment
    region &= distance <= reach + float(np.max(spacing))
    for q in negatives:
        region[q] = False
    return fill_holes(region | segment) & ~segment


def checked_addition(img: np.ndarray, raw: np.ndarray, segment: np.ndarray, region: np.ndarray, click: Voxel,
                     own: IntensityClass, spacing: np.ndarray, floor: float, negatives: Sequence[Voxel],
                     gap: float) -> np.ndarray:
    """What a positive ``click`` outside ``segment`` adds, given ``region`` (what growing from it
    with its own class ``own`` reached): see the module's docstring. ``img`` is the smoothed
    ROI, ``raw`` the unsmoothed one, ``floor`` the least spread of an intensity class,
    ``negatives`` the earlier negative clicks in the ROI, ``gap`` the click's distance to the
    segment (mm). Returns the voxels to add (bool; those of ``region`` inside the segment are
    kept, so the caller's ROI grows as it would have)."""
    cls = add_class(img, segment, click, own, spacing, floor)
    seed = np.zeros(img.shape, bool)
    seed[click] = True
    added = region & ~segment
    if cls is not own:
        body = keep_seeded((added & fits(img, cls)) | seed, seed)
        rim = ndimage.binary_dilation(body, ndimage.generate_binary_structure(3, 1)) & added
        added = fill_holes(body | rim | segment) & ~segment
    ball = 4.0 / 3.0 * np.pi * (LEAK_GAPS * gap) ** 3 / float(np.prod(spacing))
    if np.count_nonzero(added) > max(np.count_nonzero(segment), ball):
        return add_near(img, raw, segment, click, cls, spacing, negatives)
    return added | (region & segment)
