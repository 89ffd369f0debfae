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
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Dict, Optional, Tuple

import numpy as np

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``; raises :class:`slicerfm_backend.jobs.JobCancelled`
when the job was cancelled, so engines call it between steps and simply let it propagate."""


@dataclass(frozen=True)
class RegistrationCapabilities:
    description: str
    needs_weights: bool
    devices: Tuple[str, ...]
    similarities: Tuple[str, ...]
    default_io_steps: int
    modalities: Tuple[str, ...] = ("CT", "MR", "other")


@dataclass
class RegistrationImage:
    """One image of a pair. ``array``: ``(K, J, I)`` float or integer intensities.
    ``mask``: optional boolean ``(K, J, I)`` on the same grid (True = use this voxel).
    ``modality``: "CT", "MR" or "other"."""

    array: np.ndarray
    ijk_to_ras: np.ndarray
    modality: str = "other"
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


class RegistrationEngine(abc.ABC):
    """Base class of registration engines; subclasses set ``name`` and ``capabilities``.
    Heavy imports happen in ``load``/``register``, never at module import."""

    name: ClassVar[str]
    capabilities: ClassVar[RegistrationCapabilities]

    def __init__(self, device: str = "cpu", options: Optional[Dict[str, Any]] = None):
        self.device = device
        self.options = dict(options or {})

    def weights_status(self) -> Tuple[bool, str]:
        if not self.capabilities.needs_weights:
            return True, "no weights needed"
        from ..weights.resolve import weights_status

        return weights_status(self.name, self.options.get("weights_dir"), self.options.get("checkpoint"))

    def load(self) -> None:
        """Load weights; called once before the first ``register``."""

    @abc.abstractmethod
    def register(self, request: RegistrationRequest, progress: Progress) -> RegistrationResult:
        """Register ``request.moving`` onto ``request.fixed``; see the module docstring."""
