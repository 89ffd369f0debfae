"""Slice views -> the slice prompts of the slice engines (``medsam``, ``sam``).

A slice engine segments the image's own voxel slices (docs/PROTOCOL.md, section 5.1): a
slice on *axis* 0 (k), 1 (j) or 2 (i) in numpy ``(k, j, i)`` order. A slice view can prompt
it when the view's normal is parallel to one of the volume's voxel axes: the normal (third
column of the slice node's ``SliceToRAS``, world RAS) is compared with the columns of
``ijk_to_ras_world`` (i, j, k); IJK column ``c`` is voxel axis ``2 - c`` in ``(k, j, i)``
order. A reformatted (oblique) view matches none and cannot send slice prompts.

Which view a prompt was placed in: the crosshair node's cursor, which Slicer's slice view
interactor style moves to the mouse (with its slice node) on every mouse move in a slice view
-- so while a point or a box is being placed, it names that view. Qt-free: this runs under
Slicer, on the ``slicer-core`` wheel and in the browser client alike.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from .prompts import ras_to_kji, roi_corners_world
from .vtk_arrays import matrix_to_numpy

#: the largest angle (degrees) between a view's normal and a voxel axis that still counts as
#: that axis (tan 0.5 deg: 4.5 voxels of drift across 512 voxels)
MAX_TILT_DEG = 0.5
AXIS_NAMES = ("k", "j", "i")
ROTATE_HINT = ("rotate the view to the volume's axes (slice view menu: 'Rotate to volume plane'), "
               "or use an engine that takes 3-D prompts")


class ObliqueViewError(ValueError):
    """The slice view is not aligned with the volume's voxel axes (a reformatted view)."""


def cursor_slice_node(scene):
    """The slice node of the view the mouse is in (the crosshair node's cursor), or None
    when the mouse is in no slice view (or a 3D view)."""
    if scene is None:
        return None
    crosshair = scene.GetFirstNodeByClass("vtkMRMLCrosshairNode")
    if crosshair is None:
        return None
    return crosshair.GetCursorPositionXYZ([0.0, 0.0, 0.0])


def view_title(slice_node) -> str:
    """E.g. "the Red (Axial) view"."""
    name = slice_node.GetLayoutName() or slice_node.GetName() or "slice"
    orientation = slice_node.GetOrientation() or ""
    return f"the {name} ({orientation}) view" if orientation else f"the {name} view"


def view_axis(slice_node, ijk_to_ras_world) -> int:
    """The voxel axis (0 = k, 1 = j, 2 = i) normal to the slice view; ObliqueViewError when
    the view's normal is more than :data:`MAX_TILT_DEG` from every voxel axis."""
    slice_to_ras = matrix_to_numpy(slice_node.GetSliceToRAS())
    normal = slice_to_ras[:3, 2] / np.linalg.norm(slice_to_ras[:3, 2])
    columns = np.asarray(ijk_to_ras_world, dtype=np.float64)[:3, :3]
    cosines = np.abs(normal @ (columns / np.linalg.norm(columns, axis=0)))
    column = int(np.argmax(cosines))
    if cosines[column] < np.cos(np.deg2rad(MAX_TILT_DEG)):
        tilt = float(np.rad2deg(np.arccos(min(1.0, cosines[column]))))
        raise ObliqueViewError(
            f"{view_title(slice_node)} is oblique to the volume's slices (tilted {tilt:.1f} degrees "
            f"from its nearest voxel axis), so a slice engine cannot take prompts from it: "
            f"{ROTATE_HINT}")
    return 2 - column


def view_slice(slice_node, ijk_to_ras_world, shape_kji: Sequence[int]) -> Tuple[int, int]:
    """``(axis, index)``: the voxel slice the view shows (its plane, rounded to the nearest
    slice). ObliqueViewError for an oblique view; ValueError when the plane lies outside the
    volume."""
    axis = view_axis(slice_node, ijk_to_ras_world)
    origin = matrix_to_numpy(slice_node.GetSliceToRAS())[:3, 3]
    position = ras_to_kji(origin, ijk_to_ras_world)[axis]
    index = int(np.floor(position + 0.5))
    if not 0 <= index < int(shape_kji[axis]):
        raise ValueError(f"{view_title(slice_node)} shows no slice of the volume (slice {index} of "
                         f"axis {AXIS_NAMES[axis]}, which has {int(shape_kji[axis])}): move it "
                         "onto the volume")
    return axis, index


def roi_section_kji(roi_node, ijk_to_ras_world, axis: int, position: float) -> np.ndarray:
    """Continuous ``(k, j, i)`` points (n, 3) outlining where the ROI's box meets the voxel
    plane ``kji[axis] == position``: its edges' crossings with the plane and the corners on
    it (empty when it does not reach the plane). Voxel coordinates are an affine image of
    world RAS, so the section is computed there directly."""
    corners = np.array([ras_to_kji(c, ijk_to_ras_world) for c in roi_corners_world(roi_node)])
    points = [c for c in corners if abs(c[axis] - position) < 1e-9]
    for a in range(8):                      # corner index = 4 bx + 2 by + bz (prompts.py order)
        for bit in (1, 2, 4):
            b = a | bit
            if b == a:
                continue
            p, q = corners[a], corners[b]
            if (p[axis] - position) * (q[axis] - position) < 0:
                t = (position - p[axis]) / (q[axis] - p[axis])
                points.append(p + t * (q - p))
    return np.array(points).reshape(-1, 3)


def slice_box(roi_node, slice_node, ijk_to_ras_world,
              shape_kji: Sequence[int]) -> Tuple[int, Tuple[Tuple[int, ...], Tuple[int, ...]]]:
    """``(axis, ((k0, j0, i0), (k1, j1, i1)))``: a markups ROI drawn in a slice view as a
    slice box -- one voxel thick on the view's axis, on the slice the view shows; on the two
    other axes the voxels whose centres lie within the ROI's section by that slice's plane
    (what the view shows of it; inclusive corners, clipped to the image). Slicer pads a box
    placed in a slice view to the depth of its shortest side around the slice, so it crosses
    the shown slice; ValueError when it does not (moved away) or covers no voxel there."""
    axis, index = view_slice(slice_node, ijk_to_ras_world, shape_kji)
    section = roi_section_kji(roi_node, ijk_to_ras_world, axis, float(index))
    if not len(section):
        raise ValueError(f"the box '{roi_node.GetName()}' does not cross the slice shown in "
                         f"{view_title(slice_node)}: draw it there again")
    eps = 1e-6
    low = np.maximum(np.ceil(section.min(axis=0) - eps).astype(int), 0)
    high = np.minimum(np.floor(section.max(axis=0) + eps).astype(int), np.asarray(shape_kji, int) - 1)
    low[axis] = high[axis] = index
    if (high < low).any():
        raise ValueError(f"the box '{roi_node.GetName()}' covers no voxel of the slice shown in "
                         f"{view_title(slice_node)}: draw it over the image")
    return axis, (tuple(int(v) for v in low), tuple(int(v) for v in high))


def slice_node_by_id(scene, node_id: Optional[str]):
    """The slice node ``node_id`` of ``scene`` (None for None or a node gone meanwhile)."""
    if scene is None or not node_id:
        return None
    node = scene.GetNodeByID(node_id)
    return node if node is not None and node.IsA("vtkMRMLSliceNode") else None
