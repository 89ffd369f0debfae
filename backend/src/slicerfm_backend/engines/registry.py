"""The engine registry: names to engine classes, loaded lazily, one instance per server.

``ENGINE_CLASSES`` maps each engine name to ``"module:Class"``. Importing an engine module
is cheap by contract (heavy imports happen in ``Engine.load``), so the registry can list
capabilities without loading any model; ``EngineManager.get`` builds and loads an engine on
first use. Inference on one device is serialised by that device's lock, so several sessions
share one copy of the weights and never run two models on one GPU at once.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import threading
from collections import OrderedDict
from typing import Dict, List, Optional, Type

from slicerfm_client import protocol

from ..errors import ApiError
from ..fair_lock import FairLock
from .base import Engine, EngineError, WeightsMissingError
from .options import typed_options

log = logging.getLogger(__name__)

ENGINE_CLASSES: Dict[str, str] = {
    "classic": "slicerfm_backend.engines.classic:ClassicEngine",
    "sam-med3d": "slicerfm_backend.engines.sam_med3d:SamMed3DEngine",
    "vista3d": "slicerfm_backend.engines.vista3d:Vista3DEngine",
    "medsam": "slicerfm_backend.engines.medsam:MedSamEngine",
    "sam": "slicerfm_backend.engines.sam:SamEngine",
}

PLUGINS_VARIABLE = "SLICERFM_ENGINE_PLUGINS"


def register_plugins(spec: str) -> None:
    """Add engines from ``"name=module:Class,name2=module2:Class2"`` (a lab's own engines,
    given in the SLICERFM_ENGINE_PLUGINS environment variable). Built-in names are kept."""
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, target = item.partition("=")
        if not name or ":" not in target:
            raise ValueError(f"{PLUGINS_VARIABLE}: expected name=module:Class, got {item!r}")
        ENGINE_CLASSES.setdefault(name.strip(), target.strip())


register_plugins(os.environ.get(PLUGINS_VARIABLE, ""))


def engine_class(name: str) -> Type[Engine]:
    """The class registered as ``name``; ValueError listing the known names otherwise."""
    target = ENGINE_CLASSES.get(name)
    if target is None:
        raise ValueError(f"unknown engine {name!r}; known engines: {', '.join(sorted(ENGINE_CLASSES))}")
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def resolve_device(requested: str) -> str:
    """``auto`` becomes ``cuda`` when torch sees a GPU, else ``cpu``; others pass through."""
    if requested != "auto":
        return requested
    if importlib.util.find_spec("torch") is None:
        return "cpu"
    import torch  # only when installed; the base server does not need it

    return "cuda" if torch.cuda.is_available() else "cpu"


def engine_device(cls: Type[Engine], server_device: str) -> str:
    """The device an engine runs on: the server's device when the engine supports it."""
    kind = server_device.split(":")[0]
    return server_device if kind in cls.capabilities.devices else cls.capabilities.devices[0]


class EngineManager:
    """The engines one server serves, with per-device locks and per-image engine caches."""

    def __init__(self, names: List[str], device: str, max_cached_images: int = 8,
                 weights_dir: Optional[str] = None, checkpoints: Optional[Dict[str, str]] = None,
                 engine_options: Optional[Dict[str, Dict[str, str]]] = None):
        for name in names:
            engine_class(name)  # fail at start-up on unknown names
        self.names = list(names)
        self.weights_dir = weights_dir
        self.checkpoints = dict(checkpoints or {})
        # Parsed (and refused when wrong) at start-up, not at the first click.
        self.options = {name: typed_options(name, engine_class(name).option_types, given)
                        for name, given in (engine_options or {}).items()}
        self.device = resolve_device(device)
        self._engines: Dict[str, Engine] = {}
        self._load_lock = threading.Lock()
        self._device_locks: Dict[str, FairLock] = {}
        self._caches: "OrderedDict[tuple, dict]" = OrderedDict()
        self._cache_lock = threading.Lock()
        self.max_cached_images = max_cached_images

    def describe(self) -> List[dict]:
        """Capabilities of every served engine, without loading any."""
        out = []
        for name in self.names:
            cls = engine_class(name)
            caps = cls.capabilities
            device = engine_device(cls, self.device)
            present, detail = cls(device, self.engine_options(name)).weights_status()
            out.append({
                "name": name, "description": caps.description,
                "prompt_kinds": list(caps.prompt_kinds), "modalities": list(caps.modalities),
                "needs_weights": caps.needs_weights, "weights_present": present,
                "weights_detail": detail, "device": device, "loaded": name in self._engines,
                "options": dict(self.options.get(name, {})),
            })
        return out

    def engine_options(self, name: str) -> dict:
        """Options an engine is built with: the operator's ``--engine-option`` values, the
        weights store and its checkpoint override."""
        options = dict(self.options.get(name, {}))
        if self.weights_dir:
            options["weights_dir"] = self.weights_dir
        if name in self.checkpoints:
            options["checkpoint"] = self.checkpoints[name]
        return options

    def get(self, name: str) -> Engine:
        """The loaded engine ``name``; 503 when not served here or its weights are missing."""
        if name not in self.names:
            raise ApiError(503, protocol.ERROR_ENGINE_UNAVAILABLE,
                           f"engine {name!r} is not served here; this server offers "
                           f"{', '.join(self.names)} (start it with --engines to add more)")
        with self._load_lock:
            engine = self._engines.get(name)
            if engine is None:
                cls = engine_class(name)
                engine = cls(engine_device(cls, self.device), self.engine_options(name))
                try:
                    engine.load()
                except WeightsMissingError as error:
                    raise ApiError(503, protocol.ERROR_ENGINE_UNAVAILABLE, str(error)) from error
                except EngineError as error:  # e.g. a checkpoint that does not fit the network
                    raise ApiError(503, protocol.ERROR_ENGINE_UNAVAILABLE,
                                   f"engine {name!r} cannot start: {error}") from error
                except Exception as error:  # a broken install must not look like a bare 500
                    log.exception("engine %s failed to load", name)
                    raise ApiError(500, protocol.ERROR_ENGINE_FAILED,
                                   f"engine {name!r} failed to load ({type(error).__name__}: {error}); "
                                   "the server log has the details") from error
                self._engines[name] = engine
                log.info("engine %s loaded on %s", name, engine.device)
            return engine

    def device_lock(self, device: str) -> FairLock:
        """The device's first-come-first-served lock (shared with background jobs)."""
        with self._cache_lock:
            lock = self._device_locks.get(device)
            if lock is None:
                lock = self._device_locks[device] = FairLock()
            return lock

    def cache_for(self, engine: str, image_id: str) -> dict:
        """The engine's private cache for one image (LRU over images)."""
        key = (engine, image_id)
        with self._cache_lock:
            cache = self._caches.get(key)
            if cache is None:
                cache = self._caches[key] = {}
            self._caches.move_to_end(key)
            while len(self._caches) > self.max_cached_images:
                self._caches.popitem(last=False)
            return cache

    def forget_image(self, image_id: str) -> None:
        with self._cache_lock:
            for key in [k for k in self._caches if k[1] == image_id]:
                del self._caches[key]
