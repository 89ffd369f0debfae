"""Network calls off Slicer's main thread, results delivered back on it.

``BackgroundWorker`` runs one task at a time in a single thread (``concurrent.futures``)
and hands each finished task back through :meth:`BackgroundWorker.poll`, which the caller
runs on the main thread: callbacks, and so every MRML change they make, happen there and
never in the worker thread. A front end polls from its event loop through
:class:`SlicerFMLib.pump.WorkerPump` (in Slicer on a ``qt.QTimer``); tests and scripts call
:meth:`BackgroundWorker.wait` instead. Qt-free.

``InlineRunner`` has the same interface but runs each task at once in the calling thread
(Slicer's Python console, scripts): simple, blocking, exceptions raised to the caller.

Cancelling: a task not started yet is dropped; a running one cannot be interrupted (it is
an HTTP request), so its result is handed to ``on_cancelled`` instead of ``on_done`` and
the caller decides how to stay consistent (the Logic re-seeds the segment). A cancelled
task always reaches ``on_cancelled``: with None when it never ran or failed.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, List, Optional

log = logging.getLogger(__name__)

Callback = Optional[Callable[[Any], None]]
_ids = itertools.count(1)


@dataclass(eq=False)
class Task:
    """One unit of background work. Times are ``time.monotonic()`` seconds."""

    description: str
    on_done: Callback = None
    on_error: Callback = None
    on_cancelled: Callback = None
    id: int = field(default_factory=lambda: next(_ids))
    submitted: float = field(default_factory=time.monotonic)
    future: Optional[concurrent.futures.Future] = None
    cancelled: bool = False
    delivered: bool = False
    result: Any = None
    error: Optional[BaseException] = None

    @property
    def running(self) -> bool:
        return self.future is not None and self.future.running()

    def elapsed_s(self) -> float:
        return time.monotonic() - self.submitted


def _deliver(task: Task) -> None:
    """Run the task's callback for its outcome (main thread)."""
    task.delivered = True
    if task.cancelled:      # always reported, so that callers waiting for it move on
        if task.on_cancelled is not None:
            task.on_cancelled(task.result if task.error is None else None)
        return
    if task.error is not None:
        if task.on_error is None:
            log.error("SlicerFM background task %r failed: %s", task.description, task.error)
        else:
            task.on_error(task.error)
    elif task.on_done is not None:
        task.on_done(task.result)


class BackgroundWorker:
    """One worker thread; results come back in submission order through :meth:`poll`."""

    synchronous = False

    def __init__(self):
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="slicerfm-worker")
        self._tasks: Deque[Task] = deque()

    def submit(self, fn: Callable, *args, description: str = "", on_done: Callback = None,
               on_error: Callback = None, on_cancelled: Callback = None) -> Task:
        """Queue ``fn(*args)`` for the worker thread; callbacks run later in :meth:`poll`."""
        task = Task(description, on_done, on_error, on_cancelled)
        task.future = self._executor.submit(fn, *args)
        self._tasks.append(task)
        return task

    @property
    def busy(self) -> bool:
        """True while a task is queued, running or not yet delivered."""
        return bool(self._tasks)

    def current(self) -> Optional[Task]:
        """The oldest undelivered task (the one running, or waiting to be delivered)."""
        return self._tasks[0] if self._tasks else None

    def pending_futures(self) -> List[concurrent.futures.Future]:
        """The futures of the undelivered tasks (what a pump may wait on)."""
        return [task.future for task in self._tasks]

    def poll(self) -> int:
        """Deliver every finished task, oldest first, stopping at the first unfinished one.
        Call on the main thread. Returns how many tasks are still pending."""
        while self._tasks and self._tasks[0].future.done():
            task = self._tasks.popleft()
            if task.future.cancelled():
                task.cancelled = True
            else:
                task.error = task.future.exception()
                task.result = None if task.error is not None else task.future.result()
            _deliver(task)
        return len(self._tasks)

    def cancel(self, task: Optional[Task] = None) -> None:
        """Cancel ``task`` (default: every pending task). Queued tasks never run; a running
        one finishes in the background and its result goes to ``on_cancelled``."""
        for pending in list(self._tasks) if task is None else [task]:
            pending.cancelled = True
            pending.future.cancel()

    def wait(self, timeout_s: float = 300.0) -> None:
        """Block until every pending task is delivered (scripts and tests). Raises
        TimeoutError when tasks are still pending after ``timeout_s`` seconds."""
        deadline = time.monotonic() + timeout_s
        while self.poll():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"SlicerFM tasks still running after {timeout_s:.0f} s")
            concurrent.futures.wait([self._tasks[0].future], timeout=min(remaining, 0.05))

    def shutdown(self) -> None:
        """Cancel queued tasks and let the thread end (does not wait for a running call)."""
        self.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)


class InlineRunner:
    """Runs each task immediately in the caller's thread; same interface as the worker."""

    synchronous = True
    busy = False

    def submit(self, fn: Callable, *args, description: str = "", on_done: Callback = None,
               on_error: Callback = None, on_cancelled: Callback = None) -> Task:
        task = Task(description, on_done, on_error, on_cancelled)
        try:
            task.result = fn(*args)
        except Exception as error:  # handed to on_error, exactly like the worker does
            task.error = error
        _deliver(task)
        return task

    def current(self) -> Optional[Task]:
        return None

    def pending_futures(self) -> list:
        return []

    def poll(self) -> int:
        return 0

    def cancel(self, task: Optional[Task] = None) -> None:
        """Nothing to cancel: tasks are finished when submit returns."""

    def wait(self, timeout_s: float = 0.0) -> None:
        """Nothing to wait for."""

    def shutdown(self) -> None:
        """Nothing to shut down."""
