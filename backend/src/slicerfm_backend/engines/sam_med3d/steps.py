"""One SAM-Med3D interaction step on a segment: which crops, which points, which logits.

A segment's state is a tuple of :class:`CropState`, one per 128³ crop it uses (see
:mod:`.pipeline`). Rules, applied to the prompts oldest first:

- the first prompt makes a crop centred on it; a later *positive* click that is not at
  least ``MARGIN`` crop voxels inside an existing crop makes a new crop centred on it
  (up to ``max_crops``). A negative click outside every crop changes nothing.
- a box (SAM-Med3D has no box embedding) counts as a positive click at its centre; the
  engine also keeps the result inside the box (see :mod:`.sam_med3d`).
- each crop is decoded with all clicks that fall inside it (re-sent every step, as the
  official pipeline does) plus its seed points, and its own previous low-resolution logits
  as mask prompt (zeros the first time). A crop whose point set did not change is not
  decoded again.
- extension (objects larger than one crop): when a crop's prediction touches one of its
  faces, the neighbouring crop shifted by ``STRIDE`` voxels across that face (overlap
  ``128 - STRIDE``) is added, with a positive seed point at the deepest voxel of the
  prediction inside the overlap; repeated until nothing touches or ``max_crops`` is reached.

Points are given to the network as crop voxel indices (a, b, c), the tensor's own order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

from ..base import ImageData, Prompt
from .pipeline import CROP, Crop, footprint, kji_to_ras

MARGIN = 8  # a positive click closer than this to a crop's faces (crop voxels) gets its own crop
STRIDE = 96  # shift of an extension crop (crop voxels): 32 voxels (48 mm) of overlap
MAX_CROPS = 8

Point = Tuple[Tuple[float, float, float], int]  # crop index (a, b, c), label 1/0


@dataclass(frozen=True)
class CropState:
    """One crop of a segment: its seed points (crop index, label), its last low-resolution
    logits ``(32, 32, 32)`` (None before its first decode; a torch tensor on the network's
    device, or a numpy array from a stand-in network) and the points they came from."""

    crop: Crop
    seeds: Tuple[Point, ...] = ()
    logits: Optional[np.ndarray] = None
    decoded_with: Tuple[Point, ...] = ()

    @property
    def nbytes(self) -> int:
        return 0 if self.logits is None else int(self.logits.nbytes)


State = Tuple[CropState, ...]


def user_points(image: ImageData, prompts: Sequence[Prompt]) -> List[Tuple[np.ndarray, int]]:
    """The prompts as ``(RAS mm (3,), label)``, oldest first; a box becomes its centre, positive."""
    out = []
    for p in prompts:
        if p.kind == "point" and p.point_kji is not None:
            out.append((kji_to_ras(image, np.asarray(p.point_kji))[0], 1 if p.positive else 0))
        elif p.kind == "box" and p.box_kji is not None:
            centre = (np.asarray(p.box_kji[0], float) + np.asarray(p.box_kji[1], float)) / 2
            out.append((kji_to_ras(image, centre)[0], 1))
    return out


def crop_points(state: CropState, points: Sequence[Tuple[np.ndarray, int]]) -> Tuple[Point, ...]:
    """The seeds and the user points inside the crop, as rounded crop indices with labels."""
    inside = []
    for ras, label in points:
        if state.crop.contains(ras):
            index = np.floor(state.crop.ras_to_index(ras) + 0.5)
            inside.append((tuple(float(v) for v in index), label))
    return tuple(state.seeds) + tuple(inside)


def upsample(logits) -> np.ndarray:
    """Boolean ``(128, 128, 128)``: logits ``(32, 32, 32)`` upsampled trilinearly
    (align_corners=False), ``sigmoid > 0.5`` (i.e. logit > 0); see :mod:`.logits`."""
    from .logits import upsample as full

    return full(logits)


def _kept(logits):
    """The decoder's logits as they are kept in the state: a torch tensor stays on its
    device (the next decode and the paste use it there), anything else becomes float32."""
    if type(logits).__module__.startswith("torch"):
        return logits
    return np.asarray(logits, np.float32)


def seed_for(mask: np.ndarray, axis: int, direction: int) -> Optional[Tuple[float, float, float]]:
    """Deepest voxel (largest distance to the background) of ``mask`` ``(128,)*3`` inside
    the overlap with the neighbour across face ``(axis, direction)``, in the neighbour's
    crop indices; None when the overlap holds no prediction."""
    slab = [slice(None)] * 3
    slab[axis] = slice(STRIDE, CROP) if direction > 0 else slice(0, CROP - STRIDE)
    part = mask[tuple(slab)]
    if not part.any():
        return None
    depth = ndimage.distance_transform_edt(np.pad(part, 1))[1:-1, 1:-1, 1:-1]
    index = np.array(np.unravel_index(int(np.argmax(depth)), part.shape), float)
    if direction > 0:
        index[axis] += STRIDE
    index[axis] -= direction * STRIDE
    return tuple(float(v) for v in index)


def step(state: State, image: ImageData, prompts: Sequence[Prompt],
         embed: Callable[[Crop], object], decode: Callable, max_crops: int = MAX_CROPS,
         extend: bool = True) -> State:
    """The state after the last of ``prompts`` (``state`` is the state after the others).

    ``embed(crop)`` returns the crop's image embedding (cached by the caller);
    ``decode(embedding, points (N, 3), labels (N,), logits or None)`` returns new logits
    ``(32, 32, 32)`` (a numpy array, or a torch tensor kept on its device).
    """
    points = user_points(image, prompts)
    crops = list(state)
    if points:
        ras, label = points[-1]
        if not crops or (label == 1 and not any(c.crop.contains(ras, MARGIN) for c in crops)):
            if len(crops) < max_crops:
                crops.append(CropState(Crop.around(ras)))
    queue = list(range(len(crops)))
    while queue:
        n = queue.pop(0)
        current = crops[n]
        pts = crop_points(current, points)
        if pts == current.decoded_with or not any(label == 1 for _, label in pts):
            continue
        coords = np.array([p for p, _ in pts], np.float32)
        labels = np.array([label for _, label in pts], np.int64)
        logits = _kept(decode(embed(current.crop), coords, labels, current.logits))
        crops[n] = replace(current, logits=logits, decoded_with=pts)
        if extend:
            queue.extend(_extensions(crops, n, image, max_crops))
    return tuple(crops)


def _extensions(crops: List[CropState], n: int, image: ImageData, max_crops: int) -> List[int]:
    """Append the neighbours of crop ``n`` its prediction reaches; their indices. Which faces
    it touches comes from the logits' boundary planes; the whole 128³ mask is upsampled only
    when a neighbour may be added (for its seed point)."""
    from .logits import border_faces

    mask = None
    added = []
    for axis, direction in border_faces(crops[n].logits):
        if len(crops) >= max_crops:
            break
        neighbour = crops[n].crop.shifted(axis, direction * STRIDE)
        centre = neighbour.index_to_ras(np.full(3, CROP // 2))
        if any(c.crop.contains(centre, MARGIN) for c in crops) or footprint(image, neighbour) is None:
            continue
        mask = upsample(crops[n].logits) if mask is None else mask
        seed = seed_for(mask, axis, direction)
        if seed is None:
            continue
        crops.append(CropState(neighbour, seeds=((seed, 1),)))
        added.append(len(crops) - 1)
    return added
