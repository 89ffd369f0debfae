"""The panel's job progress bars on real Qt widgets (PySide6, offscreen): a slice engine's
propagation shows in its bar with its Cancel, which reaches the Logic's cancelJob."""

from PySide6 import QtWidgets

from SlicerFMLib.job_bars import SLICE_BOX_TIP, JobBar, JobBarsPresenter, box_tool_tip
from SlicerFMLib.job_progress import ProgressSnapshot
from SlicerFMLib.logic import AUTO_SEGMENTATION, PROPAGATION


class JobsLogic:
    """The three calls the presenter makes, over a list of running jobs a test sets."""

    def __init__(self):
        self.jobs = []
        self.cancelled = []

    def activeJobs(self):
        return list(self.jobs)

    def jobText(self, feature, snapshot):
        return f"propagating 'organ': {snapshot.done}/{snapshot.total} slices" \
            if feature == PROPAGATION else snapshot.text()

    def cancelJob(self, feature):
        self.cancelled.append(feature)


def a_panel():
    panel = QtWidgets.QWidget()
    layout = QtWidgets.QVBoxLayout(panel)
    widgets = {name: QtWidgets.QProgressBar() for name in ("propagation", "auto")}
    cancel, label = QtWidgets.QPushButton("Cancel"), QtWidgets.QLabel()
    for widget in (*widgets.values(), cancel, label):
        layout.addWidget(widget)
    panel.show()
    return panel, widgets, cancel, label


def running(done, total, fraction=None):
    return ProgressSnapshot(state="running", stage="propagating", done=done, total=total,
                            fraction=fraction)


def test_the_propagation_bar_shows_only_while_it_runs_and_its_cancel_reaches_the_logic(a_qt_app):
    panel, bars, cancel, _ = a_panel()
    logic = JobsLogic()
    presenter = JobBarsPresenter(logic, {PROPAGATION: JobBar(bars["propagation"], None, cancel,
                                                             hide_idle=True)})
    assert not bars["propagation"].isVisible() and not cancel.isVisible()
    logic.jobs = [(PROPAGATION, running(3, 12, 0.25))]
    presenter.update()
    bar = bars["propagation"]
    assert bar.isVisible() and cancel.isVisible() and cancel.isEnabled()
    assert (bar.maximum(), bar.value()) == (100, 25)
    assert bar.text() == "propagating 'organ': 3/12 slices (25%)"
    cancel.click()                                      # the user's click on the real button
    assert logic.cancelled == [PROPAGATION]
    logic.jobs = []
    presenter.update()
    assert not bar.isVisible() and not cancel.isVisible() and not cancel.isEnabled()
    assert (bar.maximum(), bar.value()) == (100, 0)
    cancel.click()                                      # hidden and ended: nothing more
    assert logic.cancelled == [PROPAGATION]
    panel.close()


def test_a_propagation_of_unknown_length_shows_a_busy_bar_with_its_line(a_qt_app):
    panel, bars, cancel, _ = a_panel()
    logic = JobsLogic()
    presenter = JobBarsPresenter(logic, {PROPAGATION: JobBar(bars["propagation"], None, cancel,
                                                             hide_idle=True)})
    logic.jobs = [(PROPAGATION, running(0, 0))]
    presenter.update()
    bar = bars["propagation"]
    assert (bar.minimum(), bar.maximum()) == (0, 0)       # Qt's busy indicator
    assert bar.format() == "propagating 'organ': 0/0 slices"
    panel.close()


def test_a_job_bar_with_a_label_writes_its_line_there_and_stays_visible_when_idle(a_qt_app):
    panel, bars, cancel, label = a_panel()
    logic = JobsLogic()
    label.setStyleSheet("color: #c62828")                 # an earlier error message
    presenter = JobBarsPresenter(logic, {AUTO_SEGMENTATION: JobBar(bars["auto"], label)})
    logic.jobs = [(AUTO_SEGMENTATION, ProgressSnapshot(state="running", stage="window", done=2,
                                                       total=8, fraction=0.25))]
    presenter.update()
    assert label.text() == "running: window (2/8)" and label.styleSheet() == ""
    assert bars["auto"].value() == 25
    logic.jobs = []
    presenter.update()
    assert bars["auto"].isVisible() and bars["auto"].value() == 0
    assert label.text() == "running: window (2/8)"     # the Logic's final message replaces it
    panel.close()


def test_the_box_tool_says_how_a_slice_engine_uses_the_box():
    assert box_tool_tip(True) == SLICE_BOX_TIP and "neighbouring slices" in SLICE_BOX_TIP
    assert "slice" not in box_tool_tip(False)
