"""The "waiting for the server" dialog of interactive work: when it shows, what Cancel does.

Policy (:class:`ProgressPresenter`, plain Python):

* a dialog opens for an interaction (connecting, a click, undo...) only once it has been
  pending for ``slow_after_s`` -- quick clicks never flash a dialog;
* it closes as soon as that interaction is delivered; when the next queued one becomes slow,
  a new dialog opens for it;
* **only the user's Cancel cancels**, and it cancels only while the interaction the dialog
  is about is still pending. Qt's ``QProgressDialog::closeEvent`` emits ``canceled()``
  (``qprogressdialog.cpp``), so closing the dialog from code must never reach the Logic's
  cancel: the presenter ignores ``canceled`` while it closes the dialog itself, and the Qt
  view disconnects the signal before closing (either alone prevents it; a queued click
  after a slow one is no longer cancelled when the slow one's dialog goes away).

:class:`QtProgressDialogView` wires the presenter to a real ``QProgressDialog`` (Slicer's
PythonQt or PySide/PyQt: it uses only methods and the ``signal.connect`` form common to both).
"""

from __future__ import annotations

from typing import Any, Callable

#: an interaction pending this long gets a dialog, s
SLOW_AFTER_S = 0.8


class ProgressPresenter:
    """Shows and hides a progress view for slow interactions; routes the user's Cancel.

    make_view(text, on_cancel): opens a view showing ``text`` and calling ``on_cancel()``
    when the user cancels (and, being Qt, possibly when it is closed); returns an object
    with ``close()``. cancel(task): cancels ``task`` (and what is queued behind it), e.g.
    ``lambda task: logic.interactive.cancel()``.
    """

    def __init__(self, make_view: Callable[[str, Callable[[], None]], Any],
                 cancel: Callable[[Any], None], slow_after_s: float = SLOW_AFTER_S):
        self.make_view = make_view
        self.cancel = cancel
        self.slow_after_s = slow_after_s
        self.shown_task = None
        self._view = None
        self._closing = False

    def update(self, task) -> None:
        """Call after each pump tick with the oldest pending interaction (a
        :class:`~SlicerFMLib.worker.Task`, or None when idle)."""
        if task is self.shown_task and task is not None:
            return
        self.close()
        if task is not None and task.elapsed_s() >= self.slow_after_s:
            self.shown_task = task
            self._view = self.make_view(f"Waiting for the server: {task.description}",
                                        self.userCancelled)

    def userCancelled(self) -> None:
        """The view's cancel signal. Cancels the shown interaction if it is still pending;
        ignored while the presenter closes the view itself."""
        task = self.shown_task
        if self._closing or task is None:
            return
        if not task.delivered:
            self.cancel(task)
        self.close()

    def close(self) -> None:
        """Close the view, if any (never cancels anything)."""
        view, self._view, self.shown_task = self._view, None, None
        if view is None:
            return
        self._closing = True
        try:
            view.close()
        finally:
            self._closing = False

    @property
    def showing(self) -> bool:
        return self._view is not None


class QtProgressDialogView:
    """A busy ``QProgressDialog`` for :class:`ProgressPresenter`.

    make_dialog(): a new ``QProgressDialog`` (inside Slicer e.g.
    ``slicer.util.createProgressDialog(maximum=0, ...)``, which shows it at once).
    """

    def __init__(self, make_dialog: Callable[[], Any], text: str,
                 on_cancel: Callable[[], None], title: str = "SlicerFM"):
        self.on_cancel = on_cancel
        self.dialog = make_dialog()
        self.dialog.setWindowTitle(title)
        self.dialog.setLabelText(text)
        self.dialog.setMaximum(0)            # busy indicator
        self.dialog.canceled.connect(self.on_cancel)
        self.dialog.show()

    def close(self) -> None:
        dialog, self.dialog = self.dialog, None
        if dialog is None:
            return
        dialog.canceled.disconnect(self.on_cancel)   # closeEvent emits canceled()
        dialog.close()
        dialog.deleteLater()

    @classmethod
    def factory(cls, make_dialog: Callable[[], Any], title: str = "SlicerFM"):
        """``make_view`` for :class:`ProgressPresenter`."""
        return lambda text, on_cancel: cls(make_dialog, text, on_cancel, title)
