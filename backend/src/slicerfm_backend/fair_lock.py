"""A first-come-first-served lock, so one device is shared fairly.

``threading.Lock`` makes no ordering promise: a background job that releases the GPU and
takes it again at once can starve a user's click that is waiting for it. ``FairLock``
hands the lock to waiters in arrival order, so a click waits for at most the one step
(one window, one optimisation step) that holds the device when it arrives.
"""

from __future__ import annotations

import collections
import threading


class FairLock:
    """A non-reentrant FIFO lock; usable as a context manager like ``threading.Lock``."""

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._waiting: "collections.deque[object]" = collections.deque()
        self._held = False

    def acquire(self) -> bool:
        ticket = object()
        with self._condition:
            self._waiting.append(ticket)
            while self._held or self._waiting[0] is not ticket:
                self._condition.wait()
            self._waiting.popleft()
            self._held = True
        return True

    def release(self) -> None:
        with self._condition:
            if not self._held:
                raise RuntimeError("release of an unlocked FairLock")
            self._held = False
            self._condition.notify_all()

    def locked(self) -> bool:
        with self._condition:
            return self._held

    def __enter__(self) -> "FairLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
