"""numpy <-> VTK conversions that need no Slicer application (no ``slicer.util``).

Conventions used throughout SlicerFMLib:

* numpy voxel arrays are in ``(k, j, i)`` order (slice, row, column), exactly what
  ``slicer.util.arrayFromVolume`` gives; VTK extents and indices are ``(i, j, k)``.
* A 4x4 matrix is a float64 numpy array mapping homogeneous column vectors, e.g. an
  IJK->RAS matrix maps ``(i, j, k, 1)`` to RAS millimetres.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import vtk
from vtk.util import numpy_support


def matrix_to_numpy(vtk_matrix: vtk.vtkMatrix4x4) -> np.ndarray:
    """A ``vtkMatrix4x4`` as a new float64 (4, 4) numpy array (row-major, same meaning)."""
    return np.array([[vtk_matrix.GetElement(r, c) for c in range(4)] for r in range(4)],
                    dtype=np.float64)


def numpy_to_matrix(array) -> vtk.vtkMatrix4x4:
    """A new ``vtkMatrix4x4`` holding the (4, 4) array ``array``."""
    array = np.asarray(array, dtype=np.float64)
    if array.shape != (4, 4):
        raise ValueError(f"expected a 4x4 matrix, got shape {array.shape}")
    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(array[r, c]))
    return matrix


def image_to_array(image: vtk.vtkImageData) -> np.ndarray:
    """The scalars of ``image`` as a numpy VIEW of shape (K, J, I) (or (K, J, I, C)).

    K, J, I are the extent sizes along k, j, i. The view shares memory with the VTK array:
    it stays valid only while the image keeps the same scalars, and writing to it changes
    the image (call ``image.Modified()`` afterwards). Copy it to keep it.
    """
    scalars = image.GetPointData().GetScalars()
    x0, x1, y0, y1, z0, z1 = image.GetExtent()
    shape_kji = (z1 - z0 + 1, y1 - y0 + 1, x1 - x0 + 1)
    if scalars is None or min(shape_kji) <= 0:
        return np.zeros((max(shape_kji[0], 0), max(shape_kji[1], 0), max(shape_kji[2], 0)),
                        dtype=np.uint8)
    array = numpy_support.vtk_to_numpy(scalars)
    components = scalars.GetNumberOfComponents()
    if components == 1:
        return array.reshape(shape_kji)
    return array.reshape(shape_kji + (components,))


def fill_image_from_array(image: vtk.vtkImageData, array_kji: np.ndarray,
                          start_ijk: Sequence[int] = (0, 0, 0)) -> vtk.vtkImageData:
    """Set ``image``'s extent to ``array_kji``'s shape starting at ``start_ijk`` and copy
    the array in as its scalars (shape (K, J, I) or (K, J, I, C); the dtype is kept; bool
    becomes uint8). Origin, spacing and directions of ``image`` are left as they are.
    Returns ``image``.
    """
    array = np.asarray(array_kji)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if array.ndim not in (3, 4):
        raise ValueError(f"expected a (K, J, I) or (K, J, I, C) array, got shape {array.shape}")
    k_size, j_size, i_size = array.shape[:3]
    components = 1 if array.ndim == 3 else array.shape[3]
    flat = np.ascontiguousarray(array).reshape(-1, components) if components > 1 \
        else np.ascontiguousarray(array).ravel()
    vtk_array = numpy_support.numpy_to_vtk(flat, deep=True)
    i0, j0, k0 = (int(v) for v in start_ijk)
    image.SetExtent(i0, i0 + i_size - 1, j0, j0 + j_size - 1, k0, k0 + k_size - 1)
    image.GetPointData().SetScalars(vtk_array)
    image.Modified()
    return image


def oriented_image(ijk_to_ras, extent_ijk: Sequence[int], array_kji: np.ndarray = None,
                   scalar_type: int = vtk.VTK_UNSIGNED_CHAR):
    """A new ``vtkOrientedImageData`` with image-to-world matrix ``ijk_to_ras`` (4x4,
    index (i, j, k, 1) -> the frame the caller means, e.g. a segmentation's RAS frame) and
    extent ``(i0, i1, j0, j1, k0, k1)`` (inclusive). Scalars are ``array_kji`` (shape of the
    extent, (K, J, I)) when given, else zeros of ``scalar_type``.
    """
    from slicer import vtkOrientedImageData  # import here: keeps this module importable alone

    image = vtkOrientedImageData()
    image.SetImageToWorldMatrix(numpy_to_matrix(ijk_to_ras))
    i0, i1, j0, j1, k0, k1 = (int(v) for v in extent_ijk)
    if array_kji is None:
        image.SetExtent(i0, i1, j0, j1, k0, k1)
        image.AllocateScalars(scalar_type, 1)
        image.GetPointData().GetScalars().Fill(0)
        return image
    expected = (k1 - k0 + 1, j1 - j0 + 1, i1 - i0 + 1)
    if tuple(np.shape(array_kji)[:3]) != expected:
        raise ValueError(f"array shape {np.shape(array_kji)} does not match the extent "
                         f"{tuple(extent_ijk)} (expected (K, J, I) = {expected})")
    return fill_image_from_array(image, array_kji, (i0, j0, k0))


def image_to_world(image) -> np.ndarray:
    """The image-to-world matrix of a ``vtkOrientedImageData`` as a (4, 4) numpy array."""
    matrix = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(matrix)
    return matrix_to_numpy(matrix)


def extent_is_empty(extent: Sequence[int]) -> bool:
    """True when a VTK extent ``(i0, i1, j0, j1, k0, k1)`` holds no voxel."""
    return extent[0] > extent[1] or extent[2] > extent[3] or extent[4] > extent[5]
