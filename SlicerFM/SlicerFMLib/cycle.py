"""The prepare -> run -> apply cycle that every SlicerFM feature Logic shares.

Interactive clicks (:mod:`SlicerFMLib.interactive_logic`) and server background jobs
(registration, automatic segmentation: :mod:`SlicerFMLib.job_progress`) all run the same way:

1. prepare, on the calling (main) thread: read MRML into plain data (numpy arrays, voxel
   coordinates, MRML node IDs) -- the *payload*;
2. run, on the feature's runner: ``execute(payload)`` does network calls only, never MRML,
   never Qt (a :class:`~SlicerFMLib.worker.BackgroundWorker` runs it in its thread; the
   :class:`~SlicerFMLib.worker.InlineRunner` at once, in the caller's thread);
3. apply, on the main thread again (when the runner is polled): ``apply(payload, result)``
   writes the result into the scene.

:class:`FeatureLogic` holds what the three Logics have in common: the shared
:class:`~SlicerFMLib.connection.Connection`, the runner, the front end's callbacks
(``messageCallback(text, level)``, ``changedCallback()``; both on the main thread) and
:meth:`FeatureLogic._cycle`. It is Qt-free and knows no front end.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional

from .connection import Connection, describe_error
from .worker import InlineRunner, Task

log = logging.getLogger(__name__)

INFO, WARNING, ERROR = "info", "warning", "error"

Hook = Optional[Callable[[], None]]


class FeatureLogic:
    """Base of the feature Logics (interactive segmentation, registration, automatic
    segmentation).

    connection: the module's one :class:`~SlicerFMLib.connection.Connection` (a new one
    when None). runner: an ``InlineRunner`` (default: calls block and raise, as the Python
    console expects) or a ``BackgroundWorker`` polled by the front end's pump.
    ``messageCallback(text, level)`` (level "info", "warning", "error") and
    ``changedCallback()`` are called on the main thread.
    """

    description = "task"

    def __init__(self, connection: Optional[Connection] = None, runner=None):
        self.connection = connection if connection is not None else Connection()
        self.runner = runner or InlineRunner()
        self.messageCallback: Optional[Callable[[str, str], None]] = None
        self.changedCallback: Optional[Callable[[], None]] = None

    def _cycle(self, payload: Any, execute: Callable[[Any], Any],
               apply: Callable[[Any, Any], Any], *, description: str,
               on_error: Callable[[BaseException], Any],
               on_cancelled: Optional[Callable[[Any], Any]] = None,
               before: Hook = None, after: Hook = None) -> Task:
        """Run ``execute(payload)`` on the runner, then ``apply(payload, result)`` on the
        main thread. A ValueError or RuntimeError from ``apply`` (a result that no longer
        fits the scene) goes to ``on_error`` like an error of ``execute``; a result that
        arrives after a cancel goes to ``on_cancelled`` instead of ``apply``.
        ``before()`` / ``after()`` run around whichever of these is called (main thread).
        Returns the runner's Task (already delivered with the inline runner)."""
        def done(result):
            try:
                apply(payload, result)
            except (ValueError, RuntimeError) as error:
                on_error(error)

        def settled(handler):
            def call(value):
                if before is not None:
                    before()
                try:
                    if handler is not None:
                        handler(value)
                finally:
                    if after is not None:
                        after()
            return call

        return self.runner.submit(execute, payload, description=description,
                                  on_done=settled(done), on_error=settled(on_error),
                                  on_cancelled=settled(on_cancelled))

    def _report(self, error: BaseException, prefix: str = "") -> None:
        """Tell the user what went wrong (never the token); with the inline runner the
        error is raised as well, so that a console user sees it where they called."""
        self._notify(prefix + describe_error(error, self.connection.settings), ERROR)
        if self.runner.synchronous:
            raise error

    def _notify(self, text: str, level: str) -> None:
        getattr(log, level)("SlicerFM: %s", text)
        if self.messageCallback is not None:
            self.messageCallback(text, level)

    def _changed(self) -> None:
        if self.changedCallback is not None:
            self.changedCallback()
