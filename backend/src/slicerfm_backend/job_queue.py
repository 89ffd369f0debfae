"""The waiting jobs of one device, taken round-robin between their owners.

The job thread of a device takes the next job from here: the owner served longest ago
first, each owner's jobs in submission order, so one user's batch of registrations cannot
keep everyone else's job waiting. ``position(job)`` says how many jobs go before a waiting
one if nothing else arrives.
"""

from __future__ import annotations

import collections
import threading
from typing import Deque, Optional


class RoundRobinQueue:
    """A blocking queue of jobs (anything with ``owner``), round-robin by owner; ``None``
    (put by :meth:`close`) tells the consumer to stop."""

    def __init__(self):
        self._owners: "collections.OrderedDict[str, Deque]" = collections.OrderedDict()
        self._condition = threading.Condition()
        self._closed = False

    def put(self, job) -> None:
        with self._condition:
            self._owners.setdefault(job.owner, collections.deque()).append(job)
            self._condition.notify()

    def get(self):
        """The next job (blocks); None once closed."""
        with self._condition:
            while not self._owners and not self._closed:
                self._condition.wait()
            if not self._owners:
                return None
            owner, jobs = next(iter(self._owners.items()))
            job = jobs.popleft()
            if jobs:
                self._owners.move_to_end(owner)
            else:
                del self._owners[owner]
            return job

    def discard(self, job) -> None:
        """Take a cancelled job out of the queue."""
        with self._condition:
            jobs = self._owners.get(job.owner)
            if jobs is not None and job in jobs:
                jobs.remove(job)
                if not jobs:
                    del self._owners[job.owner]

    def position(self, job) -> Optional[int]:
        """Jobs that go before ``job`` (None when it is not waiting here)."""
        with self._condition:
            order = list(self._owners)
            if job.owner not in order or job not in self._owners[job.owner]:
                return None
            own = list(self._owners[job.owner]).index(job)
            mine = order.index(job.owner)
            ahead = own
            for index, owner in enumerate(order):
                if owner != job.owner:
                    ahead += min(len(self._owners[owner]), own + 1 if index < mine else own)
            return ahead

    def __len__(self) -> int:
        with self._condition:
            return sum(len(jobs) for jobs in self._owners.values())

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()
