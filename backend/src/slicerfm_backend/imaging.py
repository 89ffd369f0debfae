"""Images on the server: validation of what arrives, and SimpleITK <-> wire geometry.

Wire geometry is ``ijk_to_ras`` on a numpy ``(K, J, I)`` array (see
:mod:`slicerfm_client.geometry`). SimpleITK works in LPS with (i, j, k) index order; the
conversions below are the only place where the two meet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Set, Tuple

import numpy as np

from slicerfm_client import geometry, protocol, wire

from .engines.base import ImageData
from .errors import invalid, too_large
from .settings import Settings

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class StoredImage:
    """An image held by the server; ``array`` is read-only and shared between sessions.
    ``owners``: the identities (``Identity.owner``) that uploaded it and may use it."""

    image_id: str
    array: np.ndarray
    ijk_to_ras: np.ndarray
    modality: str
    owners: Set[str] = field(default_factory=set)

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)

    def as_engine_input(self) -> ImageData:
        return ImageData(
            image_id=self.image_id,
            array=self.array,
            spacing_kji=geometry.spacing_kji(self.ijk_to_ras),
            ijk_to_ras=self.ijk_to_ras,
            modality=self.modality,
        )


def check_image_header(header: wire.Header, settings: Settings) -> Tuple[np.ndarray, str]:
    """Validate an upload's header before any voxel is allocated; return (ijk_to_ras, modality).

    Raises DomainError ``too_large`` for sizes over the limits and ``invalid`` for unusable dtype, shape or geometry.
    """
    if header.dtype not in protocol.IMAGE_DTYPES:
        raise invalid(
            f"unsupported voxel type {header.dtype}; send one of {', '.join(protocol.IMAGE_DTYPES)}"
        )
    if len(header.shape) != 3:
        raise invalid(f"an image must be 3-D (K, J, I); got shape {list(header.shape)}")
    if min(header.shape) < 1:
        raise invalid(f"the image has an empty dimension: shape {list(header.shape)}")
    if max(header.shape) > settings.max_dimension:
        raise too_large(
            f"image shape {list(header.shape)} exceeds this server's limit of "
            f"{settings.max_dimension} voxels per axis (SLICERFM_MAX_DIMENSION); crop or resample it"
        )
    voxels = int(np.prod(header.shape, dtype=np.int64))
    if voxels > settings.max_voxels:
        raise too_large(
            f"image of {voxels:,} voxels exceeds this server's limit of {settings.max_voxels:,} "
            "(SLICERFM_MAX_VOXELS); crop or resample it"
        )
    try:
        matrix = geometry.validate_ijk_to_ras(header.meta.get("ijk_to_ras"))
    except geometry.GeometryError as error:
        raise invalid(f"bad image geometry: {error}") from error
    try:
        modality = protocol.modality(header.meta.get("modality", protocol.MODALITY_OTHER))
    except ValueError as error:
        raise invalid(str(error)) from None
    return matrix, modality


def check_finite(array: np.ndarray, slab_voxels: int = 1 << 22) -> None:
    """Raise 422 when a float image holds NaN or infinite voxels (checked slab by slab)."""
    if array.dtype.kind != "f":
        return
    flat = array.reshape(-1)
    for start in range(0, flat.size, slab_voxels):
        block = flat[start : start + slab_voxels]
        if not np.isfinite(block).all():
            bad = int(start + np.flatnonzero(~np.isfinite(block))[0])
            k, j, i = np.unravel_index(bad, array.shape)
            raise invalid(
                f"the image contains NaN or infinite voxels (first at k={k}, j={j}, i={i}); "
                "replace them (e.g. with the minimum value) before segmenting"
            )


def ijk_to_ras_from_sitk(image) -> np.ndarray:
    """The wire geometry of a SimpleITK image (whose array is ``GetArrayFromImage``: K, J, I)."""
    spacing = np.asarray(image.GetSpacing(), dtype=np.float64)
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    ijk_to_lps = np.eye(4)
    ijk_to_lps[:3, :3] = direction * spacing
    ijk_to_lps[:3, 3] = image.GetOrigin()
    return LPS_TO_RAS @ ijk_to_lps


def sitk_geometry_from_ijk_to_ras(ijk_to_ras) -> Tuple[tuple, tuple, tuple]:
    """``(spacing, origin, direction)`` in SimpleITK's LPS convention for a wire geometry."""
    ijk_to_lps = LPS_TO_RAS @ geometry.as_matrix(ijk_to_ras)
    axes = ijk_to_lps[:3, :3]
    spacing = np.linalg.norm(axes, axis=0)
    direction = axes / spacing
    return tuple(spacing.tolist()), tuple(ijk_to_lps[:3, 3].tolist()), tuple(direction.ravel().tolist())


def read_image(path: str):
    """Read an image file with SimpleITK; returns ``(array K,J,I, ijk_to_ras, sitk_image)``."""
    import SimpleITK as sitk

    image = sitk.ReadImage(str(path))
    if image.GetDimension() != 3:
        raise ValueError(f"{path}: expected a 3-D image, got {image.GetDimension()}-D")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(f"{path}: expected a scalar image, got {image.GetNumberOfComponentsPerPixel()} components")
    return sitk.GetArrayFromImage(image), ijk_to_ras_from_sitk(image), image


def check_prompt_inside(point_kji, shape) -> None:
    """Raise 422 unless ``point_kji`` is 3 finite JSON numbers inside the image (half a
    voxel of slack); strings and booleans are refused, not converted."""
    numbers = isinstance(point_kji, (list, tuple)) and len(point_kji) == 3 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in point_kji)
    coords = np.asarray(point_kji, dtype=np.float64) if numbers else np.full(1, np.nan)
    if coords.shape != (3,) or not np.isfinite(coords).all():
        raise invalid(f"a point must be 3 finite numbers (k, j, i); got {point_kji!r}")
    if (coords < -0.5).any() or (coords > np.asarray(shape) - 0.5).any():
        raise invalid(
            f"the point (k, j, i) = {coords.round(2).tolist()} lies outside the image of shape "
            f"{list(shape)}; prompts are voxel coordinates of the uploaded image"
        )
