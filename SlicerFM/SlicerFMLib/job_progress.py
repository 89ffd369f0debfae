"""Long server jobs (registration, automatic segmentation) from the module: progress that
the worker thread writes and the main thread reads, cancel, and the run/apply cycle.

A :class:`JobProgress` is shared by both threads: the worker thread feeds it with the
server's job status dicts (``SlicerFMClient.wait_job``'s ``on_progress``) or with local
stages ("uploading the fixed image"); the main thread (a ``qt.QTimer`` in the widget, or a
test) reads :meth:`JobProgress.snapshot`. :meth:`JobProgress.cancel` sets the
``threading.Event`` that ``wait_job`` watches: the client then asks the server to cancel
(``DELETE /api/jobs/{id}``) and raises ``JobCancelledError``.

:class:`ServerJobLogic` is the common run cycle of such a feature, like the interactive
Logic's: prepare on the main thread (read MRML into plain arrays), execute on the runner
(network only, never MRML), apply on the main thread (write MRML). It is Qt-free.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

from slicerfm_client import errors

from .connection import Connection, describe_error
from .worker import InlineRunner, Task

log = logging.getLogger(__name__)

INFO, WARNING, ERROR = "info", "warning", "error"
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


class ServerJobLogic(abc.ABC):
    """Base of the registration and automatic segmentation Logics.

    connection: the module's :class:`~SlicerFMLib.connection.Connection` (shared with the
    interactive Logic; its client serialises requests). runner: an ``InlineRunner`` (the
    default: blocking calls that raise, for the console) or a ``BackgroundWorker`` of its
    own (the widget), so that a long job never delays interactive clicks.
    Callbacks: ``messageCallback(text, level)``, ``changedCallback()``,
    ``progressListener(snapshot)`` (worker thread!). ``pollSeconds``: how often the job's
    status is asked for while it runs.
    """

    description = "job"

    def __init__(self, connection: Connection, runner=None):
        self.connection = connection
        self.runner = runner or InlineRunner()
        self.messageCallback: Optional[Callable[[str, str], None]] = None
        self.changedCallback: Optional[Callable[[], None]] = None
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
        """Run ``self._execute(payload, progress)`` on the runner; ``self._apply(payload,
        result)`` on the main thread afterwards. Refuses a second run while one is going."""
        if self.running:
            raise RuntimeError(f"a {self.description} is already running: wait for it or cancel it")
        progress = JobProgress(self.progressListener)
        self.progress = progress
        self.lastError = None

        def done(result):
            try:
                outcome = self._apply(payload, result)
            except (ValueError, RuntimeError) as error:      # e.g. a result that does not fit
                failed(error)
                return
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
            self._notify(f"{self.description} failed: "
                         f"{describe_error(error, self.connection.settings)}", ERROR)
            self._changed()
            if self.runner.synchronous:
                raise error

        def cancelled(_result):
            self._notify(f"{self.description} cancelled", INFO)
            self._changed()

        progress.local("starting")
        self.task = self.runner.submit(self._execute, payload, progress,
                                       description=self.description, on_done=done,
                                       on_error=failed, on_cancelled=cancelled)
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

    def _notify(self, text: str, level: str) -> None:
        getattr(log, level)("SlicerFM: %s", text)
        if self.messageCallback is not None:
            self.messageCallback(text, level)

    def _changed(self) -> None:
        if self.changedCallback is not None:
            self.changedCallback()
