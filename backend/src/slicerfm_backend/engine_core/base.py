"""What every engine has, whatever its family (segmentation or registration).

An engine class declares, without being loaded:

* ``name`` -- its registry name (``classic``, ``sam-med3d``, ``unigradicon``, ...);
* ``capabilities`` -- a frozen dataclass of its family with at least ``description``,
  ``needs_weights``, ``devices`` (device kinds it runs on, preferred first) and
  ``modalities`` (``protocol.MODALITIES`` it is meant for);
* ``option_types`` -- the options an operator may set (``--engine-option NAME.KEY=VALUE``):
  key -> parser of the string value (see :mod:`.options`).

An instance is built with its device and options (the operator's, plus ``weights_dir`` and
``checkpoint`` set by the server); ``load()`` runs once before first use. Heavy imports
(torch, monai, medim, the GradICON package) happen in ``load`` or in the methods that need
them, never at module import, so listing engines is cheap. The weights an engine needs are
found only through :mod:`slicerfm_backend.weights` (:meth:`EngineBase.checkpoint`).
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, Callable, ClassVar, ContextManager, Dict, Optional, Tuple

from .options import Parser

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)`` from long work (registration, automatic segmentation):
``done`` of ``total`` units of the named stage (``total`` 0 when unknown). In a background
job it raises :class:`slicerfm_backend.errors.JobCancelled` once the job was cancelled, so
engines call it between steps and let that exception propagate."""

StepGuard = Callable[[], ContextManager[Any]]
"""``with step():`` around each network step of long work: in a job, a device scheduler slot
held for that one step (so clicks on the same device wait for one step, not the whole job)."""


class EngineBase(abc.ABC):
    """Base of :class:`slicerfm_backend.engines.base.Engine` and
    :class:`slicerfm_backend.registration.base.RegistrationEngine`."""

    name: ClassVar[str]
    capabilities: ClassVar[Any]
    option_types: ClassVar[Dict[str, Parser]] = {}

    def __init__(self, device: str = "cpu", options: Optional[Dict[str, Any]] = None):
        self.device = device
        self.options = dict(options or {})

    def checkpoint(self) -> Path:
        """The checkpoint file to load: ``options["checkpoint"]`` (``--checkpoint NAME=PATH``)
        when given, else this engine's file in the weights store (``options["weights_dir"]``
        or the default store); WeightsMissingError naming the fix otherwise."""
        from ..weights.resolve import checkpoint_path

        root = self.options.get("weights_dir")
        return checkpoint_path(self.name, Path(root) if root else None, self.options.get("checkpoint"))

    def weights_status(self) -> Tuple[bool, str]:
        """``(present, detail)``: whether the weights this engine needs are on this machine;
        the detail is the file, or the command that fetches it."""
        if not self.capabilities.needs_weights:
            return True, "no weights needed"
        from ..errors import WeightsMissingError

        try:
            return True, str(self.checkpoint())
        except WeightsMissingError as error:
            return False, str(error)

    def load(self) -> None:  # noqa: B027 - an optional hook: engines without weights have nothing to load
        """Load weights and build networks; called once, before first use."""

    def describe(self) -> Dict[str, Any]:
        """What a client needs to know about this engine (its family adds its own fields)."""
        caps = self.capabilities
        return {"name": self.name, "description": caps.description,
                "modalities": list(caps.modalities), "needs_weights": caps.needs_weights}
