"""The ``vista3d`` engine: VISTA3D (monai ``vista3d132``) for automatic segmentation of up to
127 CT structures by class prompt, and point corrections on one class (or zero-shot).

* automatic (the :class:`..base.AutoSegmentation` seam: ``classes``, ``class_ids``,
  ``segment_auto``, ``estimate_auto_s``): the bundle's preprocessing (1.5 mm, RAS
  order, foreground crop, intensity scaling; :mod:`.grid`), bounded-memory sliding
  windows (:mod:`.auto`), labels pasted back onto the image grid, the region that was
  not computed (outside the foreground crop) reported. Run as a background job by
  ``POST /api/segment/auto`` and by ``slicerfm-backend segment``.
* interactive: :meth:`Vista3DEngine.segment` -- points through the session's interaction
  path; ``request.options["label"]`` names the class (absent = zero-shot); see
  :mod:`.points`.

Options (``--engine-option vista3d.KEY=VALUE``): ``amp`` (on/off, CUDA only; default on),
``roi`` (window edge in working voxels, multiple of 16; default 128), ``overlap`` (default
0.25), ``accumulator_mb`` (bound of the sliding-window accumulator; default 3072).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ...engine_core.base import Progress, StepGuard
from ...engine_core.options import choice, positive_float, positive_int
from ...errors import EngineError
from ..base import (AutoSegmentation, ClassItem, Engine, EngineCapabilities, EngineResult, ImageData,
                    SegmentationRequest)

log = logging.getLogger(__name__)

NAME = "vista3d"
# One 128³ window on 2 CPU cores (docs/BENCHMARKS.md, VISTA3D): 154 s with 1 class, 195 s
# with 117 (the encoder once, then the class head per class).
CPU_WINDOW_S = 154.0
CPU_WINDOW_S_PER_CLASS = (195.0 - 154.0) / 116


def _fraction(value: str) -> float:
    number = float(value)
    if not 0 <= number < 1:
        raise ValueError(f"must be in [0, 1), got {value}")
    return number


def _roi(value: str) -> int:
    number = positive_int(value)
    if number % 16:
        raise ValueError(f"must be a multiple of 16, got {value}")
    return number


_fraction.__name__ = "fraction in [0, 1)"
_roi.__name__ = "multiple of 16"


class Vista3DEngine(Engine, AutoSegmentation):
    """VISTA3D; see the module docstring."""

    name = NAME
    capabilities = EngineCapabilities(
        prompt_kinds=("point",),
        modalities=("CT",),
        needs_weights=True,
        devices=("cuda", "cpu"),
        description="VISTA3D: automatic CT segmentation of up to 127 classes (POST "
                    "/api/segment/auto) and point corrections on one class or zero-shot.",
    )
    option_types = {
        "amp": choice("on", "off"),
        "roi": _roi,
        "overlap": _fraction,
        "accumulator_mb": positive_float,
    }

    def __init__(self, device: str = "cpu", options: Optional[Dict[str, Any]] = None):
        super().__init__(device, options)
        self.network = None  # a Vista3DNetwork after load()

    @property
    def roi(self) -> Tuple[int, int, int]:
        edge = int(self.options.get("roi", 128))
        return (edge, edge, edge)

    @property
    def overlap(self) -> float:
        return float(self.options.get("overlap", 0.25))

    @property
    def accumulator_bytes(self) -> int:
        return int(float(self.options.get("accumulator_mb", 3072)) * (1 << 20))

    def load(self) -> None:
        from .model import load_network

        amp = str(self.options.get("amp", "on")) != "off"
        self.network = load_network(self.checkpoint(), self.device, amp)

    # -- automatic ---------------------------------------------------------------------

    @classmethod
    def classes(cls) -> List[dict]:
        """VISTA3D's label dictionary for pickers (:func:`.labels.catalogue`)."""
        from . import labels

        return labels.catalogue()

    @classmethod
    def class_ids(cls, classes: Optional[Sequence[ClassItem]], everything: bool = False) -> List[int]:
        """Names or ids with kidney, lung and bone expanded to their parts
        (:func:`.labels.auto_classes`), or the 117 "everything" classes."""
        from . import labels

        return list(labels.EVERYTHING) if everything else labels.auto_classes(classes or [])

    def estimate_auto_s(self, image: ImageData, class_ids: Sequence[int]) -> Optional[float]:
        """On the CPU, windows x class groups over the whole image's 1.5 mm grid (an upper
        bound: the foreground crop usually removes some windows) times the time of one
        window measured on 2 cores (docs/BENCHMARKS.md); None on other devices."""
        from . import auto
        from . import grid as grid_mod

        if self.device.split(":")[0] != "cpu":
            return None
        shape = grid_mod.WorkingGrid.for_image(image.array.shape, image.ijk_to_ras).shape
        the_plan = auto.plan(shape, list(class_ids), self.roi, self.overlap, self.accumulator_bytes)
        per_group = max(len(group) for group in the_plan.groups)
        return the_plan.total_steps * (CPU_WINDOW_S + CPU_WINDOW_S_PER_CLASS * per_group) * (self.roi[0] / 128) ** 3

    def segment_auto(self, image: ImageData, class_ids: Sequence[int],
                     progress: Optional[Progress] = None,
                     step: Optional[StepGuard] = None) -> Tuple[np.ndarray, dict]:
        """Label map (uint8, image grid ``(K, J, I)``, class ids) for ``class_ids`` (already
        expanded, see :func:`.labels.auto_classes`) and its meta: ``labels``
        (dictionary of the ids present in the request), ``not_computed``, ``device``,
        ``precision``, ``windows``, ``class_groups``, ``timings_s``.

        ``progress(stage, done, total)`` is called per stage and window (it may raise to
        cancel); ``step()`` wraps every network forward (e.g. a device scheduler slot).
        """
        import contextlib

        from . import auto
        from . import grid as grid_mod
        from . import labels as labels_mod

        if self.network is None:
            raise EngineError("vista3d is not loaded")
        if image.modality not in ("CT", "other"):
            raise EngineError(f"VISTA3D segments CT images (Hounsfield units); this image is {image.modality}")
        report = progress or (lambda stage, done=0, total=0: None)
        timings: Dict[str, float] = {}
        t = time.perf_counter()
        report("preprocessing", 0, 0)
        grid = grid_mod.WorkingGrid.for_image(image.array.shape, image.ijk_to_ras)
        working = grid_mod.resample(image.array, grid)
        box = grid_mod.foreground_box(working)
        if box is None:
            raise EngineError("the image has no voxel above 0 HU, so VISTA3D's foreground crop is "
                              "empty; is it a CT in Hounsfield units?")
        crop = tuple(slice(a, b) for a, b in zip(*box))
        volume = grid_mod.scale_intensity(np.ascontiguousarray(working[crop]))
        del working
        timings["preprocess"] = time.perf_counter() - t
        the_plan = auto.plan(volume.shape, class_ids, self.roi, self.overlap, self.accumulator_bytes)
        if len(the_plan.groups) > 1:
            log.info("vista3d: %d classes in %d groups to stay under %d MB of accumulator",
                     len(class_ids), len(the_plan.groups), self.accumulator_bytes >> 20)
        t = time.perf_counter()
        report("windows", 0, the_plan.total_steps)
        labels_xyz = auto.run(volume, class_ids, self.network.classes, self.roi, self.overlap,
                              self.accumulator_bytes,
                              progress=lambda done, total: report("windows", done, total),
                              step=step or contextlib.nullcontext, the_plan=the_plan)
        timings["windows"] = time.perf_counter() - t
        t = time.perf_counter()
        report("pasting", 0, 0)
        labels, computed = grid_mod.to_image_grid(labels_xyz, grid, box)
        timings["paste"] = time.perf_counter() - t
        total = int(np.prod(image.array.shape))
        inside = 0 if computed is None else int(np.prod([b - a for a, b in zip(*computed)]))
        meta = {
            "labels": labels_mod.dictionary(class_ids),
            "classes": [int(c) for c in class_ids],
            "not_computed": {
                "voxels": total - inside,
                "computed_bbox_kji": computed,
                "reason": "outside VISTA3D's foreground crop (voxels above 0 HU, grown by 10 "
                          "working voxels of 1.5 mm); these voxels are 0 in the label map but "
                          "were not segmented",
            },
            "device": str(self.network.device),
            "precision": self.network.precision,
            "windows": len(the_plan.windows),
            "class_groups": len(the_plan.groups),
            "working_shape_xyz": list(volume.shape),
            "accumulator_bytes": auto.memory_estimate(the_plan, self.roi),
            "timings_s": {k: round(v, 3) for k, v in timings.items()},
        }
        if self.network.device.type == "cpu":
            meta["note"] = "ran on the CPU in float32 (slow); a CUDA GPU runs it with AMP"
        return labels, meta

    # -- interactive -------------------------------------------------------------------

    def _working(self, image: ImageData, cache: dict):
        """The image's whole working grid, scaled (cached per image)."""
        from . import grid as grid_mod

        entry = cache.get("vista3d_working")
        if entry is None:
            grid = grid_mod.WorkingGrid.for_image(image.array.shape, image.ijk_to_ras)
            volume = grid_mod.scale_intensity(grid_mod.resample(image.array, grid))
            entry = cache["vista3d_working"] = (grid, volume)
        return entry

    def segment(self, request: SegmentationRequest) -> EngineResult:
        from . import labels as labels_mod
        from . import points as points_mod

        if self.network is None:
            raise EngineError("vista3d is not loaded")
        options = getattr(request, "options", None) or {}
        label = options.get("label")
        try:
            labels_mod.point_class(label)
        except ValueError as error:
            raise EngineError(str(error)) from error
        points = [p for p in request.prompts if p.kind == "point"]
        if not points:
            raise EngineError("vista3d takes point prompts only")
        timings: Dict[str, float] = {}
        t = time.perf_counter()
        grid, volume = self._working(request.image, request.cache)
        xyz = grid.to_working(np.asarray([p.point_kji for p in points]))
        box = points_mod.crop_for_point(xyz[-1], volume.shape, self.roi)
        previous_xyz, bbox = points_mod.previous_on_working(request.previous, grid, box)
        timings["prepare"] = 1000 * (time.perf_counter() - t)
        t = time.perf_counter()
        crop = tuple(slice(a, b) for a, b in zip(*box))
        new_xyz = points_mod.infer(self.network, volume[crop], xyz - np.asarray(box[0]),
                                   [p.positive for p in points], label, previous_xyz, self.roi)
        timings["network"] = 1000 * (time.perf_counter() - t)
        t = time.perf_counter()
        mask = points_mod.paste_changes(request.previous.region(bbox), bbox, grid, box,
                                        previous_xyz, new_xyz)
        timings["paste"] = 1000 * (time.perf_counter() - t)
        return EngineResult(bbox=bbox, mask=mask.astype(bool), timings_ms=timings)
