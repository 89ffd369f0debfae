"""Moving voxel blocks between the volume's grid and a segmentation's labelmap grid.

Frames: a segmentation's binary labelmaps are ``vtkOrientedImageData`` whose image-to-world
matrix maps (i, j, k, 1) to the segmentation node's OWN RAS frame (before its parent
transform). The volume's grid is given by ``ijk_to_ras_world`` (to world RAS), so the
functions here take ``volume_ijk_to_seg`` = world->segmentation-frame @ ijk_to_ras_world.
A "lattice" is such an image-to-segmentation-frame (4, 4) matrix; voxels of one labelmap
layer all share it, and different layers (or the reference geometry) may differ in
spacing, direction and origin. Resampling is nearest-neighbour (vtkOrientedImageDataResample),
so values are codes, never interpolated.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from .volume_io import world_to_node_matrix
from .vtk_arrays import extent_is_empty, image_to_array, image_to_world, oriented_image

BINARY_LABELMAP = "Binary labelmap"


def volume_ijk_to_segmentation(segmentation_node, ijk_to_ras_world) -> np.ndarray:
    """Volume index (i, j, k, 1) -> the segmentation node's own RAS frame, (4, 4).
    Raises ValueError when the segmentation is under a non-linear transform."""
    return world_to_node_matrix(segmentation_node) @ np.asarray(ijk_to_ras_world, np.float64)


def segment_labelmap(segmentation_node, segment_id: str):
    """The segment's binary labelmap (the ``vtkOrientedImageData`` of its layer, shared
    with the other segments of that layer). Raises ValueError for an unknown segment or a
    segmentation whose source representation is not a binary labelmap."""
    segmentation = segmentation_node.GetSegmentation()
    segment = segmentation.GetSegment(segment_id)
    if segment is None:
        raise ValueError(f"segmentation '{segmentation_node.GetName()}' has no segment "
                         f"with ID {segment_id!r}")
    if segmentation.GetSourceRepresentationName() != BINARY_LABELMAP:
        raise ValueError(
            f"segmentation '{segmentation_node.GetName()}' stores "
            f"'{segmentation.GetSourceRepresentationName()}' as its source representation; "
            "SlicerFM edits binary labelmaps: open it in the Segment Editor once (or call "
            "segmentationNode.SetSourceRepresentationToBinaryLabelmap())")
    return segment.GetRepresentation(BINARY_LABELMAP)


def reference_lattice(segmentation_node) -> Optional[np.ndarray]:
    """The image-to-segmentation-frame matrix of the segmentation's reference image
    geometry (the grid the Segment Editor paints on), or None when it has none."""
    from slicer import vtkOrientedImageData, vtkSegmentationConverter

    geometry = segmentation_node.GetSegmentation().GetConversionParameter(
        vtkSegmentationConverter.GetReferenceImageGeometryParameterName())
    if not geometry:
        return None
    image = vtkOrientedImageData()
    if not vtkSegmentationConverter.DeserializeImageGeometry(geometry, image, False):
        return None
    return image_to_world(image)


def segment_lattice(segmentation_node, segment_id: str, fallback: np.ndarray) -> np.ndarray:
    """The grid to write ``segment_id`` on, so that Slicer never has to resample the layer:
    its layer's own lattice when the layer holds voxels, else the segmentation's reference
    geometry, else ``fallback`` (the volume's grid in the segmentation frame)."""
    labelmap = segment_labelmap(segmentation_node, segment_id)
    if labelmap is not None and not extent_is_empty(labelmap.GetExtent()):
        return image_to_world(labelmap)
    reference = reference_lattice(segmentation_node)
    return fallback if reference is None else reference


def box_extent_on_lattice(lattice: np.ndarray, volume_ijk_to_seg: np.ndarray,
                          bbox_kji) -> Tuple[int, int, int, int, int, int]:
    """VTK extent (i0, i1, j0, j1, k0, k1) of ``lattice`` voxels that may have their centre
    inside the volume voxels ``bbox_kji`` ([[k0, j0, i0], [k1, j1, i1]], stop exclusive)."""
    (k0, j0, i0), (k1, j1, i1) = bbox_kji
    corners = np.array([[i, j, k, 1.0] for i in (i0 - 0.5, i1 - 0.5)
                        for j in (j0 - 0.5, j1 - 0.5) for k in (k0 - 0.5, k1 - 0.5)])
    to_lattice = np.linalg.inv(lattice) @ volume_ijk_to_seg
    ijk = (to_lattice @ corners.T)[:3].T
    low = np.floor(ijk.min(axis=0) + 0.5 - 1e-6).astype(int)
    high = np.ceil(ijk.max(axis=0) - 0.5 + 1e-6).astype(int)
    return (int(low[0]), int(high[0]), int(low[1]), int(high[1]), int(low[2]), int(high[2]))


def resample_codes(codes_kji: np.ndarray, source_ijk_to_seg: np.ndarray,
                   source_start_ijk: Sequence[int], lattice: np.ndarray,
                   extent: Sequence[int]) -> np.ndarray:
    """Nearest-neighbour resampling of a uint8 code block onto ``lattice`` over ``extent``.

    codes_kji: (K, J, I) uint8 block whose voxel (0, 0, 0) is index ``source_start_ijk``
        (i, j, k) of the grid ``source_ijk_to_seg``; code 0 is reserved for "outside".
    Returns the (K', J', I') uint8 codes of the ``extent`` voxels of ``lattice``; voxels
    whose centre falls outside the block get 0.
    """
    i0, j0, k0 = (int(v) for v in source_start_ijk)
    k_size, j_size, i_size = codes_kji.shape
    source = oriented_image(source_ijk_to_seg,
                            (i0, i0 + i_size - 1, j0, j0 + j_size - 1, k0, k0 + k_size - 1),
                            codes_kji.astype(np.uint8, copy=False))
    return _resample_nearest(source, lattice, extent, "the mask onto the segmentation's grid")


def resample_labelmap(labelmap, volume_ijk_to_seg: np.ndarray,
                      extent: Sequence[int]) -> np.ndarray:
    """A segmentation layer resampled (nearest) onto the volume grid over ``extent``
    (i0, i1, j0, j1, k0, k1); returns the (K, J, I) label values (0 outside the layer)."""
    return _resample_nearest(labelmap, volume_ijk_to_seg, extent, "the segment onto the volume's grid")


def _resample_nearest(source, lattice: np.ndarray, extent: Sequence[int], what: str) -> np.ndarray:
    """``source`` (vtkOrientedImageData) resampled (nearest) onto ``lattice`` over ``extent``;
    the (K, J, I) values; RuntimeError naming ``what`` when VTK fails."""
    from slicer import vtkOrientedImageData, vtkOrientedImageDataResample

    output = vtkOrientedImageData()
    if not vtkOrientedImageDataResample.ResampleOrientedImageToReferenceOrientedImage(
            source, oriented_image(lattice, extent), output, False, False):
        raise RuntimeError(f"resampling {what} failed")
    return _array_on_extent(output, extent)


def _array_on_extent(image, extent: Sequence[int]) -> np.ndarray:
    """``image``'s scalars as a (K, J, I) copy covering exactly ``extent`` (zero-padded)."""
    i0, i1, j0, j1, k0, k1 = extent
    result = np.zeros((k1 - k0 + 1, j1 - j0 + 1, i1 - i0 + 1),
                      dtype=np.int64 if image.GetPointData().GetScalars() is None
                      else image_to_array(image).dtype)
    if image.GetPointData().GetScalars() is None or extent_is_empty(image.GetExtent()):
        return result
    a0, a1, b0, b1, c0, c1 = image.GetExtent()
    data = image_to_array(image)
    lo = np.maximum([c0, b0, a0], [k0, j0, i0])
    hi = np.minimum([c1, b1, a1], [k1, j1, i1])
    if (hi < lo).any():
        return result
    src = tuple(slice(low - o, h - o + 1) for low, h, o in zip(lo, hi, (c0, b0, a0)))
    dst = tuple(slice(low - o, h - o + 1) for low, h, o in zip(lo, hi, (k0, j0, i0)))
    result[dst] = data[src]
    return result
