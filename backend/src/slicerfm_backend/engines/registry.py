"""The segmentation engines: built-in names to ``"module:Class"`` (imported when used).

``SEGMENTATION`` is this family for :class:`slicerfm_backend.engine_core.manager.EngineManager`
(plugins from ``SLICERFM_ENGINE_PLUGINS`` join it when their class derives from
:class:`.base.Engine`; see :mod:`slicerfm_backend.engine_core.registry`).
"""

from __future__ import annotations

from typing import Dict

from ..engine_core.registry import Family
from .base import Engine

ENGINE_CLASSES: Dict[str, str] = {
    "classic": "slicerfm_backend.engines.classic:ClassicEngine",
    "sam-med3d": "slicerfm_backend.engines.sam_med3d:SamMed3DEngine",
    "vista3d": "slicerfm_backend.engines.vista3d:Vista3DEngine",
    "medsam": "slicerfm_backend.engines.medsam:MedSamEngine",
    "sam": "slicerfm_backend.engines.sam:SamEngine",
}

SEGMENTATION = Family("segmentation", Engine, ENGINE_CLASSES)
