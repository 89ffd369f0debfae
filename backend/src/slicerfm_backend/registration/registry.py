"""The registration engines: built-in names to ``"module:Class"`` (imported when used).

``REGISTRATION`` is this family for :class:`slicerfm_backend.engine_core.manager.EngineManager`
(served with ``--registration-engines``, default ``classic``; plugins from
``SLICERFM_ENGINE_PLUGINS`` join it when their class derives from
:class:`.base.RegistrationEngine`).
"""

from __future__ import annotations

from typing import Dict

from ..engine_core.registry import Family
from .base import RegistrationEngine

REGISTRATION_ENGINE_CLASSES: Dict[str, str] = {
    "classic": "slicerfm_backend.registration.classic:ClassicRegistrationEngine",
    "unigradicon": "slicerfm_backend.registration.gradicon:UniGradICONEngine",
    "multigradicon": "slicerfm_backend.registration.gradicon:MultiGradICONEngine",
}

REGISTRATION = Family("registration", RegistrationEngine, REGISTRATION_ENGINE_CLASSES)
