"""The module's presenters wired to real Qt widgets (PySide6 from PyPI, offscreen: no
display needed). Slicer's PythonQt is not available outside Slicer; where the behaviour
under test is Qt's own (a QProgressDialog emitting canceled() when closed, a QComboBox
signalling during addItem, QTimer, QShortcut), PySide6 wraps the same Qt classes. The
presenters and views use only what PythonQt and PySide share (methods, signal.connect)."""

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "SlicerFM"))

try:
    from PySide6 import QtWidgets
except ImportError as error:     # a missing test dependency is a failure, never a skip
    pytest.fail(f"the Qt tests need PySide6 (pip install -r Testing/requirements.txt): {error}",
                pytrace=False)


@pytest.fixture(scope="session")
def a_qt_app():
    return QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
