"""Sharing one device fairly between users and between clicks and background work.

Every use of a device -- a click's engine call, one step of a background job -- asks the
device's :class:`DeviceScheduler` for a slot and holds it for that one call. Who gets the
device next when it frees:

1. *interactive before background*: a waiting click always goes before a waiting job step
   (a job holds the device one step at a time, so a click waits for at most one step);
2. *round-robin between users* within each kind: the user served longest ago goes first,
   and one user's queued clicks (several sessions, or a script) cannot starve another's;
3. each user's own requests in arrival order.

A slot's :class:`Ticket` tells how many others were ahead of it on arrival (``ahead``) and
how long it waited (``wait_s``): the interaction answers them in ``Server-Timing``, jobs in
their status. ``capacity`` slots may be held at once (1: one call at a time on a GPU).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, Iterator, List, Optional

INTERACTIVE, BACKGROUND = 0, 1
PRIORITY_NAMES = {INTERACTIVE: "interactive", BACKGROUND: "background"}


@dataclass(eq=False)
class Ticket:
    user: str
    priority: int
    arrived: float
    ahead: int = 0
    wait_s: float = 0.0
    granted: bool = False
    order: int = field(default=0)


class DeviceScheduler:
    """The slots of one device (see the module docstring). ``on_wait(priority, seconds)``
    is told every wait (metrics)."""

    def __init__(self, device: str, capacity: int = 1,
                 on_wait: Optional[Callable[[str, str, float], None]] = None,
                 clock: Callable[[], float] = time.perf_counter):
        self.device = device
        self.capacity = capacity
        self._on_wait = on_wait
        self._clock = clock
        self._condition = threading.Condition(threading.Lock())
        self._held = 0
        # priority -> user -> that user's waiting tickets; a user's place in the ordered dict
        # is their place in the round-robin (served: moved to the back).
        self._queues: Dict[int, "collections.OrderedDict[str, Deque[Ticket]]"] = {
            INTERACTIVE: collections.OrderedDict(), BACKGROUND: collections.OrderedDict()}
        self._order = itertools.count()

    # -- the slot --------------------------------------------------------------------------

    @contextlib.contextmanager
    def slot(self, user: str, priority: int = INTERACTIVE) -> Iterator[Ticket]:
        """Hold one of the device's slots for the ``with`` block; yields the Ticket."""
        ticket = self.acquire(user, priority)
        try:
            yield ticket
        finally:
            self.release()

    def acquire(self, user: str, priority: int = INTERACTIVE) -> Ticket:
        ticket = Ticket(user, priority, self._clock(), order=next(self._order))
        with self._condition:
            ticket.ahead = self._held + self._position_locked(ticket)
            self._queues[priority].setdefault(user, collections.deque()).append(ticket)
            self._grant_locked()
            while not ticket.granted:
                self._condition.wait()
        ticket.wait_s = self._clock() - ticket.arrived
        if self._on_wait is not None:
            self._on_wait(self.device, PRIORITY_NAMES[priority], ticket.wait_s)
        return ticket

    def release(self) -> None:
        with self._condition:
            if self._held <= 0:
                raise RuntimeError("release of a device slot that is not held")
            self._held -= 1
            self._grant_locked()

    def _grant_locked(self) -> None:
        granted = False
        while self._held < self.capacity:
            ticket = self._next_locked()
            if ticket is None:
                break
            ticket.granted = True
            self._held += 1
            granted = True
        if granted:
            self._condition.notify_all()

    def _next_locked(self) -> Optional[Ticket]:
        for priority in (INTERACTIVE, BACKGROUND):
            users = self._queues[priority]
            if users:
                user, waiting = next(iter(users.items()))
                ticket = waiting.popleft()
                if waiting:
                    users.move_to_end(user)
                else:
                    del users[user]
                return ticket
        return None

    def _position_locked(self, ticket: Ticket) -> int:
        """How many waiting tickets go before ``ticket`` if nothing else arrives."""
        ahead = sum(len(q) for p, users in self._queues.items() if p < ticket.priority
                    for q in users.values())
        users = self._queues[ticket.priority]
        own = len(users.get(ticket.user, ()))  # this user's tickets already waiting
        rounds = own + 1  # ticket is served in round ``rounds`` of this user
        order: List[str] = list(users) if ticket.user in users else list(users) + [ticket.user]
        mine = order.index(ticket.user)
        for index, user in enumerate(order):
            if user == ticket.user:
                continue
            waiting = len(users[user])
            # users before this one in the rotation are served in each of its rounds
            ahead += min(waiting, rounds if index < mine else rounds - 1)
        return ahead + own

    # -- reading ---------------------------------------------------------------------------

    def depth(self) -> Dict[str, int]:
        """Waiting tickets per priority name (the queue depth)."""
        with self._condition:
            return {PRIORITY_NAMES[p]: sum(len(q) for q in users.values())
                    for p, users in self._queues.items()}

    def busy(self) -> int:
        with self._condition:
            return self._held


class DeviceSchedulers:
    """One :class:`DeviceScheduler` per device, created on first use."""

    def __init__(self, on_wait: Optional[Callable[[str, str, float], None]] = None):
        self._schedulers: Dict[str, DeviceScheduler] = {}
        self._guard = threading.Lock()
        self._on_wait = on_wait

    def __call__(self, device: str) -> DeviceScheduler:
        with self._guard:
            scheduler = self._schedulers.get(device)
            if scheduler is None:
                scheduler = self._schedulers[device] = DeviceScheduler(device, on_wait=self._on_wait)
            return scheduler

    def all(self) -> List[DeviceScheduler]:
        with self._guard:
            return list(self._schedulers.values())
