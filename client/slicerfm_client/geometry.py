"""Image geometry shared by client and server: the IJK-to-RAS matrix, its validation, the
content id, and boxes of voxels.

Convention (see also :mod:`slicerfm_client.protocol`): an image is a numpy array of shape
``(K, J, I)`` plus ``ijk_to_ras``, the 4x4 matrix taking homogeneous voxel indices
``(i, j, k, 1)`` to RAS millimetres. Its columns 0..2 are the i, j, k axis directions scaled
by the voxel size; column 3 is the RAS position of voxel (0, 0, 0).

A *box* (:data:`BBox`, ``bbox_kji`` on the wire) is ``((k0, j0, i0), (k1, j1, i1))``: start
inclusive, stop exclusive, like numpy slices. The changed box of every mask update, a
segment's stored block and the mirrors the Slicer module keeps are all handled with the
helpers at the end of this module.
"""

from __future__ import annotations

import hashlib
from typing import Optional, Sequence, Tuple

import numpy as np

ORTHOGONALITY_TOLERANCE = 1e-3


class GeometryError(ValueError):
    """The geometry cannot describe a voxel grid we can segment (message says why)."""


def as_matrix(ijk_to_ras) -> np.ndarray:
    """``ijk_to_ras`` as a float64 4x4 array; raises GeometryError when it is not one."""
    try:
        matrix = np.asarray(ijk_to_ras, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise GeometryError(f"ijk_to_ras is not a 4x4 matrix of numbers: {error}") from error
    if matrix.shape != (4, 4):
        raise GeometryError(f"ijk_to_ras must be 4x4, got shape {list(matrix.shape)}")
    return matrix


def validate_ijk_to_ras(ijk_to_ras) -> np.ndarray:
    """Check that the matrix describes a real voxel grid; return it as a 4x4 float64 array.

    Rejected: non-finite entries, a last row other than (0, 0, 0, 1), a zero-length or
    singular axis, and axes that are not orthogonal (sheared grids; resample first).
    """
    matrix = as_matrix(ijk_to_ras)
    if not np.isfinite(matrix).all():
        raise GeometryError("ijk_to_ras contains NaN or infinite values")
    if not np.allclose(matrix[3], [0, 0, 0, 1]):
        raise GeometryError("ijk_to_ras must be affine: its last row must be (0, 0, 0, 1)")
    axes = matrix[:3, :3]
    spacing = np.linalg.norm(axes, axis=0)
    if (spacing <= 0).any() or abs(np.linalg.det(axes)) < 1e-12 * float(np.prod(spacing)):
        raise GeometryError(
            f"the voxel axes are singular (spacing {spacing.round(6).tolist()} mm): "
            "the image has a zero-size or degenerate axis"
        )
    directions = axes / spacing
    gram = directions.T @ directions
    if np.abs(gram - np.eye(3)).max() > ORTHOGONALITY_TOLERANCE:
        raise GeometryError(
            "the voxel axes are not orthogonal (sheared grid); resample the volume onto an "
            "orthogonal grid first (e.g. harden the transform in Slicer and resample)"
        )
    return matrix


def spacing_kji(ijk_to_ras) -> Tuple[float, float, float]:
    """Voxel size in mm along the numpy axes (k, j, i)."""
    spacing_ijk = np.linalg.norm(as_matrix(ijk_to_ras)[:3, :3], axis=0)
    return tuple(float(s) for s in spacing_ijk[::-1])


def _fixed6(value: float) -> str:
    """printf ``%.6f`` of a float, with negative zero written as ``0.000000``."""
    text = f"{float(value):.6f}"
    return "0.000000" if text == "-0.000000" else text


def canonical_geometry(dtype: str, shape: Sequence[int], ijk_to_ras) -> bytes:
    """Canonical ASCII description of an image, easy to reproduce in any language::

        <dtype>|<K>,<J>,<I>|<m00>,<m01>,...,<m33>

    dtype is the numpy name ("int16"), K, J, I are decimal integers and the 16 matrix
    entries (row-major) are printf ``%.6f`` strings, "-0.000000" written as "0.000000".
    """
    matrix = as_matrix(ijk_to_ras)
    return "|".join([
        np.dtype(dtype).name,
        ",".join(str(int(s)) for s in shape),
        ",".join(_fixed6(v) for v in matrix.ravel()),
    ]).encode("ascii")


def image_id(dtype: str, shape: Sequence[int], ijk_to_ras, data_sha256: str) -> str:
    """Content id of an image: hex SHA-256 of ``canonical_geometry + "|" + data_sha256``,
    where data_sha256 is the hex SHA-256 of the raw C-order voxel bytes (little-endian).

    Two uploads of the same voxels on the same grid get the same id, so the server stores
    an image once and a client can ask whether it is already there before sending it.
    """
    digest = hashlib.sha256(canonical_geometry(dtype, shape, ijk_to_ras))
    digest.update(b"|" + data_sha256.encode("ascii"))
    return digest.hexdigest()


# -- boxes of voxels ------------------------------------------------------------------------

BBox = Tuple[Tuple[int, int, int], Tuple[int, int, int]]
"""``((k0, j0, i0), (k1, j1, i1))``: start inclusive, stop exclusive, voxel indices (k, j, i)."""


def tight_bbox(mask: np.ndarray) -> Optional[BBox]:
    """The smallest box holding every True voxel of a 3-D boolean array; None when empty."""
    if not mask.any():
        return None
    start, stop = [], []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        start.append(int(hits[0]))
        stop.append(int(hits[-1]) + 1)
    return tuple(start), tuple(stop)


def bbox_slices(bbox: BBox) -> Tuple[slice, slice, slice]:
    """Numpy slices selecting ``bbox`` of a ``(K, J, I)`` array."""
    return tuple(slice(a, b) for a, b in zip(bbox[0], bbox[1]))


def bbox_shape(bbox: BBox) -> Tuple[int, int, int]:
    """The ``(k, j, i)`` size of ``bbox`` (0 along an empty axis)."""
    return tuple(max(0, b - a) for a, b in zip(bbox[0], bbox[1]))


def clip_bbox(bbox: BBox, shape: Sequence[int]) -> BBox:
    """``bbox`` clipped to an array of ``shape`` (k, j, i)."""
    start = tuple(int(max(0, min(s, n))) for s, n in zip(bbox[0], shape))
    stop = tuple(int(max(0, min(s, n))) for s, n in zip(bbox[1], shape))
    return start, stop


def bbox_union(a: BBox, b: BBox) -> BBox:
    """The smallest box holding both ``a`` and ``b``."""
    return (tuple(min(x, y) for x, y in zip(a[0], b[0])),
            tuple(max(x, y) for x, y in zip(a[1], b[1])))


def bbox_intersection(a: BBox, b: BBox) -> Optional[BBox]:
    """The voxels ``a`` and ``b`` share, as a box; None when they share none."""
    start = tuple(max(x, y) for x, y in zip(a[0], b[0]))
    stop = tuple(min(x, y) for x, y in zip(a[1], b[1]))
    if any(s >= e for s, e in zip(start, stop)):
        return None
    return start, stop


def slices_within(inner: BBox, outer: BBox) -> Tuple[slice, slice, slice]:
    """Slices selecting ``inner`` in an array that covers ``outer`` (``inner`` inside it)."""
    return tuple(slice(a - o, b - o) for a, b, o in zip(inner[0], inner[1], outer[0]))
