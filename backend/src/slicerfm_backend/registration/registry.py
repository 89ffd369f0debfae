"""Registration engines: names to classes, loaded lazily, one instance per server.

``REGISTRATION_ENGINE_CLASSES`` maps a name to ``"module:Class"``; a module is imported only
when its engine is described or used, and heavy imports (torch, the GradICON package)
happen in ``load``/``register``. :class:`RegistrationEngineManager` holds the engines one
server serves (``--registration-engines``, default ``classic``), builds and loads each once,
and answers 503 ``engine_unavailable`` when one is not served or its weights are missing.
"""

from __future__ import annotations

import importlib
import logging
import threading
from typing import Dict, List, Optional, Type

from slicerfm_client import protocol

from ..errors import DomainError, EngineError, WeightsMissingError
from ..engines.registry import resolve_device
from .base import RegistrationEngine

log = logging.getLogger(__name__)

REGISTRATION_ENGINE_CLASSES: Dict[str, str] = {
    "classic": "slicerfm_backend.registration.classic:ClassicRegistrationEngine",
    "unigradicon": "slicerfm_backend.registration.gradicon:UniGradICONEngine",
    "multigradicon": "slicerfm_backend.registration.gradicon:MultiGradICONEngine",
}


def check_names(names: List[str]) -> None:
    """ValueError naming the known engines when ``names`` holds an unknown one (no import)."""
    unknown = [name for name in names if name not in REGISTRATION_ENGINE_CLASSES]
    if unknown:
        raise ValueError(f"unknown registration engine {', '.join(map(repr, unknown))}; known: "
                         f"{', '.join(sorted(REGISTRATION_ENGINE_CLASSES))}")


def registration_engine_class(name: str) -> Type[RegistrationEngine]:
    """The class registered as ``name`` (imports its module); ValueError when unknown."""
    check_names([name])
    module_name, _, class_name = REGISTRATION_ENGINE_CLASSES[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def registration_device(cls: Type[RegistrationEngine], server_device: str) -> str:
    """The server's device when the engine runs there, else the engine's first device."""
    kind = server_device.split(":")[0]
    return server_device if kind in cls.capabilities.devices else cls.capabilities.devices[0]


class RegistrationEngineManager:
    """The registration engines one server serves; each is built and loaded once."""

    def __init__(self, names: List[str], device: str, weights_dir: Optional[str] = None,
                 checkpoints: Optional[Dict[str, str]] = None):
        check_names(list(names))
        self.names = list(names)
        self.device = resolve_device(device)
        self.weights_dir = weights_dir
        self.checkpoints = dict(checkpoints or {})
        self._engines: Dict[str, RegistrationEngine] = {}
        self._load_lock = threading.Lock()

    def engine_options(self, name: str) -> dict:
        options = {"weights_dir": self.weights_dir} if self.weights_dir else {}
        if name in self.checkpoints:
            options["checkpoint"] = self.checkpoints[name]
        return options

    def device_of(self, name: str) -> str:
        return registration_device(registration_engine_class(name), self.device)

    def describe(self) -> List[dict]:
        """What each served engine offers (no weights are loaded)."""
        out = []
        for name in self.names:
            cls = registration_engine_class(name)
            caps = cls.capabilities
            device = registration_device(cls, self.device)
            present, detail = cls(device, self.engine_options(name)).weights_status()
            out.append({
                "name": name, "description": caps.description, "kind": "registration",
                "similarities": list(caps.similarities), "default_io_steps": caps.default_io_steps,
                "modalities": list(caps.modalities), "needs_weights": caps.needs_weights,
                "weights_present": present, "weights_detail": detail, "device": device,
                "loaded": name in self._engines,
            })
        return out

    def get(self, name: str) -> RegistrationEngine:
        """The loaded engine; 503 when not served here or it cannot load (weights missing,
        a checkpoint that does not fit), 500 for a broken installation."""
        if name not in self.names:
            known = name in REGISTRATION_ENGINE_CLASSES
            raise DomainError(protocol.ERROR_ENGINE_UNAVAILABLE if known else protocol.ERROR_INVALID,
                           f"registration engine {name!r} is {'not served here' if known else 'unknown'}; "
                           f"this server offers {', '.join(self.names) or 'none'} (start it with "
                           "--registration-engines to add more)")
        with self._load_lock:
            engine = self._engines.get(name)
            if engine is None:
                cls = registration_engine_class(name)
                engine = cls(registration_device(cls, self.device), self.engine_options(name))
                try:
                    engine.load()
                except WeightsMissingError as error:
                    raise DomainError(protocol.ERROR_ENGINE_UNAVAILABLE, str(error)) from error
                except EngineError as error:
                    raise DomainError(protocol.ERROR_ENGINE_UNAVAILABLE,
                                   f"registration engine {name!r} cannot start: {error}") from error
                except Exception as error:
                    log.exception("registration engine %s failed to load", name)
                    raise DomainError(protocol.ERROR_ENGINE_FAILED,
                                   f"registration engine {name!r} failed to load ({type(error).__name__}: "
                                   f"{error}); the server log has the details") from error
                self._engines[name] = engine
                log.info("registration engine %s loaded on %s", name, engine.device)
            return engine
