"""Tests of the module's Qt-free parts that need neither Slicer nor a scene: the shared
run cycle, the presenters, the worker pump, the local backend launch, dependency
installation and the extension's description files. SlicerFMLib lives in SlicerFM/ (the
scripted module's folder), not in a distribution, so that folder is put on sys.path."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "SlicerFM"))
