"""Slicer-dependent helpers of the SlicerFM module (MRML only: no Qt, no ``slicer.app``).

Every function takes the scene's nodes as arguments and uses only ``from slicer import
vtkMRML...`` classes and module logics, so the package runs on the ``slicer-core`` wheel.

Conventions (same as :mod:`slicerfm_client.protocol`): arrays in numpy ``(k, j, i)`` order;
``ijk_to_ras_world`` = the (4, 4) matrix from voxel index ``(i, j, k, 1)`` to WORLD RAS mm
(after linear parent transforms); prompts in continuous ``(k, j, i)`` voxel coordinates;
``bbox_kji`` = ``[[k0, j0, i0], [k1, j1, i1]]``, start inclusive, stop exclusive.

Modules:
    volume_io        volume node -> (array_kji, ijk_to_ras_world) and back
    prompts          markups points / ROI -> (k, j, i) prompts
    segment_io       mask update -> segment (box only), segment -> mask on the volume grid
    editor_settings  Segment Editor node (overwrite, editable area, intensity) -> parameters
    undo             undo states before an edit (Segment Editor history or scene undo)
    labelmap_grid    resampling between the volume grid and a segmentation's grids
    vtk_arrays       numpy <-> vtkImageData / vtkOrientedImageData / vtkMatrix4x4
    logic            InteractiveSegmentationLogic: the module's Logic (no Qt, no widget)
    connection       local backend process or remote server, status, error messages
    jobs             what the worker thread does: upload, attach, seed, interact (no MRML)
    segment_sync     Slicer's segment vs the server's copy: mirrors, stamps, seeds
    worker           background thread + main-thread delivery (Qt only in QtWorkerPump)
    client_setup     finding slicerfm_client (bundled or ../client) and installing blosc2
    transform_nodes  displacement field -> grid transform node, hardened volume, carried segments
    registration_logic  RegistrationLogic: fixed/moving volumes (+ masks) -> transform node
    label_segments   multi-label map -> named, coloured segments (locks, in place, one undo)
    class_catalogue  the class picker's data (server catalogue, groups, search)
    auto_segment_logic  AutoSegmentationLogic: automatic segmentation -> segments
    job_progress     long server jobs: progress shared across threads, cancel, run cycle

``logic``, ``connection``, ``jobs`` and the job Logics import ``slicerfm_client``: call
``client_setup.ensure_client()`` first inside Slicer (the module does).
"""

from .prompts import markups_to_points, ras_to_kji, roi_to_box, set_prompt_polarity
from .segment_io import apply_mask_update, segment_to_mask
from .volume_io import volume_to_array

__all__ = ["apply_mask_update", "markups_to_points", "ras_to_kji", "roi_to_box",
           "segment_to_mask", "set_prompt_polarity", "volume_to_array"]
