"""Finding the ``slicerfm_client`` package and its dependencies from the Slicer module.

The module never carries its own copy of the client in the repository:

* a built extension installs ``client/slicerfm_client/*.py`` next to ``SlicerFM.py``
  (CMake copies them at configure time), so ``import slicerfm_client`` just works;
* a developer checkout (``SlicerFM/`` added to Slicer's module paths) finds it at
  ``../client`` relative to the module folder, which is put on ``sys.path``.

The client needs ``numpy``, ``requests`` (both in Slicer) and ``blosc2``. Inside the real
Slicer application a missing ``blosc2`` is installed on first use with
``slicer.packaging.pip_ensure`` (or ``slicer.util.pip_install`` on older Slicer); anywhere
else (pytest on slicer-core, scripts) it must already be installed.
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from typing import Optional

log = logging.getLogger(__name__)

MODULE_DIR = Path(__file__).resolve().parents[1]   # the SlicerFM/ module folder
REQUIREMENTS = MODULE_DIR / "Resources" / "requirements.txt"


def client_source_dir(module_dir: Optional[Path] = None) -> Path:
    """``<checkout>/client``: where a developer checkout keeps the client package."""
    return Path(module_dir or MODULE_DIR).resolve().parent / "client"


def ensure_client_importable(module_dir: Optional[Path] = None) -> None:
    """Make ``import slicerfm_client`` work (see the module docstring) or raise ImportError
    saying what is missing."""
    try:
        importlib.import_module("slicerfm_client")
        return
    except ImportError:
        pass
    candidate = client_source_dir(module_dir)
    if (candidate / "slicerfm_client" / "__init__.py").is_file():
        sys.path.insert(0, str(candidate))
        importlib.import_module("slicerfm_client")
        return
    raise ImportError(
        "the SlicerFM client library (slicerfm_client) was not found: install the SlicerFM "
        f"extension, or keep the repository's client/ folder beside {Path(module_dir or MODULE_DIR)}")


def running_in_slicer_app() -> bool:
    """True inside the 3D Slicer application (not on the slicer-core wheel)."""
    slicer = sys.modules.get("slicer")
    return slicer is not None and hasattr(slicer, "app") and hasattr(slicer, "modules")


def ensure_dependencies() -> None:
    """Import ``blosc2`` (needed by the client's wire format); inside Slicer install it
    from ``Resources/requirements.txt`` when missing. Raises ImportError elsewhere."""
    try:
        importlib.import_module("blosc2")
        return
    except ImportError:
        if not running_in_slicer_app():
            raise
    import slicer  # the application's module, checked above

    log.info("SlicerFM: installing the Python packages of %s", REQUIREMENTS)
    packaging = getattr(slicer, "packaging", None)
    if packaging is not None and hasattr(packaging, "pip_ensure"):
        packaging.pip_ensure(packaging.load_requirements(str(REQUIREMENTS)), requester="SlicerFM")
    else:                                      # Slicer before slicer.packaging existed
        slicer.util.pip_install(["-r", str(REQUIREMENTS)])
    importlib.invalidate_caches()
    importlib.import_module("blosc2")


def ensure_client() -> None:
    """Both of the above: after this, ``slicerfm_client`` and its codec import."""
    ensure_client_importable()
    ensure_dependencies()
