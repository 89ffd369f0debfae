"""Presenters on real Qt widgets (PySide6, offscreen): the behaviour each one guards against
is Qt's own, so it is shown here first, then the presenter is shown to handle it."""

import time
import types

import shiboken6
from PySide6 import QtCore, QtGui, QtWidgets

from SlicerFMLib.box_prompt import BoxPromptCoalescer
from SlicerFMLib.choice_presenters import EngineChoicePresenter
from SlicerFMLib.class_catalogue import ClassCatalogue
from SlicerFMLib.class_picker import ClassTreePicker
from SlicerFMLib.progress_presenter import ProgressPresenter, QtProgressDialogView
from SlicerFMLib.pump import TimerPump, WorkerPump
from SlicerFMLib.shortcuts import ShortcutSet, qt_shortcut_factory
from SlicerFMLib.worker import BackgroundWorker, Task


def a_task(description, pending_s=0.0):
    task = Task(description)
    task.submitted = time.monotonic() - pending_s
    return task


def process_events(until=lambda: False, timeout_s=5.0):
    """Run Qt's event loop until ``until()`` or ``timeout_s``. (One QEventLoop.exec(), not a
    loop of QApplication.processEvents: PySide6 6.12 drops a reference to None on every
    processEvents call, which aborts Python 3.11 at exit after a few thousand calls.)"""
    loop = QtCore.QEventLoop()

    def check():
        if until():
            loop.quit()

    checker, stop = QtCore.QTimer(), QtCore.QTimer()
    checker.setInterval(5)
    checker.timeout.connect(check)
    stop.setSingleShot(True)
    stop.timeout.connect(loop.quit)
    checker.start()
    stop.start(int(timeout_s * 1000))
    loop.exec()
    checker.stop()
    stop.stop()


# -- progress dialog -------------------------------------------------------------------------

def test_qt_closing_a_progress_dialog_emits_canceled(a_qt_app):
    """The Qt behaviour (QProgressDialog::closeEvent emits canceled())."""
    dialog = QtWidgets.QProgressDialog("waiting", "Cancel", 0, 0)
    emitted = []
    dialog.canceled.connect(lambda: emitted.append("canceled"))
    dialog.show()
    dialog.close()
    assert emitted == ["canceled"]


def test_the_presenters_dialog_closing_for_a_finished_click_does_not_cancel_the_next(a_qt_app):
    cancelled, dialogs = [], []

    def make_dialog():
        dialogs.append(QtWidgets.QProgressDialog())
        return dialogs[-1]

    presenter = ProgressPresenter(QtProgressDialogView.factory(make_dialog), cancelled.append)
    slow, queued = a_task("slow click", pending_s=2.0), a_task("queued click")
    presenter.update(slow)
    assert dialogs[0].isVisible() and dialogs[0].labelText() == "Waiting for the server: slow click"
    slow.delivered = True
    presenter.update(queued)
    assert not dialogs[0].isVisible() and cancelled == []
    process_events(lambda: not shiboken6.isValid(dialogs[0]))       # deleteLater ran
    assert not shiboken6.isValid(dialogs[0]) and cancelled == []


def test_the_presenter_alone_ignores_the_canceled_signal_of_its_own_close(a_qt_app):
    """Even with a view that does not disconnect canceled() before closing."""
    class UndisconnectedView(QtProgressDialogView):
        def close(self):
            self.dialog.close()

    cancelled = []
    presenter = ProgressPresenter(
        lambda text, on_cancel: UndisconnectedView(QtWidgets.QProgressDialog, text, on_cancel),
        cancelled.append)
    presenter.update(a_task("slow click", pending_s=2.0))
    presenter.update(None)
    assert cancelled == []


def test_the_users_cancel_button_cancels_the_pending_click(a_qt_app):
    cancelled, dialogs = [], []

    def make_dialog():
        dialogs.append(QtWidgets.QProgressDialog())
        return dialogs[-1]

    presenter = ProgressPresenter(QtProgressDialogView.factory(make_dialog), cancelled.append)
    task = a_task("slow click", pending_s=2.0)
    presenter.update(task)
    dialogs[0].findChild(QtWidgets.QPushButton).click()
    assert cancelled == [task] and not presenter.showing


# -- engine combo box --------------------------------------------------------------------------

def test_qt_a_combo_box_announces_its_first_item_during_add_item(a_qt_app):
    combo, seen = QtWidgets.QComboBox(), []
    combo.currentTextChanged.connect(seen.append)
    combo.addItem("classic")
    combo.addItem("sam-med3d")
    assert seen == ["classic"]


def test_the_engine_presenter_on_a_real_combo_box_keeps_the_saved_engine(a_qt_app):
    saved = {"engine": "sam-med3d"}
    combo = QtWidgets.QComboBox()
    presenter = EngineChoicePresenter(combo, lambda: saved["engine"],
                                      lambda name: saved.update(engine=name))
    combo.currentTextChanged.connect(presenter.userChose)
    presenter.populate(["classic", "sam-med3d"])
    presenter.populate(["classic", "sam-med3d", "vista3d"])         # reconnect
    assert saved["engine"] == "sam-med3d" and combo.currentText() == "sam-med3d"
    combo.setCurrentIndex(2)
    assert saved["engine"] == "vista3d"
    assert not combo.signalsBlocked()


# -- pump on a QTimer ---------------------------------------------------------------------------

def test_a_timer_pump_delivers_worker_results_on_the_qt_thread(a_qt_app):
    worker, delivered = BackgroundWorker(), []
    pump = TimerPump(WorkerPump([worker]), QtCore.QTimer())
    pump.start()
    try:
        worker.submit(lambda: "result", on_done=delivered.append)
        process_events(lambda: bool(delivered))
        assert delivered == ["result"] and pump.pump.ticks > 0
    finally:
        pump.stop()
        worker.shutdown()


# -- shortcuts ----------------------------------------------------------------------------------

def test_shortcuts_installed_twice_and_removed_leave_no_duplicates(a_qt_app):
    window, ran = QtWidgets.QMainWindow(), []
    shortcuts = ShortcutSet(qt_shortcut_factory(QtGui.QShortcut, QtGui.QKeySequence, window))
    bindings = {"Alt+P": lambda: ran.append("P"), "Ctrl+Alt+Z": lambda: ran.append("Z")}
    shortcuts.install(bindings)
    shortcuts.install(bindings)                          # enter() twice / reload
    found = window.findChildren(QtGui.QShortcut)
    assert sorted(s.key().toString() for s in found) == ["Alt+P", "Ctrl+Alt+Z"]
    found[0].activated.emit()
    assert len(ran) == 1
    shortcuts.remove()
    assert window.findChildren(QtGui.QShortcut) == []


# -- box prompt on the event loop -----------------------------------------------------------------

def test_two_roi_events_in_one_turn_of_the_event_loop_send_one_box(a_qt_app):
    sent = []
    coalescer = BoxPromptCoalescer(lambda fn: QtCore.QTimer.singleShot(0, fn),   # as the module
                                   lambda: (0, 0, 0, 5, 5, 5), lambda: sent.append("box"))
    coalescer.boxChanged()            # PointPositionDefinedEvent
    coalescer.boxChanged()            # PointEndInteractionEvent
    process_events(lambda: bool(sent), timeout_s=1.0)
    process_events(timeout_s=0.2)
    assert sent == ["box"]


# -- class tree -------------------------------------------------------------------------------------

def test_the_class_picker_fills_filters_and_reads_a_real_tree(a_qt_app):
    catalogue = ClassCatalogue.from_server([
        {"id": 1, "name": "liver", "group": "organs", "color": [220, 120, 80]},
        {"id": 5, "name": "left kidney", "group": "organs"},
        {"id": 6, "name": "right kidney", "group": "organs"},
        {"id": 30, "name": "aorta", "group": "vessels", "everything": True}])
    tree, groups = QtWidgets.QTreeWidget(), QtWidgets.QComboBox()
    qt = types.SimpleNamespace(QTreeWidgetItem=QtWidgets.QTreeWidgetItem, QColor=QtGui.QColor,
                               Qt=QtCore.Qt)
    picker = ClassTreePicker(tree, groups, qt)
    picker.populate(catalogue)
    assert [groups.itemText(i) for i in range(groups.count())] == ["all groups", "organs", "vessels"]
    picker.filter("kidney left")
    organs = tree.topLevelItem(0)
    shown = [organs.child(c).text(0) for c in range(organs.childCount()) if not organs.child(c).isHidden()]
    assert shown == ["left kidney"] and tree.topLevelItem(1).isHidden()
    organs.child(0).setCheckState(0, QtCore.Qt.Checked)
    tree.topLevelItem(1).child(0).setCheckState(0, QtCore.Qt.Checked)
    assert picker.checked() == [1, 30]
