"""Synthetic registration pairs for the module's tests: a smooth 'organ' seen by a fixed scan
and, moved by a known shift, by a moving scan on another oblique, anisotropic grid.

(A module of its own, not conftest.py, so that tests import it by a unique name.)
"""

import numpy as np
from mrml_helpers import oblique_ijk_to_ras, rotation

SHIFT = np.array([9.0, -6.0, 7.5])          # moving = fixed object moved by SHIFT (RAS mm)
FIXED_SHAPE = (22, 30, 34)
FIXED_GRID = oblique_ijk_to_ras(spacing=(1.6, 1.3, 2.5), origin=(-20.0, -45.0, 25.0))
#: the object's centre in the fixed scan (RAS mm): a little off the fixed grid's centre
CENTRE = (FIXED_GRID @ [15.0, 14.0, 10.0, 1.0])[:3]
MOVING_SHAPE = (30, 34, 40)


def grid_points(shape, ijk_to_ras):
    """World RAS (K, J, I, 3) of every voxel centre."""
    k, j, i = np.indices(shape)
    ijk1 = np.stack([i, j, k, np.ones_like(i)], axis=-1).astype(float)
    return (ijk1 @ np.asarray(ijk_to_ras).T)[..., :3]


def ball(shape, ijk_to_ras, centre, radius):
    """bool (K, J, I): voxels whose centre lies within ``radius`` mm of ``centre`` (RAS)."""
    return np.linalg.norm(grid_points(shape, ijk_to_ras) - centre, axis=-1) <= radius


def smooth_object(shape, ijk_to_ras, centre):
    """An anisotropic Gaussian 'organ' (float32, peak 1000), so that linear resampling is
    accurate and intensity registration has a smooth basin."""
    offset = grid_points(shape, ijk_to_ras) - centre
    return (1000.0 * np.exp(-((offset / [11.0, 8.0, 9.0]) ** 2).sum(-1))).astype(np.float32)


def moving_grid(shape=MOVING_SHAPE):
    """Another oblique, anisotropic grid, centred on the moved object."""
    matrix = np.eye(4)
    matrix[:3, :3] = (rotation("y", -25) @ rotation("x", 10))[:3, :3] @ np.diag([1.2, 1.7, 2.0])
    centre_ijk = (np.array(shape[::-1]) - 1) / 2
    matrix[:3, 3] = CENTRE + SHIFT - matrix[:3, :3] @ centre_ijk
    return matrix


def add_pair(scene_with_logics, moving_shape=MOVING_SHAPE, fixed_shape=FIXED_SHAPE,
             fixed_grid=FIXED_GRID):
    """(fixed volume, moving volume) nodes showing the object at CENTRE and CENTRE + SHIFT."""
    from SlicerFMLib.volume_io import update_volume_from_array

    fixed = scene_with_logics.add("vtkMRMLScalarVolumeNode", "fixed")
    update_volume_from_array(fixed, smooth_object(fixed_shape, fixed_grid, CENTRE), fixed_grid)
    moving = scene_with_logics.add("vtkMRMLScalarVolumeNode", "moving")
    grid = moving_grid(moving_shape)
    update_volume_from_array(moving, smooth_object(moving_shape, grid, CENTRE + SHIFT), grid)
    return fixed, moving
