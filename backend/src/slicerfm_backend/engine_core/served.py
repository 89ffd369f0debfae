"""The engines a server (or an in-process command) serves, built from its settings.

One :class:`.manager.EngineManager` per family over the same device, weights store,
checkpoint overrides and ``--engine-option`` values (split between the families by
:func:`.manager.split_options`).
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

from ..engines.registry import SEGMENTATION
from ..registration.registry import REGISTRATION
from ..settings import Settings
from .manager import EngineManager, split_options

FAMILIES = (SEGMENTATION, REGISTRATION)


def engine_managers(settings: Settings, segmentation: Optional[Sequence[str]] = None,
                    registration: Optional[Sequence[str]] = None,
                    device: Optional[str] = None) -> Tuple[EngineManager, EngineManager]:
    """``(segmentation manager, registration manager)`` serving ``segmentation`` and
    ``registration`` (default: ``settings.engines`` / ``settings.registration_engines``) on
    ``device`` (default ``settings.device``); ValueError for a wrong name or option."""
    options = split_options(settings.engine_options, FAMILIES)
    common = {"weights_dir": str(settings.weights_dir), "checkpoints": settings.checkpoints}
    device = device or settings.device
    return (EngineManager(SEGMENTATION, settings.engines if segmentation is None else segmentation, device,
                          engine_options=options[SEGMENTATION.kind], **common),
            EngineManager(REGISTRATION, settings.registration_engines if registration is None else registration,
                          device, engine_options=options[REGISTRATION.kind], **common))
