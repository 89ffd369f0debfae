"""The panel's progress bars of server jobs: registration, automatic segmentation and a slice
engine's propagation (plain Python; Qt widgets are given, only methods common to Slicer's
PythonQt and PySide are called).

:class:`JobBarsPresenter` reads the Logic's running jobs after every pump tick
(:meth:`SlicerFMLib.logic.SlicerFMCoreLogic.activeJobs`) and shows each in its bar: a busy
indicator while the fraction is unknown, else the percentage, and the job's line (e.g.
"propagating 'liver': 12/40 slices") in its label or, without a label, as the bar's text. A
bar may have a Cancel button of its own (enabled only while its job runs; it calls
:meth:`~SlicerFMLib.logic.SlicerFMCoreLogic.cancelJob`) and may be hidden while idle (the
propagation bar: it only means something with a slice engine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

#: the box tool's tooltip, by whether the engine takes slice prompts (medsam, sam)
BOX_TIP = "Draw a box (ROI) around the object. Alt+B"
SLICE_BOX_TIP = ("Draw a box around the object on one slice, in a slice view that shows the "
                 "volume's own slices (axial, coronal or sagittal): that slice is segmented at "
                 "once, then the result is carried to the neighbouring slices (progress and "
                 "Cancel below). Alt+B")


def box_tool_tip(slice_engine: bool) -> str:
    """The box button's tooltip for the current engine."""
    return SLICE_BOX_TIP if slice_engine else BOX_TIP


@dataclass
class JobBar:
    """The widgets of one feature's job: ``bar`` (QProgressBar), ``label`` (QLabel for the
    job's line, or None: the line goes in the bar's format), ``cancel`` (QPushButton, or
    None when the panel wires its own), ``hide_idle`` (hide bar and button while idle)."""

    bar: Any
    label: Any = None
    cancel: Any = None
    hide_idle: bool = False


class JobBarsPresenter:
    """``logic``: has ``activeJobs()`` -> ``[(feature, ProgressSnapshot)]``,
    ``jobText(feature, snapshot)`` and ``cancelJob(feature)``. ``bars``: feature -> JobBar."""

    def __init__(self, logic, bars: Dict[str, JobBar]):
        self.logic = logic
        self.bars = bars
        self.running: Dict[str, Any] = {}
        for feature, widgets in bars.items():
            if widgets.cancel is not None:
                widgets.cancel.clicked.connect(lambda *_args, feature=feature: self.cancel(feature))
            self._idle(widgets)

    def cancel(self, feature: str) -> None:
        """A bar's Cancel: only while its job runs (a late click after it ended does nothing)."""
        if feature in self.running:
            self.logic.cancelJob(feature)

    def update(self) -> None:
        """Call after every pump tick."""
        running = {feature: snapshot for feature, snapshot in self.logic.activeJobs()
                   if feature in self.bars}
        for feature, widgets in self.bars.items():
            snapshot = running.get(feature)
            if snapshot is None:
                if feature in self.running:
                    self._idle(widgets)
                continue
            self._show(widgets, self.logic.jobText(feature, snapshot), snapshot.fraction)
        self.running = running

    @staticmethod
    def _show(widgets: JobBar, text: str, fraction: Optional[float]) -> None:
        bar = widgets.bar
        bar.setMaximum(0 if fraction is None else 100)        # 0: busy indicator
        bar.setValue(0 if fraction is None else int(round(100 * fraction)))
        if widgets.label is not None:
            widgets.label.setStyleSheet("")
            widgets.label.setText(text)
        else:
            bar.setFormat(f"{text} (%p%)" if fraction is not None else text)
        bar.setVisible(True)
        if widgets.cancel is not None:
            widgets.cancel.setEnabled(True)
            widgets.cancel.setVisible(True)

    @staticmethod
    def _idle(widgets: JobBar) -> None:
        bar = widgets.bar
        bar.setMaximum(100)
        bar.setValue(0)
        if widgets.label is None:
            bar.setFormat("%p%")
        if widgets.cancel is not None:
            widgets.cancel.setEnabled(False)
        if widgets.hide_idle:
            bar.setVisible(False)
            if widgets.cancel is not None:
                widgets.cancel.setVisible(False)
