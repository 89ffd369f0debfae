"""SlicerFMLib: the SlicerFM module's Logic, MRML glue and presenters -- no Qt, no widget.

Everything here runs without Slicer's application: on the ``slicer-core`` wheel (MRML
without Qt; the tests), in Slicer's Python console, and under another front end (a browser
client on trame-slicer imports it unchanged). Only ``self_test`` needs the application.

Conventions (same as :mod:`slicerfm_client.protocol`): arrays in numpy ``(k, j, i)`` order;
``ijk_to_ras_world`` = the (4, 4) matrix from voxel index ``(i, j, k, 1)`` to WORLD RAS mm
(after linear parent transforms); prompts in continuous ``(k, j, i)`` voxel coordinates;
``bbox_kji`` = ``[[k0, j0, i0], [k1, j1, i1]]``, start inclusive, stop exclusive.

The Logic (one connection, three features, one prepare -> run -> apply cycle):
    logic               SlicerFMCoreLogic: the module's Logic without Slicer's parameter node
    connection          local backend process (clean environment) or remote server, errors
    cycle               FeatureLogic: the shared cycle, callbacks, error reporting
    interactive_logic   InteractiveSegmentationLogic: points, boxes, undo/redo, locks
    interaction         one interactive operation's work on the worker (no MRML)
    propagation_logic   slice engines: slice prompts, following propagation jobs (a mixin)
    propagation_follow  a followed propagation job: polling, settling, messages (no MRML)
    registration_logic  RegistrationLogic: fixed/moving volumes (+ masks) -> transform node
    auto_segment_logic  AutoSegmentationLogic: automatic segmentation -> named segments
    job_progress        server jobs: progress shared across threads, cancel, ServerJobLogic
    worker              BackgroundWorker (one thread) / InlineRunner (blocking)
    pump                WorkerPump: main-thread delivery that does not starve the workers
    client_setup        finding slicerfm_client (bundled or ../client), installing blosc2
MRML glue:
    volume_io        volume node -> (array_kji, ijk_to_ras_world) and back
    prompts          markups points / ROI -> (k, j, i) prompts
    prompt_nodes     the positive / negative / box markups nodes
    slice_views      slice view -> voxel axis and slice; an ROI as a slice box
    segment_io       mask update -> segment (box only), segment -> mask on the volume grid
    segment_sync     Slicer's segment vs the server's copy: mirrors, stamps, seeds
    editor_settings  Segment Editor node (overwrite, editable area, intensity) -> parameters
    undo             undo states (Segment Editor history if it exists, else scene undo)
    labelmap_grid    resampling between the volume grid and a segmentation's grids
    vtk_arrays       numpy <-> vtkImageData / vtkOrientedImageData / vtkMatrix4x4
    transform_nodes  displacement field -> grid transform node, hardened volume, carried segments
    label_segments   multi-label map -> named, coloured segments (locks, in place, one undo)
    class_catalogue  the class picker's data (server catalogue, groups, search)
Presenters (plain-Python policies of the panel; widgets are duck-typed):
    progress_presenter  the "waiting for the server" dialog and its Cancel
    job_bars            progress bars of server jobs (propagation: with its Cancel), box tooltip
    choice_presenters   engine list and segment selector restored without losing choices
    box_prompt          one box prompt per ROI placement or drag
    shortcuts           keyboard shortcuts installed once, removed on exit and cleanup
    class_picker        the class tree of automatic segmentation
    self_test           the module's self-test (inside Slicer only)

``logic``, ``connection``, ``interaction`` and the feature Logics import ``slicerfm_client``:
call ``client_setup.ensure_client()`` first inside Slicer (the module does).
"""

from .prompts import markups_to_points, ras_to_kji, roi_to_box, set_prompt_polarity
from .segment_io import apply_mask_update, segment_to_mask
from .volume_io import volume_to_array

__all__ = ["apply_mask_update", "markups_to_points", "ras_to_kji", "roi_to_box",
           "segment_to_mask", "set_prompt_polarity", "volume_to_array"]
