"""The ``unigradicon`` and ``multigradicon`` registration engines (pip ``unigradicon`` /
``icon_registration``; docs/MODELS.md §3).

Pipeline per pair (moving onto fixed):

1. optional affine pre-alignment (:mod:`.affine`): the moving image is resampled
   onto the fixed grid through a SimpleITK affine before the network sees it;
2. intensities to [0, 1] by modality, masks multiply the normalised images, both images
   resized trilinearly to the network grid (:mod:`.preprocess`);
3. the network, optionally after instance optimisation on a copy (:mod:`.run`);
4. the map as a RAS displacement field on the fixed grid or the native network grid laid
   over the fixed image (:mod:`.network_field`), fixed point ``x`` -> moving point
   ``x + d(x)``, and its fraction of folded voxels (:func:`.field.negative_jacobian_fraction`,
   slabs in parallel).

Memory: a CUDA (or CPU allocator) out-of-memory anywhere from the resize to the field
conversion frees what the run held and becomes an EngineError; on the CPU a run whose
estimated memory exceeds ``MemAvailable`` is refused before it starts
(:func:`.run.check_host_memory`). ``step`` (in a job, a device scheduler slot for one
step) wraps every network step.

Options (``--engine-option unigradicon.network_shape=175,175,175``): ``network_shape`` (three
sides, default 175³; smaller shapes only make sense for tests with random weights, the
released weights are for 175³); ``checkpoint`` and ``weights_dir`` are set by the server.
Instance optimisation: 50 steps by default, none on the CPU (where one step takes minutes);
:meth:`_GradICONEngine.estimate_s` gives the expected time on the CPU.
Results: ``timings_s`` has ``preprocess``, ``affine`` (when asked), ``model`` (network time,
IO included), ``field``, ``jacobian`` and ``total``; ``details`` has the steps, similarity,
network shape, device and, on CUDA, ``gpu_peak_memory_bytes``.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ...engine_core.options import shape3
from ...errors import EngineError
from ..base import (Progress, RegistrationCapabilities, RegistrationEngine, RegistrationRequest,
                   RegistrationResult, StepGuard)

SIMILARITIES = ("lncc", "lncc2", "mind")
DEFAULT_IO_STEPS = 50
#: On the CPU one instance-optimisation step at 175³ takes many minutes and more than 11 GB
#: (docs/BENCHMARKS.md): the CPU default is the network alone.
DEFAULT_IO_STEPS_CPU = 0
MAX_IO_STEPS = 1000
# Measured on 2 idle CPU cores (docs/BENCHMARKS.md, "uniGradICON pipeline on CPU"): the
# forward pass at 175³ and the pipeline around it; one IO step at 96³ took 139 s, scaled
# to other network sizes by their voxel count. No GPU figures yet: no estimate on CUDA.
CPU_FORWARD_S_175 = 16.0
CPU_OVERHEAD_S = 2.0
CPU_IO_STEP_S_96 = 139.0


class _GradICONEngine(RegistrationEngine):
    """Shared pipeline of the two GradICON engines; subclasses set ``name`` and ``capabilities``."""

    option_types = {"network_shape": shape3}

    def __init__(self, device: str = "cpu", options: Optional[Dict[str, Any]] = None):
        super().__init__(device, options)
        self.network = None  # set by load(); never modified afterwards (IO works on a copy)
        self.torch_device = None
        from .model import NETWORK_SHAPE, check_shape

        self.network_shape: Tuple[int, int, int] = check_shape(self.options.get("network_shape", NETWORK_SHAPE))

    def _fix(self) -> str:
        return (f"fetch it again with `slicerfm-backend weights fetch {self.name}` or pass "
                f"--checkpoint {self.name}=PATH to Step_2_final.trch")

    def load(self) -> None:
        from .model import load_network

        self.network = load_network(self.checkpoint(), self.device, self.network_shape, self._fix())
        self.torch_device = next(self.network.parameters()).device

    def estimate_s(self, request: RegistrationRequest) -> Optional[float]:
        """On the CPU: forward pass and pipeline, plus the IO steps (see the constants); None
        on other devices (not measured yet)."""
        if self.device.split(":")[0] != "cpu":
            return None
        io_steps = self.default_io_steps if request.io_steps is None else max(0, int(request.io_steps))
        voxels = float(np.prod(self.network_shape))
        return (CPU_OVERHEAD_S + CPU_FORWARD_S_175 * voxels / 175 ** 3
                + io_steps * CPU_IO_STEP_S_96 * voxels / 96 ** 3)

    def _check_request(self, request: RegistrationRequest) -> Tuple[int, str]:
        io_steps = self.default_io_steps if request.io_steps is None else int(request.io_steps)
        if not 0 <= io_steps <= MAX_IO_STEPS:
            raise EngineError(f"io_steps must be between 0 and {MAX_IO_STEPS}, got {io_steps}")
        similarity = request.similarity or "lncc"
        if similarity not in SIMILARITIES:
            raise EngineError(f"similarity {similarity!r} unknown; use one of {', '.join(SIMILARITIES)}")
        if request.output_grid not in ("fixed", "native"):
            raise EngineError(f"output_grid must be 'fixed' or 'native', got {request.output_grid!r}")
        for role, image in (("fixed", request.fixed), ("moving", request.moving)):
            if image.mask is not None and image.mask.shape != image.array.shape:
                raise EngineError(f"the {role} mask has shape {image.mask.shape}, "
                                  f"its image {image.array.shape}; masks must be on the image's grid")
        return io_steps, similarity

    def register(self, request: RegistrationRequest, progress: Progress,
                 step: StepGuard = contextlib.nullcontext) -> RegistrationResult:
        import torch

        from . import affine, network_field, preprocess, run
        from ..field import negative_jacobian_fraction

        if self.network is None:
            raise EngineError(f"{self.name} is not loaded")
        io_steps, similarity = self._check_request(request)
        fixed, moving = request.fixed, request.moving
        device = self.torch_device
        timings: Dict[str, float] = {}
        start = time.perf_counter()

        progress("preprocess", 0, 0)
        fixed_norm = preprocess.normalise(fixed.array, fixed.modality, fixed.mask)
        moving_norm = preprocess.normalise(moving.array, moving.modality, moving.mask)
        moving_shape, moving_ijk_to_ras = moving.shape, np.asarray(moving.ijk_to_ras, dtype=np.float64)
        timings["preprocess"] = time.perf_counter() - start

        matrix = None
        if request.affine_prealign:
            progress("affine pre-alignment", 0, 0)
            mark = time.perf_counter()
            matrix = affine.affine_ras(fixed_norm, fixed.ijk_to_ras, moving_norm,
                                                moving_ijk_to_ras, fixed.mask, moving.mask)
            moving_norm = affine.resample_moving(moving_norm, moving_ijk_to_ras, matrix,
                                                          fixed.shape, fixed.ijk_to_ras)
            moving_shape, moving_ijk_to_ras = fixed.shape, np.asarray(fixed.ijk_to_ras, dtype=np.float64)
            timings["affine"] = time.perf_counter() - mark

        run.check_host_memory(device, int(np.prod(self.network_shape)), io_steps)
        progress("network", 0, 0)
        mark = time.perf_counter()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        fixed_t = moving_t = u = None
        failure = None
        try:
            stage = "input images"
            fixed_t = preprocess.to_network(fixed_norm, self.network_shape, device)
            moving_t = preprocess.to_network(moving_norm, self.network_shape, device)
            del fixed_norm, moving_norm
            u = run.displacement(self.network, moving_t, fixed_t, io_steps, similarity,
                                          progress, step)
            fixed_t = moving_t = None
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            timings["model"] = time.perf_counter() - mark

            progress("field", 0, 0)
            mark, stage = time.perf_counter(), "field conversion"
            field = network_field.field_from_network(u, fixed.shape, fixed.ijk_to_ras, moving_shape,
                                                      moving_ijk_to_ras, request.output_grid)
        except Exception as error:
            if not run._is_out_of_memory(error):
                raise
            failure = run.out_of_memory_error(error, device, stage)
        finally:
            fixed_t = moving_t = u = None
        if failure is not None or device.type == "cuda":
            run.free_device_memory(device)
        if failure is not None:
            raise failure
        if matrix is not None:
            field = affine.compose(field, matrix)
        timings["field"] = time.perf_counter() - mark

        progress("jacobian", 0, 0)
        mark = time.perf_counter()
        mask = fixed.mask if request.output_grid == "fixed" else None
        folding = negative_jacobian_fraction(
            field, None if mask is None else mask.astype(bool), workers=torch.get_num_threads())
        timings["jacobian"] = time.perf_counter() - mark
        timings["total"] = time.perf_counter() - start

        details: Dict[str, Any] = {
            "engine": self.name, "io_steps": io_steps, "similarity": similarity if io_steps else None,
            "network_shape": list(self.network_shape), "device": str(device),
            "affine_prealign": bool(request.affine_prealign), "output_grid": request.output_grid,
        }
        if matrix is not None:
            details["affine_ras"] = matrix.tolist()
        if device.type == "cuda":
            details["gpu_peak_memory_bytes"] = int(torch.cuda.max_memory_allocated(device))
        return RegistrationResult(field, folding, timings, details)


class UniGradICONEngine(_GradICONEngine):
    """uniGradICON: the foundation model for mono-modal registration."""

    name = "unigradicon"
    capabilities = RegistrationCapabilities(
        description="uniGradICON (deep learning, 175³ network grid): deformable registration "
                    "of CT/MR pairs; optional instance optimisation; needs weights.",
        needs_weights=True, devices=("cuda", "cpu"), similarities=SIMILARITIES,
        default_io_steps=DEFAULT_IO_STEPS, default_io_steps_cpu=DEFAULT_IO_STEPS_CPU,
        max_io_steps=MAX_IO_STEPS)


class MultiGradICONEngine(_GradICONEngine):
    """multiGradICON: the same network trained for multi-modal pairs."""

    name = "multigradicon"
    capabilities = RegistrationCapabilities(
        description="multiGradICON (deep learning, 175³ network grid): deformable registration "
                    "including cross-modality pairs; optional instance optimisation; needs weights.",
        needs_weights=True, devices=("cuda", "cpu"), similarities=SIMILARITIES,
        default_io_steps=DEFAULT_IO_STEPS, default_io_steps_cpu=DEFAULT_IO_STEPS_CPU,
        max_io_steps=MAX_IO_STEPS)
