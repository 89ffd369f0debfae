"""Finding the ``slicerfm_client`` package and its dependencies from the Slicer module.

The module never carries its own copy of the client in the repository:

* a built extension installs ``client/slicerfm_client/*.py`` next to ``SlicerFM.py``
  (CMake copies them at configure time), so ``import slicerfm_client`` just works;
* a developer checkout (``SlicerFM/`` added to Slicer's module paths) finds it at
  ``../client`` relative to the module folder, which is put on ``sys.path``.

The client needs ``numpy``, ``requests`` (both in Slicer) and ``blosc2``. Inside the real
Slicer application a missing ``blosc2`` is installed on first use, after asking, with
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
MISSING = ("SlicerFM needs the Python package blosc2: install it from the Python console "
           "with slicer.util.pip_install('blosc2') and restart Slicer")


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


def ensure_dependencies(installInTesting: bool = False) -> None:
    """Import ``blosc2`` (needed by the client's wire format). Inside Slicer a missing one is
    installed from ``Resources/requirements.txt`` after asking the user; elsewhere (and when
    the user declines) ImportError says what to install.

    Slicer 5.11 and later: ``slicer.packaging.pip_ensure`` (asks, installs, offers a restart
    when needed; skips installing in testing mode unless ``installInTesting``). The
    submodule is imported explicitly: ``slicer.packaging`` is not an attribute of ``slicer``
    until something imports it. Older Slicer (5.8, 5.10 have no ``slicer.packaging``): ask
    with ``slicer.util.confirmOkCancelDisplay``, then ``slicer.util.pip_install``.
    """
    try:
        importlib.import_module("blosc2")
        return
    except ImportError:
        if not running_in_slicer_app():
            raise
    import slicer  # the application's module, checked above

    try:
        packaging = importlib.import_module("slicer.packaging")
    except ImportError:
        packaging = None
    log.info("SlicerFM: installing the Python packages of %s", REQUIREMENTS)
    if packaging is not None and hasattr(packaging, "pip_ensure"):
        try:
            packaging.pip_ensure(packaging.load_requirements(str(REQUIREMENTS)),
                                 requester="SlicerFM", skip_in_testing=not installInTesting)
        except RuntimeError as error:          # "User declined package installation"
            raise ImportError(f"{MISSING}: {error}") from error
    else:
        question = ("SlicerFM needs the Python package blosc2 (the client's compression "
                    "codec) in Slicer's Python environment. Install it now with pip?")
        if not slicer.util.confirmOkCancelDisplay(question, "SlicerFM - Install Python Packages"):
            raise ImportError(f"{MISSING}: the installation was declined")
        slicer.util.pip_install(["-r", str(REQUIREMENTS)])
    importlib.invalidate_caches()
    try:
        importlib.import_module("blosc2")
    except ImportError as error:
        raise ImportError(f"{MISSING}: {error}") from error


def ensure_client() -> None:
    """Both of the above: after this, ``slicerfm_client`` and its codec import."""
    ensure_client_importable()
    ensure_dependencies()
