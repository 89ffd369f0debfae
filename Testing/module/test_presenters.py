"""The panel's policies as plain-Python presenters, with stand-ins that behave the way the
real widgets do (Testing/qt/ repeats the Qt-specific ones on real Qt widgets):

* a progress dialog whose close() emits its cancel signal (QProgressDialog::closeEvent);
* a combo box that makes its first item current and signals it during addItem (QComboBox);
* a segment selector that selects the first segment and signals it during setCurrentNode,
  before signalling the node (qMRMLSegmentSelectorWidget::populateSegmentCombobox).
"""

import time

from SlicerFMLib.box_prompt import BoxPromptCoalescer
from SlicerFMLib.choice_presenters import EngineChoicePresenter, SegmentChoicePresenter
from SlicerFMLib.progress_presenter import ProgressPresenter
from SlicerFMLib.shortcuts import ShortcutSet
from SlicerFMLib.worker import Task


def a_task(description="positive point on 'liver'", pending_s=0.0):
    task = Task(description)
    task.submitted = time.monotonic() - pending_s
    return task


# -- progress and cancel ------------------------------------------------------------------

class DialogLikeQt:
    """close() emits the cancel signal, as QProgressDialog's closeEvent does."""

    def __init__(self, text, on_cancel):
        self.text, self.on_cancel, self.closed = text, on_cancel, False

    def close(self):
        self.closed = True
        self.on_cancel()

    def user_presses_cancel(self):
        self.on_cancel()


class Dialogs:
    def __init__(self):
        self.opened = []

    def __call__(self, text, on_cancel):
        self.opened.append(DialogLikeQt(text, on_cancel))
        return self.opened[-1]


def a_presenter():
    dialogs, cancelled = Dialogs(), []
    return ProgressPresenter(dialogs, cancelled.append, slow_after_s=0.8), dialogs, cancelled


def test_a_quick_interaction_never_shows_a_dialog():
    presenter, dialogs, _ = a_presenter()
    task = a_task(pending_s=0.1)
    presenter.update(task)
    task.delivered = True
    presenter.update(None)
    assert dialogs.opened == [] and not presenter.showing


def test_closing_a_slow_interactions_dialog_does_not_cancel_the_queued_one_after_it():
    presenter, dialogs, cancelled = a_presenter()
    slow, queued = a_task("slow click", pending_s=2.0), a_task("queued click")
    presenter.update(slow)
    assert [d.text for d in dialogs.opened] == ["Waiting for the server: slow click"]
    slow.delivered = True
    presenter.update(queued)                 # the slow one is done: its dialog is closed
    assert dialogs.opened[0].closed and cancelled == [] and not presenter.showing
    queued.submitted -= 2.0                  # the queued click becomes slow too
    presenter.update(queued)
    assert dialogs.opened[-1].text == "Waiting for the server: queued click"


def test_only_the_users_cancel_cancels_and_only_a_pending_interaction():
    presenter, dialogs, cancelled = a_presenter()
    task = a_task(pending_s=1.0)
    presenter.update(task)
    dialogs.opened[0].user_presses_cancel()
    assert cancelled == [task] and dialogs.opened[0].closed and not presenter.showing
    stale = a_task("finished meanwhile", pending_s=1.0)
    presenter.update(stale)
    stale.delivered = True                   # done, but the dialog is still up this tick
    dialogs.opened[-1].user_presses_cancel()
    assert cancelled == [task]               # nothing else was cancelled


# -- engine list ----------------------------------------------------------------------------

class ComboLikeQt:
    """QComboBox's signalling: the first added item becomes current and is announced."""

    def __init__(self):
        self.items, self.index, self.blocked, self.listeners = [], -1, False, []

    def blockSignals(self, block):
        previous, self.blocked = self.blocked, block
        return previous

    def _emit(self):
        if not self.blocked:
            for listener in self.listeners:
                listener(self.items[self.index] if self.index >= 0 else "")

    def clear(self):
        self.items, self.index = [], -1
        self._emit()

    def addItem(self, text):
        self.items.append(text)
        if self.index < 0:
            self.index = 0
            self._emit()

    def findText(self, text):
        return self.items.index(text) if text in self.items else -1

    def setCurrentIndex(self, index):
        if index != self.index:
            self.index = index
            self._emit()


def test_reconnecting_keeps_the_saved_engine():
    saved = {"engine": "sam-med3d"}
    combo = ComboLikeQt()
    presenter = EngineChoicePresenter(combo, lambda: saved["engine"],
                                      lambda name: saved.update(engine=name))
    combo.listeners.append(presenter.userChose)
    assert presenter.populate(["classic", "sam-med3d", "vista3d"]) == "sam-med3d"
    assert saved["engine"] == "sam-med3d" and combo.items[combo.index] == "sam-med3d"
    combo.setCurrentIndex(2)                           # the user picks another engine
    assert saved["engine"] == "vista3d"
    assert presenter.populate(["classic"]) == "classic" and saved["engine"] == "classic"


def test_the_naive_repopulation_would_overwrite_it():
    """What the presenter prevents: the stand-in combo really announces its first item."""
    saved = {"engine": "sam-med3d"}
    combo = ComboLikeQt()
    combo.listeners.append(lambda name: saved.update(engine=name) if name else None)
    combo.clear()
    for name in ["classic", "sam-med3d"]:
        combo.addItem(name)
    assert saved["engine"] == "classic"


# -- segment selector ------------------------------------------------------------------------

class Segmentation:
    def __init__(self, *segment_ids):
        self.ids = list(segment_ids)

    def GetSegmentation(self):
        return self

    def GetSegment(self, segment_id):
        return segment_id if segment_id in self.ids else None


class SegmentSelectorLikeSlicer:
    """setCurrentNode: repopulate, select the first segment and emit currentSegmentChanged,
    then currentNodeChanged (qMRMLSegmentSelectorWidget)."""

    def __init__(self):
        self.node, self.segment, self.on_node, self.on_segment = None, "", [], []

    def setCurrentNode(self, node):
        if node is self.node:
            return
        self.node = node
        self.segment = node.ids[0] if node is not None and node.ids else ""
        for listener in self.on_segment:
            listener(self.segment)
        for listener in self.on_node:
            listener(node)

    def currentNode(self):
        return self.node

    def setCurrentSegmentID(self, segment_id):
        if segment_id != self.segment and segment_id in self.node.ids:
            self.segment = segment_id
            for listener in self.on_segment:
                listener(segment_id)

    def currentSegmentID(self):
        return self.segment


def a_segment_choice(node, segment_id):
    saved = {"node": node, "segment": segment_id}
    selector = SegmentSelectorLikeSlicer()
    presenter = SegmentChoicePresenter(
        selector, lambda: (saved["node"], saved["segment"]),
        lambda n, s: saved.update(node=n, segment=s))
    selector.on_node.append(presenter.nodeChanged)
    selector.on_segment.append(presenter.segmentChanged)
    return presenter, selector, saved


def test_restoring_a_scene_keeps_the_saved_segment():
    node = Segmentation("skin", "liver", "spleen")
    presenter, selector, saved = a_segment_choice(node, "liver")
    presenter.restore()
    assert selector.currentSegmentID() == "liver" and saved == {"node": node, "segment": "liver"}
    selector.setCurrentSegmentID("spleen")                # later, the user's choice is saved
    assert saved["segment"] == "spleen"
    other = Segmentation("bone")
    selector.setCurrentNode(other)
    assert saved == {"node": other, "segment": "bone"}


def test_a_saved_segment_that_is_gone_falls_back_to_what_the_selector_shows():
    node = Segmentation("skin", "spleen")
    presenter, selector, saved = a_segment_choice(node, "liver")
    presenter.restore()
    assert saved == {"node": node, "segment": "skin"} == {"node": selector.node, "segment": selector.segment}


def test_without_the_presenter_the_selector_would_overwrite_the_saved_segment():
    node = Segmentation("skin", "liver")
    saved = {"segment": "liver"}
    selector = SegmentSelectorLikeSlicer()
    selector.on_segment.append(lambda s: saved.update(segment=s))
    selector.setCurrentNode(node)
    assert saved["segment"] == "skin"


# -- box prompts ------------------------------------------------------------------------------

def test_one_roi_placement_sends_one_box_and_an_unchanged_drag_sends_none():
    scheduled, sent, geometry = [], [], {"box": None}
    coalescer = BoxPromptCoalescer(scheduled.append, lambda: geometry["box"],
                                   lambda: sent.append(geometry["box"]))
    geometry["box"] = (0, 0, 0, 10, 10, 10)
    coalescer.boxChanged("roi", "PointPositionDefinedEvent")
    coalescer.boxChanged("roi", "PointEndInteractionEvent")
    assert len(scheduled) == 1
    scheduled.pop()()
    assert sent == [(0, 0, 0, 10, 10, 10)]
    coalescer.boxChanged("roi", "PointEndInteractionEvent")      # a click without moving it
    scheduled.pop()()
    geometry["box"] = (0, 0, 0, 12, 10, 10)                       # dragged a handle
    coalescer.boxChanged("roi", "PointEndInteractionEvent")
    scheduled.pop()()
    assert sent == [(0, 0, 0, 10, 10, 10), (0, 0, 0, 12, 10, 10)]
    coalescer.forget()                     # the box tool again: the same box is a new prompt
    coalescer.boxChanged()
    scheduled.pop()()
    assert len(sent) == 3


def test_an_unplaced_roi_sends_nothing():
    scheduled, sent = [], []
    coalescer = BoxPromptCoalescer(scheduled.append, lambda: None, lambda: sent.append(1))
    coalescer.boxChanged()
    scheduled.pop()()
    assert sent == []


# -- shortcuts ---------------------------------------------------------------------------------

class Signal:
    def __init__(self):
        self.slots = []

    def connect(self, slot):
        self.slots.append(slot)

    def disconnect(self):
        self.slots = []


class Shortcut:
    def __init__(self, keys, window):
        self.keys, self.parent, self.enabled, self.activated = keys, window, True, Signal()
        window.append(self)

    def setEnabled(self, enabled):
        self.enabled = enabled

    def setParent(self, parent):
        if parent is None and self in self.parent:
            self.parent.remove(self)
        self.parent = parent

    def deleteLater(self):
        pass


def test_entering_twice_or_reloading_leaves_one_live_shortcut_per_key():
    window, ran = [], []

    def make(keys, action):
        shortcut = Shortcut(keys, window)
        shortcut.activated.connect(action)
        return shortcut

    shortcuts = ShortcutSet(make)
    bindings = {"Alt+P": lambda: ran.append("P"), "Ctrl+Alt+Z": lambda: ran.append("Z")}
    shortcuts.install(bindings)
    shortcuts.install(bindings)                  # enter() again without exit()
    assert sorted(s.keys for s in window) == ["Alt+P", "Ctrl+Alt+Z"]
    window[0].activated.slots[0]()
    assert ran == ["P"]
    shortcuts.remove()                           # cleanup() on reload (no exit())
    shortcuts.remove()                           # and exit() later: harmless
    assert window == []
