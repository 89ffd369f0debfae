"""Draining on SIGTERM: finish what runs, refuse what comes, flush the state, then stop.

``serve`` installs :class:`DrainingServer` (a uvicorn server): the first SIGTERM or SIGINT
sets ``draining`` (new requests get 503 ``restarting`` with Retry-After from
:mod:`.http_middleware`), waits until the requests in flight are done (at most
``drain_timeout_s``), writes a snapshot of every session and syncs the state directory,
and only then lets uvicorn stop. A second signal stops at once.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional

import uvicorn

log = logging.getLogger(__name__)


class Drain:
    """Requests in flight, and whether the server is draining."""

    def __init__(self) -> None:
        self.draining = False
        self._in_flight = 0
        self._condition = threading.Condition()

    def enter(self) -> None:
        with self._condition:
            self._in_flight += 1

    def leave(self) -> None:
        with self._condition:
            self._in_flight -= 1
            self._condition.notify_all()

    @property
    def in_flight(self) -> int:
        with self._condition:
            return self._in_flight

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until no request is in flight; False when ``timeout_s`` passed first."""
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while self._in_flight > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._condition.wait(left)
        return True


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose first exit signal drains (see the module docstring);
    ``flush()`` runs once the requests are done."""

    def __init__(self, config: uvicorn.Config, drain: Drain, timeout_s: float,
                 flush: Optional[Callable[[], None]] = None):
        super().__init__(config)
        self.drain = drain
        self.timeout_s = timeout_s
        self.flush = flush

    def handle_exit(self, sig, frame) -> None:
        if self.drain.draining:  # a second signal: stop now
            super().handle_exit(sig, frame)
            return
        self.drain.draining = True
        log.info("draining: %d request(s) running; new ones are refused until the restart",
                 self.drain.in_flight)
        threading.Thread(target=self._finish, args=(sig, frame), name="slicerfm-drain", daemon=True).start()

    def _finish(self, sig, frame) -> None:
        if not self.drain.wait_idle(self.timeout_s):
            log.warning("draining: requests still running after %.0f s; stopping anyway", self.timeout_s)
        if self.flush is not None:
            try:
                self.flush()
            except Exception:
                log.exception("flushing the state on shutdown failed")
        log.info("drained; stopping")
        super().handle_exit(sig, frame)
