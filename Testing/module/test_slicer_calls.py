"""Calls into Slicer's application, checked against stand-ins that behave as Slicer's source
says (Slicer itself cannot be installed here; README "Verification" lists what has run where):

* undo states never create the Segment Editor's widget (which would create its parameter
  node with overwrite mode "all segments");
* blosc2 is installed only after asking, through ``slicer.packaging`` imported explicitly
  (Slicer >= 5.11) or ``slicer.util.pip_install`` (5.8, 5.10);
* the self-test finds a configured backend, or says why the click test is skipped.
"""

import sys
import types

import pytest

from SlicerFMLib import client_setup
from SlicerFMLib.connection import configured_test_backend
from SlicerFMLib.undo import SegmentEditorHistory, existing_segment_editor

# -- Segment Editor ----------------------------------------------------------------------------


class Modules:
    """``slicer.modules``: ``segmenteditor.widgetRepresentation()`` creates the widget (and
    with it the "SegmentEditor" node); ``SegmentEditorWidget`` exists only afterwards."""

    def __init__(self):
        self.created = []
        self.segmenteditor = types.SimpleNamespace(widgetRepresentation=self._create)

    def _create(self):
        self.created.append("SegmentEditor widget and parameter node")
        self.SegmentEditorWidget = types.SimpleNamespace(editor=Editor(None))
        return self.SegmentEditorWidget


class Editor:
    def __init__(self, segmentation):
        self.segmentation, self.saved = segmentation, 0

    def segmentationNode(self):
        return self.segmentation

    def saveStateForUndo(self):
        self.saved += 1


class SegmentationNode:
    """Scene undo off: save_state_for_undo records nothing and says so."""

    def GetScene(self):
        return None


def test_an_undo_state_never_creates_the_segment_editor():
    modules, node = Modules(), SegmentationNode()
    history = SegmentEditorHistory(lambda: node, lambda: existing_segment_editor(modules))
    assert history.SaveState() is False          # scene undo off: nothing recorded
    assert modules.created == [] and not hasattr(modules, "SegmentEditorWidget")


def test_when_the_segment_editor_edits_the_same_segmentation_its_history_gets_the_state():
    modules, node = Modules(), SegmentationNode()
    modules.SegmentEditorWidget = types.SimpleNamespace(editor=Editor(node))
    history = SegmentEditorHistory(lambda: node, lambda: existing_segment_editor(modules))
    assert history.SaveState() is True and modules.SegmentEditorWidget.editor.saved == 1
    modules.SegmentEditorWidget.editor.segmentation = SegmentationNode()     # another one
    assert history.SaveState() is False and modules.SegmentEditorWidget.editor.saved == 1
    assert modules.created == []


def test_a_segment_editor_widget_before_setup_counts_as_absent():
    modules = Modules()
    modules.SegmentEditorWidget = types.SimpleNamespace(editor=None)
    assert existing_segment_editor(modules) is None


# -- dependency installation --------------------------------------------------------------------


class FakeSlicer(types.ModuleType):
    """The application's ``slicer`` module: app, modules, util (dialogs and pip recorded)."""

    def __init__(self, answer: bool):
        super().__init__("slicer")
        self.app, self.modules, self.calls = object(), object(), []
        self.util = types.SimpleNamespace(
            confirmOkCancelDisplay=lambda text, title: self.calls.append(("ask", title)) or answer,
            pip_install=lambda args: self._install(("pip_install", tuple(args))))

    def _install(self, call):
        self.calls.append(call)
        sys.modules["blosc2"] = types.ModuleType("blosc2")


@pytest.fixture
def no_blosc2(monkeypatch):
    """import blosc2 fails until a stand-in install puts a module there; monkeypatch puts
    the real module back afterwards (never re-imported: the client holds its objects)."""
    monkeypatch.setitem(sys.modules, "blosc2", None)
    monkeypatch.delitem(sys.modules, "slicer.packaging", raising=False)


def test_slicer_5_11_installs_through_slicer_packaging_even_when_nothing_imported_it(
        monkeypatch, no_blosc2):
    slicer = FakeSlicer(answer=True)
    packaging = types.ModuleType("slicer.packaging")        # not an attribute of slicer
    packaging.load_requirements = lambda path: ["blosc2>=2.0"]
    packaging.pip_ensure = lambda reqs, requester, skip_in_testing: slicer._install(
        ("pip_ensure", tuple(reqs), requester, skip_in_testing))
    monkeypatch.setitem(sys.modules, "slicer", slicer)
    monkeypatch.setitem(sys.modules, "slicer.packaging", packaging)
    assert not hasattr(slicer, "packaging")
    client_setup.ensure_dependencies()
    assert slicer.calls == [("pip_ensure", ("blosc2>=2.0",), "SlicerFM", True)]


def test_older_slicer_asks_then_installs_with_pip_install(monkeypatch, no_blosc2):
    slicer = FakeSlicer(answer=True)
    monkeypatch.setitem(sys.modules, "slicer", slicer)      # no slicer.packaging at all
    client_setup.ensure_dependencies()
    assert slicer.calls[0][0] == "ask"
    assert slicer.calls[1] == ("pip_install", ("-r", str(client_setup.REQUIREMENTS)))


def test_declining_installs_nothing_and_says_what_to_install(monkeypatch, no_blosc2):
    slicer = FakeSlicer(answer=False)
    monkeypatch.setitem(sys.modules, "slicer", slicer)
    with pytest.raises(ImportError, match="pip_install\\('blosc2'\\)"):
        client_setup.ensure_dependencies()
    assert [call[0] for call in slicer.calls] == ["ask"]


def test_pip_ensure_declined_by_the_user_becomes_the_same_message(monkeypatch, no_blosc2):
    slicer = FakeSlicer(answer=False)
    packaging = types.ModuleType("slicer.packaging")

    def declined(reqs, requester, skip_in_testing):
        raise RuntimeError("User declined package installation")

    packaging.load_requirements, packaging.pip_ensure = (lambda path: ["blosc2>=2.0"]), declined
    monkeypatch.setitem(sys.modules, "slicer", slicer)
    monkeypatch.setitem(sys.modules, "slicer.packaging", packaging)
    with pytest.raises(ImportError, match="declined"):
        client_setup.ensure_dependencies()


# -- the self-test's backend ----------------------------------------------------------------------


def test_the_self_test_is_skipped_with_a_reason_when_no_backend_is_configured():
    backend, reason = configured_test_backend({}, which=lambda name: None)
    assert backend is None and "SLICERFM_BACKEND" in reason and "SLICERFM_TEST_BACKEND" in reason


def test_the_self_test_uses_the_configured_backend_or_the_one_on_path():
    assert configured_test_backend({"SLICERFM_BACKEND": "/opt/fm/bin/slicerfm-backend"},
                                   which=lambda name: None) == ("/opt/fm/bin/slicerfm-backend", "")
    assert configured_test_backend({}, which=lambda name: f"/usr/bin/{name}") == \
        ("/usr/bin/slicerfm-backend", "")
