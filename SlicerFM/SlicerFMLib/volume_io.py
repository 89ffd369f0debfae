"""Volume node <-> numpy array with the IJK->RAS geometry in WORLD coordinates.

``volume_to_array`` gives what the SlicerFM protocol uploads: the voxels in numpy order
``(k, j, i)`` (as ``slicer.util.arrayFromVolume``) and ``ijk_to_ras_world``, the 4x4 matrix
from homogeneous voxel indices ``(i, j, k, 1)`` to world RAS millimetres. "World" means after
the node's parent transform chain: what the user sees in the views. Only linear chains can
be folded into one matrix; a volume under a non-linear (grid, b-spline, thin-plate)
transform must be hardened first, and the error says so.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import vtk

from .vtk_arrays import fill_image_from_array, image_to_array, matrix_to_numpy, numpy_to_matrix


def node_to_world_matrix(node) -> np.ndarray:
    """The (4, 4) matrix from ``node``'s own RAS frame to world RAS (identity without a
    parent transform). Raises ValueError when the parent transform chain is not linear.
    """
    transform_node = node.GetParentTransformNode()
    if transform_node is None:
        return np.eye(4)
    if not transform_node.IsTransformToWorldLinear():
        raise ValueError(
            f"'{node.GetName()}' is under the non-linear transform "
            f"'{transform_node.GetName()}'. SlicerFM needs a regular voxel grid in world "
            "space: harden the transform on the node first (Data module: right-click the "
            "transform -> 'Harden transform'), which resamples it."
        )
    matrix = vtk.vtkMatrix4x4()
    transform_node.GetMatrixTransformToWorld(matrix)
    return matrix_to_numpy(matrix)


def world_to_node_matrix(node) -> np.ndarray:
    """Inverse of :func:`node_to_world_matrix`: world RAS -> the node's own RAS frame."""
    return np.linalg.inv(node_to_world_matrix(node))


def local_ijk_to_ras(volume_node) -> np.ndarray:
    """The node's own IJK->RAS (4, 4) matrix, ignoring parent transforms (same as
    ``GetIJKToRASMatrix``: origin, spacing and directions)."""
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    return matrix_to_numpy(matrix)


def world_ijk_to_ras(volume_node) -> np.ndarray:
    """IJK->world RAS (4, 4): the parent transform chain times the node's IJK->RAS.
    Raises ValueError for a non-linear parent transform (see :func:`node_to_world_matrix`).
    """
    return node_to_world_matrix(volume_node) @ local_ijk_to_ras(volume_node)


def volume_to_array(volume_node, copy: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """``(array_kji, ijk_to_ras_world)`` of a scalar volume node.

    array_kji: shape (K, J, I) (or (K, J, I, C) for a vector volume), the node's scalar
        type. A VIEW on the node's vtkImageData by default: it is only valid until the
        image data is replaced, and writing to it edits the volume (then call
        ``volume_node.GetImageData().Modified()``). Pass ``copy=True`` for an independent
        array.
    ijk_to_ras_world: float64 (4, 4), voxel index (i, j, k, 1) -> world RAS mm, including a
        linear parent transform chain; works for any (oblique) directions and anisotropic
        spacing. Note the index order differs from the array axes: array[k, j, i].
    Raises ValueError if the node has no image data or is under a non-linear transform.
    """
    image = volume_node.GetImageData()
    if image is None or image.GetPointData().GetScalars() is None:
        raise ValueError(f"the volume '{volume_node.GetName()}' has no voxel data")
    extent = image.GetExtent()
    if extent[0] != 0 or extent[2] != 0 or extent[4] != 0:
        # Slicer keeps volume extents starting at 0; the IJK->RAS origin is for index 0.
        raise ValueError(f"the volume '{volume_node.GetName()}' has an image extent {extent} "
                         "that does not start at 0 (call ShiftImageDataExtentToZeroStart)")
    ijk_to_ras = world_ijk_to_ras(volume_node)
    array = image_to_array(image)
    return (array.copy() if copy else array), ijk_to_ras


def update_volume_from_array(volume_node, array_kji: np.ndarray,
                             ijk_to_ras_local: Optional[np.ndarray] = None) -> None:
    """Replace the voxels of ``volume_node`` by a COPY of ``array_kji`` ((K, J, I), dtype
    kept, bool stored as uint8) and, when given, set its own IJK->RAS matrix (node frame,
    i.e. before any parent transform; use ``world_to_node_matrix(node) @ ijk_to_ras_world``
    to place a world geometry under a transformed node). Fires the node's modified events.
    """
    image = vtk.vtkImageData()
    fill_image_from_array(image, array_kji)
    was_modifying = volume_node.StartModify()
    if ijk_to_ras_local is not None:
        volume_node.SetIJKToRASMatrix(numpy_to_matrix(ijk_to_ras_local))
    volume_node.SetAndObserveImageData(image)
    volume_node.EndModify(was_modifying)


def volume_modality(volume_node, default: str = "unknown") -> str:
    """"CT" or "MR" from the node's ``DICOM.Modality`` attribute, else ``default``."""
    value = (volume_node.GetAttribute("DICOM.Modality") or "").upper()
    return value if value in ("CT", "MR") else default
