"""Engine families: names to engine classes, imported only when used.

A :class:`Family` (segmentation, registration) maps each built-in engine name to
``"module:Class"``; importing an engine module is cheap by contract, so a family can list
capabilities without loading any model. A lab's own engines come from the environment
variable ``SLICERFM_ENGINE_PLUGINS="name=module:Class,..."``, for either family: a plugin
belongs to the family whose base class its class derives from (the module is imported when
the plugin is first looked up). A plugin never replaces a built-in of its family.
"""

from __future__ import annotations

import importlib
import os
from typing import Dict, List, Type

PLUGINS_VARIABLE = "SLICERFM_ENGINE_PLUGINS"


def parse_plugins(spec: str) -> Dict[str, str]:
    """``"a=pkg.mod:A,b=mod:B"`` -> ``{"a": "pkg.mod:A", "b": "mod:B"}``; ValueError when
    an item is not ``name=module:Class``."""
    out = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, target = item.partition("=")
        module_name, colon, class_name = target.strip().partition(":")
        if not name.strip() or not colon or not module_name or not class_name:
            raise ValueError(f"{PLUGINS_VARIABLE}: expected name=module:Class, got {item!r}")
        out[name.strip()] = target.strip()
    return out


def plugins() -> Dict[str, str]:
    """The plugins given in the environment now (name -> ``module:Class``)."""
    return parse_plugins(os.environ.get(PLUGINS_VARIABLE, ""))


def import_target(target: str) -> type:
    """The class named by ``"module:Class"``; ValueError saying what failed to import."""
    module_name, _, class_name = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"cannot import engine {target}: {type(error).__name__}: {error}") from error


class Family:
    """The engines of one kind: ``kind`` ("segmentation"), their ``base`` class and the
    built-in ``classes`` (name -> ``"module:Class"``; tests may add entries)."""

    def __init__(self, kind: str, base: type, classes: Dict[str, str]):
        self.kind = kind
        self.base = base
        self.classes = classes

    def _plugin_class(self, name: str):
        """The plugin class named ``name`` when it belongs to this family, else None."""
        target = plugins().get(name)
        if target is None:
            return None
        cls = import_target(target)
        return cls if isinstance(cls, type) and issubclass(cls, self.base) else None

    def engine_class(self, name: str) -> Type:
        """The class registered as ``name``; ValueError listing the known names otherwise."""
        target = self.classes.get(name)
        if target is not None:
            return import_target(target)
        cls = self._plugin_class(name)
        if cls is None:
            raise ValueError(f"unknown {self.kind} engine {name!r}; known: {', '.join(self.names())}")
        return cls

    def knows(self, name: str) -> bool:
        """True when ``name`` is a built-in of this family or one of its plugins."""
        return name in self.classes or self._plugin_class(name) is not None

    def names(self) -> List[str]:
        """Every engine of this family: built-ins, then plugins of this family (sorted)."""
        extra = [name for name in plugins() if name not in self.classes and self._plugin_class(name)]
        return sorted(self.classes) + sorted(extra)
