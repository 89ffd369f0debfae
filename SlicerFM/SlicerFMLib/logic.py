"""The SlicerFM Logic: one connection, and the three features that use it.

:class:`SlicerFMCoreLogic` is everything of the module's Logic except Slicer's parameter
node: the module's ``SlicerFM.SlicerFMLogic`` adds that, and any other front end (a browser
client on trame-slicer, a script, a test on the ``slicer-core`` wheel) uses this class as it
is. It owns

* ``connection`` -- the one :class:`~SlicerFMLib.connection.Connection` (local backend
  process or remote server) that every feature talks through;
* ``interactive`` -- :class:`~SlicerFMLib.interactive_logic.InteractiveSegmentationLogic`
  (point and box prompts, undo/redo/reset, segment locks; with a slice engine, slice
  prompts and the propagation that follows a click, on a runner of its own);
* ``registration`` -- :class:`~SlicerFMLib.registration_logic.RegistrationLogic`;
* ``autoSegmentation`` -- :class:`~SlicerFMLib.auto_segment_logic.AutoSegmentationLogic`.

All three run the same prepare -> run -> apply cycle (:mod:`SlicerFMLib.cycle`). Each has a
runner of its own, so that a long registration never delays a click: with
``background=False`` (the default, for the Python console) every call blocks and raises;
with ``background=True`` each feature gets a :class:`~SlicerFMLib.worker.BackgroundWorker`
and the front end delivers results on its main thread by polling :meth:`runners` through a
:class:`~SlicerFMLib.pump.WorkerPump` (or calling :meth:`poll` / :meth:`wait`).

Front-end seams (all called on the main thread, none needs Qt):
``messageCallback(feature, text, level)`` -- feature is one of :data:`FEATURES`, level
"info" / "warning" / "error"; ``changedCallback()`` -- something a panel shows may have
changed; ``catalogueCallback(catalogue)`` -- the automatic-segmentation class list arrived
after connecting; progress of server jobs: :meth:`activeJobs` (registration, automatic
segmentation, a slice engine's propagation: :data:`PROPAGATION`, cancelled with
:meth:`cancelJob`); the interaction a "waiting for the server" indicator is about:
:meth:`pendingInteraction`; whether a pump should wait for the workers now:
:meth:`transferring`.
"""

from __future__ import annotations

import logging
from typing import Callable, Dict, List, Optional, Tuple

from slicerfm_client import errors

from .auto_segment_logic import AutoSegmentationLogic
from .class_catalogue import ClassCatalogue
from .connection import Connection, ConnectionSettings, ServerStatus, describe_error
from .cycle import ERROR, INFO
from .interactive_logic import InteractiveSegmentationLogic
from .job_progress import LOCAL_STAGE, ProgressSnapshot
from .registration_logic import RegistrationLogic
from .worker import BackgroundWorker, InlineRunner, Task

log = logging.getLogger(__name__)

CONNECTION, INTERACTIVE = "connection", "interactive"
REGISTRATION, AUTO_SEGMENTATION = "registration", "autoSegmentation"
#: the ``activeJobs`` entry of a slice engine's propagation (messages come as "interactive")
PROPAGATION = "propagation"
#: the ``feature`` values of ``messageCallback``
FEATURES = (CONNECTION, INTERACTIVE, REGISTRATION, AUTO_SEGMENTATION)

#: how long disconnect() waits for running work, s (interactive, server jobs)
DISCONNECT_WAIT_S = (30.0, 10.0)


class SlicerFMCoreLogic:
    """One connection to a SlicerFM backend and the features that use it (see the module
    docstring). ``background``: give each feature a background worker (a front end with
    an event loop) instead of blocking calls (the console)."""

    def __init__(self, background: bool = False):
        self.connection = Connection()
        runner = BackgroundWorker if background else InlineRunner
        self.interactive = InteractiveSegmentationLogic(self.connection, runner(), runner())
        self.registration = RegistrationLogic(self.connection, runner())
        self.autoSegmentation = AutoSegmentationLogic(self.connection, runner())
        self.messageCallback: Optional[Callable[[str, str, str], None]] = None
        self.changedCallback: Optional[Callable[[], None]] = None
        self.catalogueCallback: Optional[Callable[[ClassCatalogue], None]] = None
        for name, feature in self.features().items():
            feature.messageCallback = lambda text, level, name=name: self._message(name, text, level)
            feature.changedCallback = self._changed

    def features(self) -> Dict[str, object]:
        """``{"interactive": ..., "registration": ..., "autoSegmentation": ...}``."""
        return {INTERACTIVE: self.interactive, REGISTRATION: self.registration,
                AUTO_SEGMENTATION: self.autoSegmentation}

    # -- connection ------------------------------------------------------------------------

    def connect(self, settings: ConnectionSettings, onDone: Optional[Callable] = None) -> Task:
        """Connect (local mode: start the backend first), on the interactive runner, so that
        clicks wait for it. ``onDone(status)`` on the main thread; ``task.result`` is the
        :class:`~SlicerFMLib.connection.ServerStatus`. Afterwards the class list of the
        automatic-segmentation engine is fetched when the server serves it."""
        def done(status: ServerStatus):
            self._message(CONNECTION, f"Connected: {status.summary()}", INFO)
            self.autoSegmentation.classCatalogue = None
            if self.autoSegmentation.engine in self.servedEngines():
                try:
                    self.autoSegmentation.fetchCatalogue(onDone=self._catalogueArrived)
                except (errors.SlicerFMError, ValueError):
                    pass      # inline runner: reported as a warning; the connection stands
            if onDone is not None:
                onDone(status)
            self._changed()

        def failed(error: BaseException):
            self._message(CONNECTION, describe_error(error, settings), ERROR)
            if self.interactive.runner.synchronous:
                raise error

        return self.interactive.runner.submit(self.connection.connect, settings,
                                              description="Connecting", on_done=done,
                                              on_error=failed)

    def disconnect(self) -> None:
        """Cancel all work, wait for what is running (a server job is cancelled on the
        server), release the session and stop a local backend."""
        self.cancel()
        for runner, wait_s in ((self.interactive.runner, DISCONNECT_WAIT_S[0]),
                               (self.interactive.propagationRunner, DISCONNECT_WAIT_S[1]),
                               (self.registration.runner, DISCONNECT_WAIT_S[1]),
                               (self.autoSegmentation.runner, DISCONNECT_WAIT_S[1])):
            try:
                runner.wait(wait_s)
            except TimeoutError:       # e.g. still uploading: it fails once disconnected
                task = runner.current()
                log.warning("SlicerFM: '%s' was still running at disconnect",
                            task.description if task else "a task")
        self.connection.disconnect()
        self.interactive.forgetServerState()
        self._changed()

    @property
    def status(self) -> Optional[ServerStatus]:
        """The connected server's status (None when not connected)."""
        return self.connection.status

    def servedEngines(self) -> List[str]:
        """Names of the engines the connected server serves ([] when not connected)."""
        status = self.connection.status
        return [str(engine.get("name")) for engine in status.engines] if status else []

    # -- runners ---------------------------------------------------------------------------

    def runners(self) -> list:
        """The features' runners (what a :class:`~SlicerFMLib.pump.WorkerPump` polls)."""
        return [self.interactive.runner, self.interactive.propagationRunner,
                self.registration.runner, self.autoSegmentation.runner]

    def poll(self) -> int:
        """Deliver finished work on this (main) thread; returns how many tasks are pending."""
        return sum(runner.poll() for runner in self.runners())

    def wait(self, timeout_s: float = 300.0) -> None:
        """Block until all work is delivered (scripts, tests); TimeoutError past timeout_s."""
        for runner in self.runners():
            runner.wait(timeout_s)

    @property
    def busy(self) -> bool:
        return any(runner.busy for runner in self.runners())

    def pendingInteraction(self) -> Optional[Task]:
        """The oldest interactive task not yet delivered (connecting, a click...): what a
        "waiting for the server" indicator is about; None when idle."""
        return self.interactive.runner.current()

    def transferring(self) -> bool:
        """True while pending work moves data to or from the server: an interaction
        (connecting, a click...), or a server job uploading its inputs or downloading its
        result -- not while the job computes on the server. What a
        :class:`~SlicerFMLib.pump.WorkerPump` should wait for (``should_wait``)."""
        if self.interactive.runner.busy:
            return True
        return any(feature.running and feature.progress.snapshot().state in (LOCAL_STAGE, "done")
                   for feature in (self.registration, self.autoSegmentation))

    def activeJobs(self) -> List[Tuple[str, ProgressSnapshot]]:
        """``[(feature, snapshot)]`` of the server jobs running now (registration,
        automatic segmentation, :data:`PROPAGATION`), for progress bars."""
        jobs = [(name, feature.progress.snapshot()) for name, feature in
                ((REGISTRATION, self.registration), (AUTO_SEGMENTATION, self.autoSegmentation))
                if feature.running]
        propagation = self.interactive.propagationProgress()
        if propagation is not None:
            jobs.append((PROPAGATION, propagation))
        return jobs

    def jobText(self, feature: str, snapshot: ProgressSnapshot) -> str:
        """The line a progress bar of ``activeJobs`` shows, e.g. "propagating 'liver':
        12/40 slices" or "running: demons level 2 (3/5)"."""
        if feature == PROPAGATION:
            watch = self.interactive.activePropagation()
            if watch is not None:
                return watch.text()
        return snapshot.text()

    def cancelJob(self, feature: str) -> None:
        """The Cancel of one progress bar of ``activeJobs``."""
        if feature == PROPAGATION:
            self.interactive.cancelPropagation()
        else:
            self.features()[feature].cancel()

    def cancel(self) -> None:
        """Cancel everything: queued and running interactions, propagations, running
        server jobs."""
        self.interactive.cancel()
        self.interactive.cancelPropagation()
        self.registration.cancel()
        self.autoSegmentation.cancel()

    def shutdown(self) -> None:
        """Stop the worker threads (after :meth:`disconnect`; running calls are not awaited)."""
        for runner in self.runners():
            runner.shutdown()

    # -- callbacks -------------------------------------------------------------------------

    def _catalogueArrived(self, catalogue: ClassCatalogue) -> None:
        if self.catalogueCallback is not None:
            self.catalogueCallback(catalogue)

    def _message(self, feature: str, text: str, level: str) -> None:
        if feature == CONNECTION:      # the features log their own messages
            getattr(log, level)("SlicerFM: %s", text)
        if self.messageCallback is not None:
            self.messageCallback(feature, text, level)

    def _changed(self) -> None:
        if self.changedCallback is not None:
            self.changedCallback()
