"""The engines one server serves, per family: described without loading, loaded once.

One :class:`EngineManager` per family (segmentation, registration) with the same rules:

* the served names, the options (``--engine-option``) and the checkpoint overrides
  (``--checkpoint``) are checked at start-up: a wrong one stops the server with a message;
* an engine is built on its device (:func:`.devices.engine_device`) and loaded on first use;
* a name this server does not serve -- unknown, or known but not started with
  ``--engines`` / ``--registration-engines`` -- answers ``engine_unavailable``; so does an
  engine that cannot load (weights missing, a checkpoint that does not fit); a broken
  installation (any other exception while loading) answers ``engine_failed``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Dict, Iterable, List, Optional, Sequence

from slicerfm_client import protocol

from ..errors import DomainError, EngineError, WeightsMissingError
from .devices import DeviceChoice, engine_device, resolve_device
from .options import typed_options
from .registry import Family

log = logging.getLogger(__name__)


def split_options(engine_options: Dict[str, Dict[str, Any]],
                  families: Sequence[Family]) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """``{engine: {key: value}}`` -> ``{family kind: {engine: {key: value}}}``.

    A name known to one family goes there. A name known to several (``classic``) is split
    by key: each key goes to the family whose engine declares it. ValueError for an unknown
    engine, or a key none (or more than one) of the engines of that name declares."""
    out: Dict[str, Dict[str, Dict[str, Any]]] = {family.kind: {} for family in families}
    for name, given in engine_options.items():
        owners = [family for family in families if family.knows(name)]
        if not owners:
            known = sorted({n for family in families for n in family.names()})
            raise ValueError(f"engine option for unknown engine {name!r}; known engines: {', '.join(known)}")
        if len(owners) == 1:
            out[owners[0].kind][name] = dict(given)
            continue
        for key, value in given.items():
            declaring = [f for f in owners if key in f.engine_class(name).option_types]
            if len(declaring) != 1:
                accepted = "; ".join(f"{f.kind}: {', '.join(sorted(f.engine_class(name).option_types)) or 'none'}"
                                     for f in owners)
                problem = "has no option" if not declaring else "has more than one engine declaring"
                raise ValueError(f"engine {name!r} {problem} {key!r} (its options: {accepted})")
            out[declaring[0].kind].setdefault(name, {})[key] = value
    return out


class EngineManager:
    """The engines of ``family`` that one server serves (``names``), on ``device``
    (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``)."""

    def __init__(self, family: Family, names: Iterable[str], device: str, weights_dir: Optional[str] = None,
                 checkpoints: Optional[Dict[str, str]] = None,
                 engine_options: Optional[Dict[str, Dict[str, Any]]] = None):
        self.family = family
        self.names = list(names)
        for name in self.names:
            family.engine_class(name)  # fail at start-up on unknown names
        self.weights_dir = weights_dir
        self.checkpoints = dict(checkpoints or {})
        # Parsed (and refused when wrong) at start-up, not at the first use.
        self.options = {name: typed_options(name, family.engine_class(name).option_types, given)
                        for name, given in (engine_options or {}).items()}
        self.device_choice: DeviceChoice = resolve_device(device)
        self.device = self.device_choice.device
        self._engines: Dict[str, Any] = {}
        self._load_lock = threading.Lock()

    def engine_class(self, name: str):
        """The class of a served engine (no loading); ``engine_unavailable`` otherwise."""
        self._require_served(name)
        return self.family.engine_class(name)

    def device_of(self, name: str) -> str:
        return engine_device(self.family.engine_class(name).capabilities.devices, self.device)

    def engine_options(self, name: str) -> dict:
        """Options an engine is built with: the operator's ``--engine-option`` values, the
        weights store and its checkpoint override."""
        options = dict(self.options.get(name, {}))
        if self.weights_dir:
            options["weights_dir"] = self.weights_dir
        if name in self.checkpoints:
            options["checkpoint"] = self.checkpoints[name]
        return options

    def instance(self, name: str):
        """A new, unloaded instance of ``name`` as this server would build it."""
        return self.family.engine_class(name)(self.device_of(name), self.engine_options(name))

    def describe(self) -> List[dict]:
        """What every served engine offers, without loading any: the engine's own fields
        (:meth:`EngineBase.describe`) plus kind, device, weights, loaded and options."""
        out = []
        for name in self.names:
            engine = self._engines.get(name) or self.instance(name)
            present, detail = engine.weights_status()
            row = engine.describe()
            row.update({"name": name, "kind": self.family.kind, "weights_present": present,
                        "weights_detail": detail, "device": engine.device, "loaded": name in self._engines,
                        "options": dict(self.options.get(name, {}))})
            out.append(row)
        return out

    def _require_served(self, name: str) -> None:
        if name in self.names:
            return
        what = "is not served here" if self.family.knows(name) else "is unknown"
        flag = "--engines" if self.family.kind == "segmentation" else f"--{self.family.kind}-engines"
        raise DomainError(protocol.ERROR_ENGINE_UNAVAILABLE,
                          f"{self.family.kind} engine {name!r} {what}; this server offers "
                          f"{', '.join(self.names) or 'none'} (start it with {flag} to add more)")

    def get(self, name: str):
        """The loaded engine ``name`` (loaded on first use); see the module docstring for
        the errors."""
        self._require_served(name)
        with self._load_lock:
            engine = self._engines.get(name)
            if engine is None:
                engine = self.instance(name)
                try:
                    engine.load()
                except WeightsMissingError as error:
                    raise DomainError(protocol.ERROR_ENGINE_UNAVAILABLE, str(error)) from error
                except EngineError as error:  # e.g. a checkpoint that does not fit the network
                    raise DomainError(protocol.ERROR_ENGINE_UNAVAILABLE,
                                      f"engine {name!r} cannot start: {error}") from error
                except Exception as error:  # a broken install must not look like a bare 500
                    log.exception("%s engine %s failed to load", self.family.kind, name)
                    raise DomainError(protocol.ERROR_ENGINE_FAILED,
                                      f"engine {name!r} failed to load ({type(error).__name__}: {error}); "
                                      "the server log has the details") from error
                self._engines[name] = engine
                log.info("%s engine %s loaded on %s", self.family.kind, name, engine.device)
            return engine
