"""Registration results in the Slicer scene: grid transform nodes, warped volumes, carried
segments.

Convention (the backend's, see ``slicerfm_backend.registration.base``): a displacement
field ``d`` with vectors in RAS mm lives on a grid in the FIXED image's world space,
``ijk_to_ras`` ((4, 4), voxel (i, j, k, 1) -> world RAS mm), and maps the fixed point ``x``
to the moving point ``x + d(x)`` (both world RAS mm). That is exactly Slicer's transform
FROM parent of a grid transform node placed above the moving volume: to show the moving
volume, Slicer maps every world (fixed) point through the transform from parent to the
volume's own frame, so the moving volume appears resampled onto the fixed one.

* :func:`create_grid_transform_node` builds a ``vtkMRMLGridTransformNode`` holding a
  ``vtkOrientedGridTransform`` (displacements on an oriented, anisotropic grid, linear
  interpolation) as its transform from parent.
* :func:`apply_to_node` puts a volume (or any transformable node) under it;
  :func:`place_registration` does both for the moving volume, keeping the moving volume's
  own linear parent transforms: the grid is then expressed in that parent's frame.
* :func:`resample_volume` "hardens": a NEW scalar volume on the fixed grid holding the
  moving volume as displayed (linear or nearest interpolation).
* :func:`carry_segments` copies a segmentation drawn on the moving scan onto the fixed
  grid through the registration (nearest neighbour), as a new segmentation node whose
  labelmaps lie on the fixed volume's grid: ready for the interactive tools.

Arrays are numpy ``(k, j, i)``; vector fields ``(K, J, I, 3)`` with components (R, A, S).
"""

from __future__ import annotations

from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np
import vtk

from .editor_settings import LOCK_TAG
from .labelmap_grid import segment_labelmap
from .segment_io import replace_segment
from .segment_sync import tight_bbox
from .volume_io import local_ijk_to_ras, node_to_world_matrix
from .vtk_arrays import (extent_is_empty, fill_image_from_array, image_to_array,
                         image_to_world, numpy_to_matrix, oriented_image)

LINEAR, NEAREST = "linear", "nearest"
#: tag on the transform node: "fixed->moving RAS displacement" (what the node holds)
CONVENTION_ATTRIBUTE = "SlicerFM.RegistrationConvention"
CONVENTION = "fixed RAS point x -> moving RAS point x + d(x); transform from parent"


# -- the grid transform ------------------------------------------------------------------

def grid_geometry(ijk_to_ras) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(origin (3,), spacing (3,), directions (3, 3))`` of a grid's (4, 4) IJK->RAS matrix;
    the columns of ``directions`` are the unit i, j, k axes in RAS. Raises ValueError for a
    matrix that is not a grid (singular, sheared, or not affine)."""
    matrix = np.asarray(ijk_to_ras, dtype=np.float64)
    if matrix.shape != (4, 4) or not np.allclose(matrix[3], [0, 0, 0, 1]):
        raise ValueError(f"ijk_to_ras must be an affine (4, 4) matrix; got {matrix.tolist()}")
    axes = matrix[:3, :3]
    spacing = np.linalg.norm(axes, axis=0)
    if not np.all(spacing > 1e-9):
        raise ValueError(f"ijk_to_ras has a zero voxel spacing: {spacing.tolist()}")
    directions = axes / spacing
    if not np.allclose(directions.T @ directions, np.eye(3), atol=1e-5):
        raise ValueError("ijk_to_ras is sheared (its axes are not perpendicular); a grid "
                         "transform needs an orthogonal grid")
    return matrix[:3, 3].copy(), spacing, directions


def _check_field(vectors_ras) -> np.ndarray:
    vectors = np.asarray(vectors_ras)
    if vectors.ndim != 4 or vectors.shape[3] != 3 or min(vectors.shape[:3]) < 1:
        raise ValueError(f"a displacement field must have shape (K, J, I, 3); got {vectors.shape}")
    if not np.isfinite(vectors).all():
        raise ValueError("the displacement field holds NaN or infinite vectors")
    # float32 stays float32: VTK's grid transform reads it, and a CT-sized field in double
    # precision would need twice the memory for nothing
    return vectors if vectors.dtype in (np.float32, np.float64) else vectors.astype(np.float32)


def displacement_transform(vectors_ras, ijk_to_ras):
    """A ``vtkOrientedGridTransform`` mapping ``x`` -> ``x + d(x)`` (linear interpolation
    between grid points; outside the grid the nearest edge displacement is used). The
    vectors are copied once into VTK, in their own precision (float32 or float64).

    vectors_ras: (K, J, I, 3) displacements (RAS mm) at the grid points of ``ijk_to_ras``
    ((4, 4), voxel (i, j, k, 1) -> RAS mm; oblique and anisotropic grids are fine).
    """
    from slicer import vtkOrientedGridTransform

    vectors = _check_field(vectors_ras)
    origin, spacing, directions = grid_geometry(ijk_to_ras)
    grid = vtk.vtkImageData()
    grid.SetOrigin(*origin)
    grid.SetSpacing(*spacing)
    fill_image_from_array(grid, vectors)
    direction_matrix = np.eye(4)
    direction_matrix[:3, :3] = directions
    transform = vtkOrientedGridTransform()
    transform.SetDisplacementGridData(grid)
    transform.SetGridDirectionMatrix(numpy_to_matrix(direction_matrix))
    transform.SetInterpolationModeToLinear()
    transform.SetDisplacementScale(1.0)
    transform.SetDisplacementShift(0.0)
    return transform


def field_in_frame(vectors_ras, ijk_to_ras_world, world_to_frame) -> Tuple[np.ndarray, np.ndarray]:
    """The same mapping expressed in another frame related to world by the affine
    ``world_to_frame`` (4, 4): returns ``(vectors (K, J, I, 3), ijk_to_frame (4, 4))`` such
    that ``y -> y + v`` in the frame equals ``x -> x + d(x)`` in world (y = A x + t)."""
    world_to_frame = np.asarray(world_to_frame, dtype=np.float64)
    vectors = _check_field(vectors_ras)
    linear = world_to_frame[:3, :3]
    if np.allclose(linear, np.eye(3), atol=1e-12):
        moved = vectors
    else:
        moved = vectors @ linear.T.astype(vectors.dtype)
    return moved, world_to_frame @ np.asarray(ijk_to_ras_world, dtype=np.float64)


def create_grid_transform_node(scene, vectors_ras, ijk_to_ras_world, name: str = "Registration",
                               parent=None):
    """A new ``vtkMRMLGridTransformNode`` whose transform FROM parent maps the fixed world
    point ``x`` to the moving world point ``x + d(x)``.

    vectors_ras: (K, J, I, 3) float, RAS mm; ijk_to_ras_world: (4, 4) grid in world RAS.
    parent: an optional transform node with a LINEAR chain to world (e.g. the moving
    volume's own parent): the node is placed under it and its grid and vectors are
    expressed in that parent's frame, so that nodes under it still land on ``x + d(x)``
    in world. Raises ValueError for a non-linear parent or a grid that becomes sheared.
    """
    world_to_frame = np.eye(4)
    if parent is not None:
        if not parent.IsTransformToWorldLinear():
            raise ValueError(f"the transform '{parent.GetName()}' is not linear: harden it "
                             "first, then register")
        to_world = vtk.vtkMatrix4x4()
        parent.GetMatrixTransformToWorld(to_world)
        world_to_frame = np.linalg.inv(np.array([[to_world.GetElement(r, c) for c in range(4)]
                                                 for r in range(4)]))
    vectors, ijk_to_frame = field_in_frame(vectors_ras, ijk_to_ras_world, world_to_frame)
    transform = displacement_transform(vectors, ijk_to_frame)
    node = scene.AddNewNodeByClass("vtkMRMLGridTransformNode", name)
    node.SetAndObserveTransformFromParent(transform)
    node.SetAttribute(CONVENTION_ATTRIBUTE, CONVENTION)
    if parent is not None:
        node.SetAndObserveTransformNodeID(parent.GetID())
    return node


def apply_to_node(transform_node, node) -> None:
    """Put ``node`` (volume, segmentation, markups...) under ``transform_node``. The node
    must currently sit where the transform node sits (same parent, or none), otherwise the
    registration would be applied on top of a different frame: ValueError."""
    if node.GetParentTransformNode() is transform_node:
        return
    parent = transform_node.GetParentTransformNode()
    current = node.GetParentTransformNode()
    if current is not parent:
        raise ValueError(
            f"'{node.GetName()}' is under the transform "
            f"'{current.GetName() if current else 'none'}' but the registration "
            f"'{transform_node.GetName()}' was computed for nodes under "
            f"'{parent.GetName() if parent else 'none'}'")
    node.SetAndObserveTransformNodeID(transform_node.GetID())


def place_registration(moving_node, vectors_ras, ijk_to_ras_world,
                       name: str = "Registration", apply: bool = True):
    """Create the grid transform node for a registration of ``moving_node`` (under the
    moving node's own linear parent, if any) and, with ``apply``, put the moving node under
    it so it is shown aligned with the fixed volume. Returns the transform node."""
    node = create_grid_transform_node(moving_node.GetScene(), vectors_ras, ijk_to_ras_world,
                                      name, moving_node.GetParentTransformNode())
    if apply:
        apply_to_node(node, moving_node)
    return node


# -- mappings between frames -----------------------------------------------------------------

def _in_chain(node, transform_node) -> bool:
    current = node.GetParentTransformNode()
    while current is not None:
        if current is transform_node:
            return True
        current = current.GetParentTransformNode()
    return False


def _between(source, target) -> vtk.vtkGeneralTransform:
    from slicer import vtkMRMLTransformNode

    transform = vtk.vtkGeneralTransform()
    vtkMRMLTransformNode.GetTransformBetweenNodes(source, target, transform)
    return transform


def _chain(*transforms) -> vtk.vtkGeneralTransform:
    """``transforms`` applied one after the other (first one first)."""
    result = vtk.vtkGeneralTransform()
    result.PostMultiply()
    for transform in transforms:
        result.Concatenate(transform)
    return result


def _matrix_transform(matrix) -> vtk.vtkTransform:
    transform = vtk.vtkTransform()
    transform.SetMatrix(numpy_to_matrix(matrix))
    return transform


def fixed_to_moving_world(transform_node) -> vtk.vtkGeneralTransform:
    """World (fixed) point -> the moving point in the moving scan's world, through the
    registration node: ``x -> x + d(x)``, whatever linear parent the node sits under."""
    return _chain(_between(None, transform_node),
                  _between(transform_node.GetParentTransformNode(), None))


def world_to_source_frame(node, transform_node=None) -> vtk.vtkGeneralTransform:
    """Fixed world point -> ``node``'s own frame (its coordinates before its parents).
    Without ``transform_node``: through ``node``'s parent chain as it is. With one, and the
    node not under it: the node is treated as lying on the moving scan, so the registration
    is applied first (``x + d(x)``), then its own chain."""
    own = _between(None, node.GetParentTransformNode())
    if transform_node is None or _in_chain(node, transform_node):
        return own
    return _chain(fixed_to_moving_world(transform_node), own)


# -- resampling onto the fixed grid ------------------------------------------------------------

def _index_image(scalars_source) -> vtk.vtkImageData:
    """A vtkImageData sharing ``scalars_source``'s scalars and extent, with origin 0 and
    spacing 1, so that point coordinates are voxel indices."""
    image = vtk.vtkImageData()
    image.SetExtent(scalars_source.GetExtent())
    image.SetOrigin(0.0, 0.0, 0.0)
    image.SetSpacing(1.0, 1.0, 1.0)
    image.GetPointData().SetScalars(scalars_source.GetPointData().GetScalars())
    return image


def resample_image(source_image, output_index_to_source_index, shape_kji: Sequence[int],
                   interpolation: str = LINEAR, background: float = 0.0) -> np.ndarray:
    """Sample ``source_image`` (vtkImageData; its voxel indices are what the transform
    gives) at every voxel of an output grid of ``shape_kji`` (K, J, I).

    output_index_to_source_index: vtkAbstractTransform from output (i, j, k) to source
    (i, j, k) indices (may be non-linear). interpolation: "linear" or "nearest".
    Returns a (K, J, I) array of the source's scalar type; ``background`` outside it.
    """
    if interpolation not in (LINEAR, NEAREST):
        raise ValueError(f"interpolation must be '{LINEAR}' or '{NEAREST}', not {interpolation!r}")
    k_size, j_size, i_size = (int(v) for v in shape_kji)
    if min(k_size, j_size, i_size) < 1:
        raise ValueError(f"the output grid is empty: shape {tuple(shape_kji)}")
    reslice = vtk.vtkImageReslice()
    reslice.SetInputData(_index_image(source_image))
    reslice.SetResliceTransform(output_index_to_source_index)
    reslice.SetOutputOrigin(0.0, 0.0, 0.0)
    reslice.SetOutputSpacing(1.0, 1.0, 1.0)
    reslice.SetOutputExtent(0, i_size - 1, 0, j_size - 1, 0, k_size - 1)
    if interpolation == NEAREST:
        reslice.SetInterpolationModeToNearestNeighbor()
    else:
        reslice.SetInterpolationModeToLinear()
    reslice.SetBackgroundLevel(float(background))
    reslice.Update()
    return image_to_array(reslice.GetOutput()).copy()


def _index_mapping(output_ijk_to_ras_world, world_to_source, source_index_to_frame):
    return _chain(_matrix_transform(output_ijk_to_ras_world), world_to_source,
                  _matrix_transform(np.linalg.inv(source_index_to_frame)))


def resample_volume(volume_node, shape_kji: Sequence[int], ijk_to_ras_world, name: str,
                    transform_node=None, interpolation: str = LINEAR, background=None):
    """Harden: a NEW scalar volume node on the grid ``shape_kji`` / ``ijk_to_ras_world``
    (typically the fixed volume's; world RAS) holding ``volume_node`` as shown in world
    (through its parent chain, registration included when it is under it). With
    ``transform_node`` and the volume not under it, the registration is applied as if it
    were. ``background`` (default: the volume's minimum) fills points outside the volume.
    The new node has no parent transform and keeps the volume's DICOM modality attribute.
    Cost: VTK maps every output voxel through the transform chain (about 0.5 us a voxel on
    2 cores: ~5 s for 10 M voxels).
    """
    from .volume_io import update_volume_from_array

    image = volume_node.GetImageData()
    if image is None or image.GetPointData().GetScalars() is None:
        raise ValueError(f"the volume '{volume_node.GetName()}' has no voxel data")
    if image.GetNumberOfScalarComponents() != 1:
        raise ValueError(f"'{volume_node.GetName()}' is not a scalar volume")
    if background is None:
        background = float(image.GetScalarRange()[0])
    mapping = _index_mapping(ijk_to_ras_world, world_to_source_frame(volume_node, transform_node),
                             local_ijk_to_ras(volume_node))
    values = resample_image(image, mapping, shape_kji, interpolation, background)
    output = volume_node.GetScene().AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    update_volume_from_array(output, values, np.asarray(ijk_to_ras_world, dtype=np.float64))
    modality = volume_node.GetAttribute("DICOM.Modality")
    if modality:
        output.SetAttribute("DICOM.Modality", modality)
    output.CreateDefaultDisplayNodes()
    source_display = volume_node.GetDisplayNode()
    if source_display is not None and output.GetDisplayNode() is not None:
        output.GetDisplayNode().SetAutoWindowLevel(False)
        output.GetDisplayNode().SetWindowLevel(source_display.GetWindow(), source_display.GetLevel())
    return output


# -- carrying segments ------------------------------------------------------------------------

def set_reference_geometry(segmentation_node, shape_kji: Sequence[int], ijk_to_ras_world) -> None:
    """Make the grid ``shape_kji`` / ``ijk_to_ras_world`` (world RAS) the segmentation's
    reference geometry (the grid the Segment Editor and SlicerFM paint on)."""
    from slicer import vtkSegmentationConverter

    frame = np.linalg.inv(node_to_world_matrix(segmentation_node)) @ np.asarray(ijk_to_ras_world)
    k_size, j_size, i_size = (int(v) for v in shape_kji)
    geometry = oriented_image(frame, (0, i_size - 1, 0, j_size - 1, 0, k_size - 1))
    segmentation_node.GetSegmentation().SetConversionParameter(
        vtkSegmentationConverter.GetReferenceImageGeometryParameterName(),
        vtkSegmentationConverter.SerializeImageGeometry(geometry))


def segment_ids(segmentation_node) -> List[str]:
    segmentation = segmentation_node.GetSegmentation()
    return [segmentation.GetNthSegmentID(n) for n in range(segmentation.GetNumberOfSegments())]


def resample_segments(segmentation_node, shape_kji: Sequence[int], ijk_to_ras_world,
                      transform_node=None, ids: Optional[Iterable[str]] = None) -> dict:
    """``{segment_id: bool (K, J, I)}``: each segment resampled (nearest neighbour) onto the
    grid ``shape_kji`` / ``ijk_to_ras_world`` (world RAS). With ``transform_node`` and the
    segmentation not under it, the segmentation is taken as lying on the moving scan and
    carried through the registration (see :func:`world_to_source_frame`). A labelmap layer
    shared by several segments is resampled once."""
    world_to_source = world_to_source_frame(segmentation_node, transform_node)
    layers = {}
    masks = {}
    for segment_id in (segment_ids(segmentation_node) if ids is None else list(ids)):
        labelmap = segment_labelmap(segmentation_node, segment_id)
        if labelmap is None or extent_is_empty(labelmap.GetExtent()) \
                or labelmap.GetPointData().GetScalars() is None:
            masks[segment_id] = np.zeros(tuple(int(s) for s in shape_kji), dtype=bool)
            continue
        key = labelmap.__this__
        if key not in layers:
            mapping = _index_mapping(ijk_to_ras_world, world_to_source, image_to_world(labelmap))
            layers[key] = resample_image(labelmap, mapping, shape_kji, NEAREST, 0)
        label = segmentation_node.GetSegmentation().GetSegment(segment_id).GetLabelValue()
        masks[segment_id] = layers[key] == label
    return masks


def carry_segments(segmentation_node, transform_node, shape_kji: Sequence[int], ijk_to_ras_world,
                   name: Optional[str] = None, ids: Optional[Iterable[str]] = None):
    """A NEW segmentation node holding the segments of ``segmentation_node`` (drawn on the
    moving scan) carried through the registration ``transform_node`` onto the fixed grid
    ``shape_kji`` / ``ijk_to_ras_world`` (world RAS; the fixed volume's). Names, colours and
    tags are kept; the labelmaps lie exactly on the fixed grid (its reference geometry), so
    the interactive tools can refine them on the fixed volume. The source is left as is.
    ids: the segments to carry (default all)."""
    masks = resample_segments(segmentation_node, shape_kji, ijk_to_ras_world, transform_node, ids)
    scene = segmentation_node.GetScene()
    output = scene.AddNewNodeByClass("vtkMRMLSegmentationNode",
                                     name or f"{segmentation_node.GetName()} (registered)")
    output.CreateDefaultDisplayNodes()
    set_reference_geometry(output, shape_kji, ijk_to_ras_world)
    source = segmentation_node.GetSegmentation()
    for segment_id, mask in masks.items():
        segment = source.GetSegment(segment_id)
        output.GetSegmentation().AddEmptySegment(segment_id, segment.GetName(), segment.GetColor())
        carried = output.GetSegmentation().GetSegment(segment_id)
        carried.DeepCopyMetadata(segment)
        carried.RemoveTag(LOCK_TAG)          # a carried copy starts editable
        bbox = tight_bbox(mask)
        if bbox is not None:
            block = mask[tuple(slice(a, b) for a, b in zip(*bbox))]
            replace_segment(output, segment_id, bbox, block, ijk_to_ras_world, shape_kji,
                            save_undo_state=False)
    return output
