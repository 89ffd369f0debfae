"""Delivering the workers' results on a front end's main thread without starving them.

A front end calls :meth:`WorkerPump.tick` from its event loop (Slicer: a ``qt.QTimer``
through :class:`TimerPump`; a browser front end: its own periodic callback). A tick
delivers every finished task of the runners on the main thread (so callbacks, and every
MRML change they make, happen there) and then, while a task is still pending, waits up to
``wait_s`` for it **with the GIL released**.

Why the wait: inside Slicer, PythonQt keeps the GIL while the main thread sits idle in Qt's
event loop (its GIL scope is off unless ``PythonQt::setEnableThreadSupport(true)`` is called,
``PythonQtThreadSupport.cpp``; neither Slicer nor CTK calls it). A worker thread then runs
only while the main thread runs Python and hands the GIL over -- about once per timer tick
-- so every socket read or write of an upload, a click or a heartbeat waits for the next
tick. Waiting on the pending task's future (``concurrent.futures.wait`` blocks on a lock,
which releases the GIL) lets the worker run at full speed during that window, and returns
as soon as the task is done. The condition is reproduced outside Slicer by blocking the main
thread in a C call that keeps the GIL (``ctypes.PyDLL(None).usleep``): see
``Testing/module/test_pump_gil.py`` and ``benchmarks/pump_upload.py``.

The price is that the main thread does not process UI events for up to ``wait_s`` per tick
while it waits (at the defaults, at most 15 ms of every 30 ms). So it waits only while data
moves -- ``should_wait()``, e.g. :meth:`SlicerFMLib.logic.SlicerFMCoreLogic.transferring`:
an interaction, or a server job uploading its inputs or downloading its result -- and not
while a registration computes on the server for minutes (its worker then only polls the
job's status every half second). When nothing is pending a tick costs next to nothing.
Qt-free: :class:`TimerPump` only connects to a timer object it is given.
"""

from __future__ import annotations

import concurrent.futures
import time
from typing import Callable, Optional, Sequence

#: how often a front end should call ``tick`` (ms)
DEFAULT_INTERVAL_MS = 30
#: the longest a tick waits (GIL released) for pending work, s; see benchmarks/pump_upload.py
DEFAULT_WAIT_S = 0.015


class WorkerPump:
    """Polls runners (``BackgroundWorker``, ``InlineRunner``) on the main thread.

    runners: what to poll, e.g. ``SlicerFMCoreLogic.runners()``. wait_s: the longest a tick
    waits, GIL released, while a task is pending (0 = the old behaviour: poll only).
    should_wait(): whether pending work is worth waiting for now (default: any pending
    work), e.g. ``SlicerFMCoreLogic.transferring``. after_tick: called at the end of every
    tick (main thread), e.g. to update a progress dialog from
    ``SlicerFMCoreLogic.pendingInteraction()``.
    """

    def __init__(self, runners: Sequence, wait_s: float = DEFAULT_WAIT_S,
                 after_tick: Optional[Callable[[], None]] = None,
                 should_wait: Optional[Callable[[], bool]] = None,
                 clock: Callable[[], float] = time.monotonic):
        if wait_s < 0:
            raise ValueError(f"wait_s must be 0 or more seconds, got {wait_s}")
        self.runners = list(runners)
        self.wait_s = float(wait_s)
        self.after_tick = after_tick
        self.should_wait = should_wait
        self._clock = clock
        self.ticks = 0

    def poll(self) -> int:
        """Deliver every finished task (main thread); returns how many are still pending."""
        return sum(runner.poll() for runner in self.runners)

    def tick(self) -> int:
        """Deliver finished tasks; while any is pending, wait up to ``wait_s`` (GIL released)
        for the oldest pending task of each runner, delivering whatever finishes meanwhile.
        Returns the number of tasks still pending."""
        self.ticks += 1
        try:
            deadline = self._clock() + self.wait_s
            pending = self.poll()
            while pending:
                remaining = deadline - self._clock()
                if remaining <= 0 or (self.should_wait is not None and not self.should_wait()):
                    break
                # after poll() each runner's oldest task is unfinished: wait for any of them
                futures = [runner.current().future for runner in self.runners
                           if runner.current() is not None]
                concurrent.futures.wait(futures, timeout=remaining,
                                        return_when=concurrent.futures.FIRST_COMPLETED)
                pending = self.poll()
            return pending
        finally:
            if self.after_tick is not None:
                self.after_tick()


class TimerPump:
    """Calls ``pump.tick`` from a Qt timer: Slicer's PythonQt ``qt.QTimer()`` or any QTimer
    with a ``timeout`` signal (the ``signal.connect(callable)`` form works in PythonQt and in
    PySide/PyQt alike)."""

    def __init__(self, pump: WorkerPump, timer, interval_ms: int = DEFAULT_INTERVAL_MS):
        self.pump = pump
        self.timer = timer
        self.timer.setInterval(int(interval_ms))
        self.timer.timeout.connect(self.pump.tick)

    def start(self) -> None:
        if not self.timer.isActive():
            self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
