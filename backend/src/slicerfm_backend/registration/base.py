"""The registration engine interface.

Coordinate convention (the one Slicer needs to resample the moving image onto the fixed
one): a registration result is a dense displacement field ``d`` defined on a grid in the
*fixed* image's physical space, with vectors in RAS millimetres, such that the fixed point
``x`` (RAS mm) corresponds to the moving point ``x + d(x)`` (RAS mm). In ITK terms (LPS)
this is a resampling transform "fixed -> moving"; in Slicer it is the transform *from
parent* of a grid transform node placed above the moving volume.

Arrays use numpy ``(k, j, i)`` order; ``ijk_to_ras`` is the 4x4 matrix from homogeneous
``(i, j, k, 1)`` to RAS mm, as everywhere in SlicerFM.
"""

from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, Optional, Tuple

import numpy as np

from slicerfm_client import protocol

from ..engine_core.base import EngineBase, Progress, StepGuard

@dataclass(frozen=True)
class RegistrationCapabilities:
    description: str
    needs_weights: bool
    devices: Tuple[str, ...]
    similarities: Tuple[str, ...]
    default_io_steps: int
    modalities: Tuple[str, ...] = protocol.MODALITIES
    #: The default on the CPU when it differs (e.g. 0 where one optimisation step takes minutes).
    default_io_steps_cpu: Optional[int] = None
    #: The most ``io_steps`` a request may ask for (checked when the job is submitted).
    max_io_steps: int = 1000


@dataclass
class RegistrationImage:
    """One image of a pair. ``array``: ``(K, J, I)`` float or integer intensities.
    ``mask``: optional boolean ``(K, J, I)`` on the same grid (True = use this voxel).
    ``modality``: one of ``protocol.MODALITIES`` ("CT", "MR", "other")."""

    array: np.ndarray
    ijk_to_ras: np.ndarray
    modality: str = protocol.MODALITY_OTHER
    mask: Optional[np.ndarray] = None

    @property
    def shape(self) -> Tuple[int, int, int]:
        return tuple(int(n) for n in self.array.shape)


@dataclass
class RegistrationRequest:
    """``io_steps``: instance-optimisation steps (None: the engine's default; 0: none).
    ``similarity``: one of the engine's ``capabilities.similarities``.
    ``affine_prealign``: run an affine alignment before the deformable step.
    ``output_grid``: "fixed" (the field on the fixed image's grid) or "native" (the
    engine's own working grid, e.g. 175^3 for uniGradICON)."""

    fixed: RegistrationImage
    moving: RegistrationImage
    io_steps: Optional[int] = None
    similarity: Optional[str] = None
    affine_prealign: bool = False
    output_grid: str = "fixed"


@dataclass
class DisplacementField:
    """``vectors_ras``: ``(K, J, I, 3)`` float32, RAS mm, components (R, A, S); the fixed
    point at grid voxel (i, j, k) maps to the moving point ``ijk_to_ras @ (i, j, k, 1) +
    vectors_ras[k, j, i]``."""

    vectors_ras: np.ndarray
    ijk_to_ras: np.ndarray

    @property
    def shape(self) -> Tuple[int, int, int]:
        return tuple(int(n) for n in self.vectors_ras.shape[:3])


@dataclass
class RegistrationResult:
    """``neg_jacobian_fraction``: fraction of field voxels (inside the fixed mask when one
    was given) where det(I + grad d) <= 0 (folding). ``timings_s``: named stages in
    seconds (``model`` for network time where there is a network). ``details``: anything a
    user should see (GPU memory peak, steps run, ...)."""

    field: DisplacementField
    neg_jacobian_fraction: float
    timings_s: Dict[str, float] = field(default_factory=dict)
    details: Dict[str, Any] = field(default_factory=dict)


class RegistrationEngine(EngineBase):
    """Base class of registration engines; subclasses set ``name``, ``capabilities``
    (:class:`RegistrationCapabilities`) and, when they take options, ``option_types``; see
    :mod:`slicerfm_backend.engine_core.base` for what every engine has. Heavy imports
    happen in ``load``/``register``, never at module import."""

    capabilities: ClassVar[RegistrationCapabilities]

    @property
    def default_io_steps(self) -> int:
        """Instance-optimisation steps when a request gives none, fitted to this engine's
        device: ``capabilities.default_io_steps_cpu`` on the CPU when set."""
        caps = self.capabilities
        if self.device.split(":")[0] == "cpu" and caps.default_io_steps_cpu is not None:
            return caps.default_io_steps_cpu
        return caps.default_io_steps

    def describe(self) -> Dict[str, Any]:
        row = super().describe()
        row.update({"similarities": list(self.capabilities.similarities),
                    "default_io_steps": self.default_io_steps})
        return row

    def estimate_s(self, request: RegistrationRequest) -> Optional[float]:
        """Expected wall time of ``register(request)`` in seconds on this engine's device,
        from figures measured for it (None when there are none); shown to the user before
        the job starts."""
        return None

    @abc.abstractmethod
    def register(self, request: RegistrationRequest, progress: Progress,
                 step: StepGuard = contextlib.nullcontext) -> RegistrationResult:
        """Register ``request.moving`` onto ``request.fixed``; see the module docstring.
        ``progress`` reports stages (and cancels, in a job); ``step`` wraps every network
        step on the device (in a job, a device scheduler slot for that step). Raise
        :class:`slicerfm_backend.errors.EngineError` with a message for the user when the
        request cannot be served."""
