"""Long server jobs (registration, automatic segmentation) from the module: progress that
the worker thread writes and the main thread reads, cancel, and the run/apply cycle.

A :class:`JobProgress` is shared by both threads: the worker thread feeds it with the
server's job status dicts (``SlicerFMClient.wait_job``'s ``on_progress``) or with local
stages ("uploading the fixed image"); the main thread (a ``qt.QTimer`` in the widget, or a
test) reads :meth:`JobProgress.snapshot`. :meth:`JobProgress.cancel` sets the
``threading.Event`` that ``wait_job`` watches: the client then asks the server to cancel
(``DELETE /api/jobs/{id}``) and raises ``JobCancelledError``.

:class:`ServerJobLogic` is the base of such a feature: the prepare -> run -> apply cycle
of :mod:`SlicerFMLib.cycle` (shared with interactive clicks) plus progress, cancel and one
run at a time. It is Qt-free.
"""

from __future__ import annotations

import abc
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

from slicerfm_client import errors

from .cycle import ERROR, INFO, WARNING, FeatureLogic
from .worker import Task

__all__ = ["ERROR", "INFO", "WARNING", "JobProgress", "ProgressSnapshot", "ServerJobLogic"]

IDLE, LOCAL_STAGE = "idle", "local"


@dataclass(frozen=True)
class ProgressSnapshot:
    """What a progress bar shows. state: "idle", "local" (work on this side: upload,
    download), or the server job's "queued" / "running" / "done" / "failed" / "cancelled".
    fraction: 0..1, or None when unknown (a busy indicator). queue_position: jobs ahead
    of this one on the server's device (None when not queued). elapsed_s: since start."""

    state: str = IDLE
    stage: str = ""
    done: int = 0
    total: int = 0
    fraction: Optional[float] = None
    queue_position: Optional[int] = None
    elapsed_s: float = 0.0
    job_id: Optional[str] = None

    def text(self) -> str:
        """One line for a status label, e.g. ``"running: demons level 2 (3/5)"``."""
        if self.state == IDLE:
            return ""
        parts = ["working" if self.state == LOCAL_STAGE else self.state]
        if self.stage:
            parts.append(f": {self.stage}")
        if self.total:
            parts.append(f" ({self.done}/{self.total})")
        if self.state == "queued" and self.queue_position:
            parts.append(f", {self.queue_position} job(s) ahead")
        return "".join(parts)


class JobProgress:
    """Thread-safe progress and cancel flag of one run. ``listener(snapshot)``, when set,
    is called in the reporting (worker) thread after every update."""

    def __init__(self, listener: Optional[Callable[[ProgressSnapshot], None]] = None):
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._snapshot = ProgressSnapshot()
        self.cancel_event = threading.Event()
        self.listener = listener

    def _set(self, **values) -> None:
        with self._lock:
            current = self._snapshot.__dict__.copy()
            current.update(values, elapsed_s=time.monotonic() - self._started)
            self._snapshot = ProgressSnapshot(**current)
            snapshot = self._snapshot
        if self.listener is not None:
            self.listener(snapshot)

    def local(self, stage: str) -> None:
        """Work on this side (worker thread): uploading, downloading, converting."""
        self._set(state=LOCAL_STAGE, stage=stage, done=0, total=0, fraction=None,
                  queue_position=None)

    def report(self, status: Dict[str, Any]) -> None:
        """A server job status dict (``GET /api/jobs/{id}``), from ``wait_job``."""
        fraction = status.get("progress")
        self._set(state=str(status.get("state", "")), stage=str(status.get("stage") or ""),
                  done=int(status.get("done") or 0), total=int(status.get("total") or 0),
                  fraction=None if fraction is None else float(fraction),
                  queue_position=status.get("queue_position"), job_id=status.get("job_id"))

    def snapshot(self) -> ProgressSnapshot:
        with self._lock:
            return self._snapshot

    def cancel(self) -> None:
        """Ask for the run to stop (any thread). The server job is cancelled at the next poll."""
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check_cancelled(self) -> None:
        """Raise ``JobCancelledError`` when cancelled (between local steps, worker thread)."""
        if self.cancelled:
            raise errors.JobCancelledError("cancelled before the job was sent", code="cancelled")


class ServerJobLogic(FeatureLogic, abc.ABC):
    """Base of the registration and automatic segmentation Logics.

    connection: the module's :class:`~SlicerFMLib.connection.Connection` (shared with the
    interactive Logic; its client serialises requests). runner: an ``InlineRunner`` (the
    default: blocking calls that raise, for the console) or a ``BackgroundWorker`` of its
    own (the module's Logic gives each feature one), so that a long job never delays
    interactive clicks. Callbacks: those of :class:`~SlicerFMLib.cycle.FeatureLogic`, and
    ``progressListener(snapshot)`` (worker thread!); a front end may as well read
    ``progress.snapshot()`` on a timer. ``pollSeconds``: how often the job's status is
    asked for while it runs.
    """

    description = "job"

    def __init__(self, connection, runner=None):
        super().__init__(connection, runner)
        self.progressListener: Optional[Callable[[ProgressSnapshot], None]] = None
        self.progress = JobProgress()
        self.pollSeconds = 0.5
        self.task: Optional[Task] = None
        self.lastError: Optional[BaseException] = None

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.delivered

    def client(self):
        """The connected client (worker thread); ConfigurationError when not connected."""
        client = self.connection.client
        if client is None:
            raise errors.ConfigurationError("not connected: connect to a SlicerFM backend first "
                                            "(Connection panel)")
        return client

    def _launch(self, payload, on_done: Optional[Callable] = None) -> Task:
        """Run ``self._execute(payload, progress)`` on the runner and ``self._apply(payload,
        result)`` on the main thread afterwards (the shared cycle). Refuses a second run
        while one is going."""
        if self.running:
            raise RuntimeError(f"a {self.description} is already running: wait for it or cancel it")
        progress = JobProgress(self.progressListener)
        self.progress = progress
        self.lastError = None

        def apply(payload, result):
            outcome = self._apply(payload, result)
            self._changed()
            if on_done is not None:
                on_done(outcome)

        def failed(error):
            self.lastError = error
            if isinstance(error, errors.JobCancelledError):
                self._notify(f"{self.description} cancelled", INFO)
                self._changed()
                if self.runner.synchronous:
                    raise error
                return
            self._changed()
            self._report(error, prefix=f"{self.description} failed: ")

        def cancelled(_result):
            self._notify(f"{self.description} cancelled", INFO)
            self._changed()

        progress.local("starting")
        self.task = self._cycle(payload, lambda p: self._execute(p, progress), apply,
                                description=self.description, on_error=failed,
                                on_cancelled=cancelled)
        return self.task

    def cancel(self) -> None:
        """Cancel the running run: before the job is sent it is not sent; a server job is
        cancelled at the next poll and stops at its next step."""
        self.progress.cancel()

    @abc.abstractmethod
    def _execute(self, payload, progress: JobProgress):
        """Worker thread: network only; return what ``_apply`` needs."""

    @abc.abstractmethod
    def _apply(self, payload, result):
        """Main thread: write the result into the scene; return the outcome for on_done."""
