"""Where an engine's checkpoint is: an explicit override (``--checkpoint ENGINE=PATH`` or
``SLICERFM_CHECKPOINTS="engine=/path,..."``) wins; otherwise the file in the weights store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

from ..errors import WeightsMissingError
from . import store
from .catalogue import CATALOGUE


def parse_checkpoints(spec: str) -> Dict[str, str]:
    """``"a=/x.pth,b=/y.pt"`` → ``{"a": "/x.pth", "b": "/y.pt"}``; ValueError when malformed."""
    out = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        engine, sep, file = item.partition("=")
        if not sep or not engine.strip() or not file.strip():
            raise ValueError(f"checkpoint override: expected ENGINE=PATH, got {item!r}")
        out[engine.strip()] = file.strip()
    return out


def checkpoint_path(engine: str, root: Optional[Path] = None, override: Optional[str] = None) -> Path:
    """The checkpoint file ``engine`` should load; WeightsMissingError naming the fix otherwise.

    An override is used as is (it must exist; it is not checked against the catalogue). The
    stored file is only checked for presence here; ``weights verify`` hashes it.
    """
    if override:
        file = Path(override).expanduser()
        if not file.is_file():
            raise WeightsMissingError(f"checkpoint for {engine} given as {override} does not exist")
        return file
    entry = CATALOGUE.get(engine)
    if entry is None:
        raise WeightsMissingError(f"no weights are catalogued for {engine}; pass --checkpoint {engine}=PATH")
    file = store.path(entry, root or store.default_root())
    if not file.is_file():
        raise WeightsMissingError(f"weights for {engine} are missing ({file}): {store.fix_command(entry)}")
    return file
