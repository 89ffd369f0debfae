"""Interactive VISTA3D: positive/negative points on one segment, through MONAI's
``monai.apps.vista3d.inferer.point_based_window_inferer``.

One click costs one network window: the window (``roi``, 128^3 at 1.5 mm) centred on the
newest point, as the inferer places it; earlier points of the segment go with it as context
(``point_start`` skips their windows). Two modes:

* **correction** (the segment already has voxels, or no class is given): the point branch
  with ``prompt_class`` (the class, or the zero-shot id 133) and the segment's current mask
  as ``prev_mask`` (+1 inside, -1 outside, as logits). VISTA3D's connected-component
  combination then changes the previous result only in the regions connected to the clicks
  (added regions that contain a positive click, removed regions that contain a negative
  one); everything else keeps its previous value.
* **class + points** (an empty segment with a class): ``class_vector`` and the points
  together, the class head's result corrected by the points in the clicked window.

Point labels are 1/0, or 3/2 for VISTA3D's special classes (see :mod:`.labels`).
On the image grid only voxels whose working voxel changed are written, so a correction never
re-quantises the rest of the segment to 1.5 mm.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from . import labels as labels_mod
from ..base import BBox, MaskView
from .grid import WorkingGrid


def window_bounds(p: float, roi: int, size: int) -> Tuple[int, int]:
    """Start/stop along one axis of the window the MONAI point inferer centres on ``p``
    (``size`` is the padded axis length)."""
    if p - roi // 2 < 0:
        return 0, roi
    if p + roi // 2 > size:
        return size - roi, size
    return int(p) - roi // 2, int(p) + roi // 2


def crop_for_point(point_xyz: Sequence[float], shape_xyz: Sequence[int], roi: Sequence[int]
                   ) -> Tuple[Tuple[int, int, int], Tuple[int, int, int]]:
    """The working box ``((x0, y0, z0), (x1, y1, z1))`` holding the window of ``point_xyz``,
    clipped to the volume; an axis shorter than the window is taken whole (the inferer pads
    it the same way on the crop as on the volume)."""
    lo, hi = [], []
    for p, n, r in zip(point_xyz, shape_xyz, roi):
        if n <= r:
            lo.append(0)
            hi.append(int(n))
            continue
        a, b = window_bounds(float(p), int(r), int(n))
        lo.append(a)
        hi.append(b)
    return tuple(lo), tuple(hi)


def previous_on_working(previous: MaskView, grid: WorkingGrid, box_xyz) -> Tuple[np.ndarray, BBox]:
    """The segment's mask sampled (nearest) on the working crop ``box_xyz``: boolean
    ``(X, Y, Z)``; and the image box ``(k, j, i)`` whose voxels map into the crop."""
    lo, hi = box_xyz
    per_axis_index: List[Optional[np.ndarray]] = [None, None, None]
    start, stop = [0, 0, 0], [0, 0, 0]
    for w, axis in enumerate(grid.axes):
        size = grid.image_shape_kji[2 - axis]
        idx = np.clip(np.rint(grid.start[w] + grid.step[w] * np.arange(lo[w], hi[w])), 0, size - 1).astype(np.int64)
        back = grid.working_index(w)
        inside = np.flatnonzero((back >= lo[w]) & (back < hi[w]))
        a = min(int(idx.min()), int(inside[0]) if inside.size else size)
        b = max(int(idx.max()) + 1, int(inside[-1]) + 1 if inside.size else 0)
        start[2 - axis], stop[2 - axis] = a, b
        per_axis_index[w] = idx
    bbox: BBox = (tuple(start), tuple(stop))
    region = previous.region(bbox)  # (k, j, i)
    region_xyz = np.transpose(region, [2 - axis for axis in grid.axes])
    local = [per_axis_index[w] - start[2 - grid.axes[w]] for w in range(3)]
    return region_xyz[np.ix_(*local)], bbox


def paste_changes(previous_region: np.ndarray, bbox: BBox, grid: WorkingGrid, box_xyz,
                  old_xyz: np.ndarray, new_xyz: np.ndarray) -> np.ndarray:
    """The image-grid mask of ``bbox`` (k, j, i): the previous values, except where the
    nearest working voxel (inside the crop) changed from ``old_xyz`` to ``new_xyz``."""
    lo, hi = box_xyz
    index_kji = [None, None, None]
    inside_kji = [None, None, None]
    for w, axis in enumerate(grid.axes):
        a, b = bbox[0][2 - axis], bbox[1][2 - axis]
        back = grid.working_index(w)[a:b]
        inside_kji[2 - axis] = (back >= lo[w]) & (back < hi[w])
        index_kji[2 - axis] = np.clip(back - lo[w], 0, hi[w] - lo[w] - 1)
    order = [grid.axes.index(2), grid.axes.index(1), grid.axes.index(0)]
    changed = np.transpose(old_xyz != new_xyz, order)[np.ix_(*index_kji)]
    values = np.transpose(new_xyz, order)[np.ix_(*index_kji)]
    inside = inside_kji[0][:, None, None] & inside_kji[1][None, :, None] & inside_kji[2][None, None, :]
    out = previous_region.copy()
    write = changed & inside
    out[write] = values[write]
    return out


def infer(predictor, volume_xyz: np.ndarray, points_xyz: np.ndarray, positive: Sequence[bool],
          class_item, previous_xyz: np.ndarray, roi: Sequence[int]) -> np.ndarray:
    """New boolean mask ``(X, Y, Z)`` of a working crop from MONAI's point window inferer.

    ``volume_xyz`` is the scaled crop, ``points_xyz`` ``(N, 3)`` crop coordinates (the last is
    the newest click), ``class_item`` a class name/id or None (zero-shot), ``previous_xyz``
    the segment's mask on the crop.
    """
    from monai.apps.vista3d.inferer import point_based_window_inferer

    prompt_class = labels_mod.point_class(class_item)
    values = labels_mod.point_label_values(prompt_class, positive)
    image = torch.from_numpy(np.ascontiguousarray(volume_xyz, np.float32))[None, None]
    coords = torch.as_tensor(np.asarray(points_xyz, np.float32))[None]
    marks = torch.as_tensor(values, dtype=torch.long)[None]
    klass = torch.tensor([[prompt_class]])
    use_class_head = class_item is not None and not previous_xyz.any()
    prev = None
    if not use_class_head:
        prev = torch.from_numpy(np.where(previous_xyz, 1.0, -1.0).astype(np.float32))[None, None]
    out = point_based_window_inferer(
        inputs=image, roi_size=list(roi), predictor=predictor, point_coords=coords,
        point_labels=marks, class_vector=klass if use_class_head else None, prompt_class=klass,
        prev_mask=prev, point_start=len(points_xyz) - 1, transpose=True)
    logits = out.as_tensor()[0, 0] if hasattr(out, "as_tensor") else out[0, 0]
    mask = (logits > 0).numpy()
    if use_class_head:  # outside the clicked window nothing was computed (NaN): keep previous
        mask = np.where(torch.isnan(logits).numpy(), previous_xyz, mask)
    return mask
