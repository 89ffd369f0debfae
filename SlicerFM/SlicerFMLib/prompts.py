"""Markups -> SlicerFM prompts in voxel coordinates ``(k, j, i)`` of the uploaded image.

All positions are read in WORLD RAS (``GetNthControlPointPositionWorld``, the ROI's
object-to-world matrix), i.e. after the markups node's own parent transforms, and mapped
with ``ijk_to_ras_world`` from :func:`SlicerFMLib.volume_io.volume_to_array`, so markups and
volume may sit under different transforms. A voxel's centre has integer coordinates.

Positive vs negative points: one markups point-list node per polarity (e.g. a green
"SlicerFM positive" and a red "SlicerFM negative" list). A node's polarity is the
``positive`` argument when given, else its node attribute ``SlicerFM.Polarity``
("positive" / "negative", set with :func:`set_prompt_polarity`), else positive. Separate
nodes rather than a per-point flag because MRML markups have no per-point attribute other
than user-editable label/description, and separate nodes give each polarity its own
colour in the views and its own place-mode button.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
import vtk

POLARITY_ATTRIBUTE = "SlicerFM.Polarity"

PointKJI = Tuple[float, float, float]


def ras_to_kji(world_ras_point: Sequence[float], ijk_to_ras_world) -> PointKJI:
    """World RAS point (mm, 3 values) -> continuous voxel coordinates ``(k, j, i)``.

    ``ijk_to_ras_world`` is the (4, 4) voxel index (i, j, k, 1) -> world RAS matrix. The
    result is not rounded or clipped: a point at a voxel centre gives integers (up to
    float rounding), a point outside the image gives coordinates outside [0, size - 1].
    """
    ras = np.append(np.asarray(world_ras_point, dtype=np.float64).reshape(3), 1.0)
    ijk = np.linalg.solve(np.asarray(ijk_to_ras_world, dtype=np.float64), ras)
    return float(ijk[2]), float(ijk[1]), float(ijk[0])


def kji_to_ras(point_kji: Sequence[float], ijk_to_ras_world) -> np.ndarray:
    """Inverse of :func:`ras_to_kji`: voxel coordinates ``(k, j, i)`` -> world RAS (3,)."""
    k, j, i = (float(v) for v in point_kji)
    return (np.asarray(ijk_to_ras_world, dtype=np.float64) @ np.array([i, j, k, 1.0]))[:3]


def set_prompt_polarity(markups_node, positive: bool) -> None:
    """Mark a markups node as holding positive (True) or negative (False) point prompts."""
    markups_node.SetAttribute(POLARITY_ATTRIBUTE, "positive" if positive else "negative")


def prompt_polarity(markups_node) -> bool:
    """The polarity stored by :func:`set_prompt_polarity` (True = positive; the default)."""
    value = (markups_node.GetAttribute(POLARITY_ATTRIBUTE) or "positive").strip().lower()
    if value not in ("positive", "negative"):
        raise ValueError(f"markups '{markups_node.GetName()}' has {POLARITY_ATTRIBUTE}="
                         f"{value!r}; expected 'positive' or 'negative'")
    return value == "positive"


def markups_to_points(markups_node, ijk_to_ras_world,
                      positive: Optional[bool] = None) -> List[Tuple[PointKJI, bool]]:
    """``[((k, j, i), positive), ...]`` for the defined control points of ``markups_node``,
    in control-point order.

    Points whose position is not defined (being placed, skipped or missing) are left out.
    ``positive`` overrides the node's polarity (see the module docstring). Coordinates are
    continuous voxel coordinates (not rounded, not clipped to the image).
    """
    from slicer import vtkMRMLMarkupsNode

    polarity = prompt_polarity(markups_node) if positive is None else bool(positive)
    points = []
    position = [0.0, 0.0, 0.0]
    for index in range(markups_node.GetNumberOfControlPoints()):
        status = markups_node.GetNthControlPointPositionStatus(index)
        if status != vtkMRMLMarkupsNode.PositionDefined:
            continue
        markups_node.GetNthControlPointPositionWorld(index, position)
        points.append((ras_to_kji(position, ijk_to_ras_world), polarity))
    return points


def roi_corners_world(roi_node) -> np.ndarray:
    """The 8 corners (8, 3) of a markups ROI in world RAS mm, through the ROI's own
    orientation and its parent transforms (a non-linear parent transform moves each
    corner exactly; the box between them is then only approximate)."""
    from slicer import vtkMRMLTransformNode

    size = roi_node.GetSize()    # (3,) mm along the ROI's own axes
    center = [0.0, 0.0, 0.0]
    roi_node.GetCenter(center)   # node (local) coordinates
    object_to_node = vtk.vtkMatrix4x4()
    object_to_node.DeepCopy(roi_node.GetObjectToNodeMatrix())
    axes = np.array([[object_to_node.GetElement(r, c) for c in range(3)] for r in range(3)])
    half = np.asarray(size) / 2.0
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    corners_node = np.asarray(center) + (signs * half) @ axes.T
    to_world = vtk.vtkGeneralTransform()
    vtkMRMLTransformNode.GetTransformBetweenNodes(roi_node.GetParentTransformNode(), None,
                                                  to_world)
    return np.array([to_world.TransformPoint(*corner) for corner in corners_node])


def roi_to_box(roi_node, ijk_to_ras_world,
               shape_kji: Optional[Sequence[int]] = None) -> Tuple[Tuple[int, int, int],
                                                                   Tuple[int, int, int]]:
    """A markups ROI -> box prompt ``((k0, j0, i0), (k1, j1, i1))``, both corners inclusive
    voxel indices (the SlicerFM ``box_kji`` convention), axis-aligned in voxel space.

    The ROI's 8 world-RAS corners are mapped to continuous (k, j, i); the box holds the
    voxels whose centres lie within their min/max (so an oblique ROI gives its voxel-space
    bounding box). With ``shape_kji`` (K, J, I) the box is clipped to the image. Raises
    ValueError when no voxel centre is inside (ROI thinner than a voxel or outside).
    """
    corners = np.array([ras_to_kji(c, ijk_to_ras_world) for c in roi_corners_world(roi_node)])
    eps = 1e-6
    low = np.ceil(corners.min(axis=0) - eps).astype(int)
    high = np.floor(corners.max(axis=0) + eps).astype(int)
    if shape_kji is not None:
        low = np.maximum(low, 0)
        high = np.minimum(high, np.asarray(shape_kji, dtype=int) - 1)
    if (high < low).any():
        raise ValueError(f"the ROI '{roi_node.GetName()}' contains no voxel centre of the "
                         "image: move it over the image or make it larger")
    return tuple(int(v) for v in low), tuple(int(v) for v in high)
