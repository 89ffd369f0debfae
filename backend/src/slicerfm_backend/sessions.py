"""Sessions: claimed with a lease token, kept alive by heartbeats, ended by timeouts.

A lease token is ``<id>.<secret>``: the id finds the session, the secret is compared in
constant time. Two timeouts end a session: *liveness* (no request at all, heartbeats
included, for ``liveness_timeout_s`` -- the client is gone) and *idle* (no work, only
heartbeats, for ``idle_timeout_s`` -- the user walked away). An ended or unknown session
answers 410 with what to do; the full server answers 503 with Retry-After.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from typing import Callable, Dict, Optional, Set

from slicerfm_client import protocol

from .errors import DomainError
from .segments import SegmentSet
from .settings import Settings

log = logging.getLogger(__name__)


class _WorkLock:
    """The session's one-request-at-a-time lock; finishing a request counts as contact.

    A request may outlast the liveness timeout (a first click that encodes on the CPU);
    the session is alive while it runs, and its clock restarts when it ends, so the
    client's next request does not find the session expired.
    """

    def __init__(self, session: "Session"):
        self._lock = threading.Lock()
        self._session = session

    def __enter__(self) -> "_WorkLock":
        self._lock.acquire()
        return self

    def __exit__(self, *exc) -> None:
        session = self._session
        session.last_seen = session.last_active = session.clock()
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()


class Session:
    def __init__(self, session_id: str, secret: str, client: str, now: float,
                 clock: Callable[[], float] = time.monotonic):
        self.id = session_id
        self.secret = secret
        self.client = client
        self.created = now
        self.last_seen = now
        self.last_active = now
        self.image_id: Optional[str] = None
        self.segments: Optional[SegmentSet] = None
        self.clock = clock
        # One request at a time per session: interactions on one image are sequential.
        self.lock = _WorkLock(self)
        # segment name -> id of its latest propagation job (slice engines; see propagation.py)
        self.propagations: Dict[str, str] = {}

    def describe(self) -> dict:
        return {"image_id": self.image_id,
                "segments": [s.describe() for s in self.segments] if self.segments else []}


def _expired_message() -> str:
    return ("the session is unknown or has expired (the server may have restarted, or the "
            "client was silent too long); claim a new session, upload the image again and "
            "re-send your segments")


class SessionManager:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self._clock = clock
        self._sessions: Dict[str, Session] = {}
        self._lock = threading.Lock()
        #: ``busy(session)``: whether work of the session runs in the background (a slice
        #: engine's propagation job); such a session is not ended for silence or idleness.
        self.busy: Callable[[Session], bool] = lambda session: False

    def claim(self, client: str) -> tuple:
        """New session; returns ``(session, lease_token)``. Raises 503 when the server is full."""
        with self._lock:
            self._reap_locked()
            if len(self._sessions) >= self.settings.max_sessions:
                retry = max(1, int(min(self.settings.liveness_timeout_s, 60)))
                raise DomainError(
                    protocol.ERROR_SERVER_FULL,
                    f"the server is serving its maximum of {self.settings.max_sessions} sessions; "
                    f"try again in {retry} s or ask the administrator to raise --max-sessions",
                    retry_after_s=retry,
                )
            session_id = secrets.token_hex(8)
            secret = secrets.token_urlsafe(24)
            session = Session(session_id, secret, client[:100], self._clock(), self._clock)
            self._sessions[session_id] = session
        log.info("session %s claimed by %s (%d open)", session_id, session.client, len(self._sessions))
        return session, f"{session_id}.{secret}"

    def get(self, token: Optional[str], activity: bool = True) -> Session:
        """The session for a lease token; 410 when unknown or expired. Refreshes liveness."""
        session_id, _, secret = (token or "").partition(".")
        with self._lock:
            self._reap_locked()
            session = self._sessions.get(session_id)
            if session is None or not hmac.compare_digest(session.secret.encode(), secret.encode()):
                raise DomainError(protocol.ERROR_SESSION_EXPIRED, _expired_message())
            now = self._clock()
            session.last_seen = now
            if activity:
                session.last_active = now
            return session

    def release(self, session: Session) -> None:
        with self._lock:
            self._sessions.pop(session.id, None)
        log.info("session %s released", session.id)

    def is_live(self, session: Session) -> bool:
        """Whether ``session`` is still open (not released, expired or replaced)."""
        with self._lock:
            return self._sessions.get(session.id) is session

    def reap(self) -> int:
        with self._lock:
            return self._reap_locked()

    def _reap_locked(self) -> int:
        now = self._clock()
        gone = [
            s for s in self._sessions.values()
            if not s.lock.locked()  # a session busy with a long request is alive
            and not self.busy(s)  # ... and one whose propagation still runs
            and (now - s.last_seen > self.settings.liveness_timeout_s
                 or now - s.last_active > self.settings.idle_timeout_s)
        ]
        for session in gone:
            del self._sessions[session.id]
            log.info("session %s expired", session.id)
        return len(gone)

    def images_in_use(self) -> Set[str]:
        with self._lock:
            return {s.image_id for s in self._sessions.values() if s.image_id}

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)
