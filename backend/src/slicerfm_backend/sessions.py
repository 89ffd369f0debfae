"""Sessions: claimed with a lease token, owned by a user, kept alive by heartbeats, ended by
timeouts, and -- with a state directory -- persisted change by change.

A lease token is ``<id>.<secret>``: the id finds the session, the SHA-256 of the secret is
compared in constant time (only the hash is kept, also on disk). A session belongs to the
identity that claimed it; for anyone else it does not exist (the same 410 as an unknown
lease). Two timeouts end a session: *liveness* (no request at all, heartbeats included,
for ``liveness_timeout_s`` -- the client is gone) and *idle* (no work, only heartbeats, for
``idle_timeout_s`` -- the user walked away). An ended or unknown session answers 410 with
what to do; the full server answers 503 with Retry-After.

The segment operations live on :class:`.session.Session`; this module only finds,
creates, lists and ends sessions. Another process (a Ray actor) can hold sessions behind
the same two classes.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import shutil
import threading
import time
from typing import Callable, Dict, List, Optional, Set

from slicerfm_client import protocol

from .auth.identity import Identity
from .errors import DomainError
from .memory import return_memory_to_system
from .persistence import session_files
from .persistence.state_dir import StateDirectory
from .segments import SegmentSet
from .session import Session
from .settings import Settings

log = logging.getLogger(__name__)


def _expired_message() -> str:
    return ("the session is unknown or has expired (the server may have restarted without its "
            "state, or the client was silent too long); claim a new session, upload the image "
            "again and re-send your segments")


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class SessionManager:
    """All sessions of one server. ``state`` (optional): the state directory that keeps
    them across restarts. ``byte_limit``: memory one session's segments and history may use."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic,
                 state: Optional[StateDirectory] = None, byte_limit: Optional[int] = None):
        self.settings = settings
        self.state = state
        self.byte_limit = byte_limit
        self._clock = clock
        self._sessions: Dict[str, Session] = {}
        self._lock = threading.Lock()
        #: Put before every session id (no "."); a cluster worker's own, so its ingress
        #: finds the worker from the lease alone.
        self.id_prefix = ""
        self._zombies: List[Session] = []  # expired during a lookup; finished by the reaper
        self.on_end: Optional[Callable[[Session, str], None]] = None  # (session, why): audit
        #: ``busy(session)``: whether work of the session runs in the background (a slice
        #: engine's propagation job); such a session is not ended for silence or idleness.
        self.busy: Callable[[Session], bool] = lambda session: False

    def make_segments(self, shape) -> SegmentSet:
        return SegmentSet(shape, self.settings.max_undo, self.settings.max_segments, self.byte_limit)

    # -- claiming and finding ------------------------------------------------------------

    def is_session_id(self, text: str) -> bool:
        """Whether ``text`` has the form of this server's session ids (prefix, 16 hex digits)."""
        prefix = self.id_prefix
        rest = text[len(prefix):] if text.startswith(prefix) else ""
        return len(rest) == 16 and all(c in "0123456789abcdef" for c in rest)

    def claim(self, identity: Identity, client: str = "unknown") -> tuple:
        """New session for ``identity``; returns ``(session, lease_token)``. 503 when the
        server is full (or its state directory cannot take the session)."""
        session_id, secret = self.id_prefix + secrets.token_hex(8), secrets.token_urlsafe(24)
        with self._lock:
            self._reap_locked()
            if len(self._sessions) >= self.settings.max_sessions:
                retry = max(1, int(min(self.settings.liveness_timeout_s, 60)))
                raise DomainError(
                    protocol.ERROR_SERVER_FULL,
                    f"the server is serving its maximum of {self.settings.max_sessions} sessions; "
                    f"try again in {retry} s or ask the administrator to raise --max-sessions",
                    retry_after_s=retry)
            session = Session(session_id, secret_digest(secret), identity, client[:100], self._clock(),
                              self._clock, time.time(), self.make_segments)
            self._sessions[session_id] = session  # holds the slot while its files are written
        try:
            if self.state is not None:
                session.files = session_files.SessionFiles(self.state, session_id)
                session.files.create(session.meta())
        except DomainError:
            with self._lock:
                self._sessions.pop(session_id, None)
            raise
        log.info("session %s claimed (%d open)", session_id, len(self))
        return session, f"{session_id}.{secret}"

    def get(self, token: Optional[str], identity: Optional[Identity] = None, activity: bool = True) -> Session:
        """The session for a lease token, if ``identity`` owns it (None: any); 410 otherwise.
        Refreshes liveness (and, for ``activity``, the idle clock)."""
        session_id, _, secret = (token or "").partition(".")
        with self._lock:
            self._reap_locked()
            session = self._sessions.get(session_id)
            if (session is None or not hmac.compare_digest(session.secret_sha256, secret_digest(secret))
                    or (identity is not None and session.owner != identity.owner)):
                raise DomainError(protocol.ERROR_SESSION_EXPIRED, _expired_message())
            now = self._clock()
            session.last_seen = now
            if activity:
                session.last_active = now
            return session

    # -- ending ------------------------------------------------------------------------------

    def release(self, session: Session) -> None:
        """The owner ends the session (its files and memory go)."""
        with self._lock:
            self._sessions.pop(session.id, None)
        self._finish(session, "released")

    def end(self, session_id: str) -> Optional[Session]:
        """An admin ends a session by id; None when there is none."""
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is not None:
            self._finish(session, "ended by an admin")
        return session

    def end_where(self, doomed: Callable[[Session], bool], why: str) -> int:
        """End every session for which ``doomed(session)`` is true (e.g. its user was revoked)."""
        with self._lock:
            gone = [s for s in self._sessions.values() if doomed(s)]
            for session in gone:
                del self._sessions[session.id]
        for session in gone:
            self._finish(session, why)
        return len(gone)

    def _finish(self, session: Session, why: str) -> None:
        with session.lock:
            session.end()
        log.info("session %s %s", session.id, why)
        if self.on_end is not None:
            self.on_end(session, why)
        return_memory_to_system()

    def is_live(self, session: Session) -> bool:
        """Whether ``session`` is still open (not released, expired or replaced)."""
        with self._lock:
            return self._sessions.get(session.id) is session

    def reap(self) -> int:
        with self._lock:
            gone = self._expired_locked()
            for session in gone:
                del self._sessions[session.id]
            gone += self._zombies
            self._zombies = []
        for session in gone:
            self._finish(session, "expired")
        return len(gone)

    def _reap_locked(self) -> None:
        """Expire sessions while holding the lock (their files go at the next ``reap``)."""
        for session in self._expired_locked():
            del self._sessions[session.id]
            self._zombies.append(session)

    def _expired_locked(self) -> List[Session]:
        now = self._clock()
        gone = [
            s for s in self._sessions.values()
            if not s.lock.locked()  # a session busy with a long request is alive
            and not self.busy(s)  # ... and one whose propagation still runs
            and (now - s.last_seen > self.settings.liveness_timeout_s
                 or now - s.last_active > self.settings.idle_timeout_s)
        ]
        return gone

    # -- after a restart -------------------------------------------------------------------

    def restore(self) -> int:
        """Bring back every session persisted in the state directory; a session whose files
        cannot be read is moved aside (``sessions/broken-<id>``) and logged."""
        if self.state is None or not self.state.sessions.is_dir():
            return 0
        restored = 0
        for folder in sorted(self.state.sessions.iterdir()):
            if not folder.is_dir() or folder.name.startswith("broken-"):
                continue
            try:
                meta, image_id, segments, files = session_files.load(self.state, folder, self.make_segments)
            except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
                log.error("session files in %s cannot be read back (%s); moved aside", folder.name, error)
                shutil.move(str(folder), str(folder.with_name(f"broken-{folder.name}")))
                continue
            session = Session.from_meta(meta, self._clock(), self._clock, self.make_segments)
            session.image_id, session.segments, session.files = image_id, segments, files
            if segments is not None:
                segments.recorder = files.append
            with self._lock:
                self._sessions[session.id] = session
            restored += 1
        if restored:
            log.info("restored %d session(s) from the state directory", restored)
        return restored

    # -- reading -----------------------------------------------------------------------------

    def list(self) -> List[dict]:
        """Every session's summary (for admins): no secrets, no image ids."""
        with self._lock:
            sessions = list(self._sessions.values())
        return [session.summary(self._clock()) for session in sessions]

    def images_in_use(self) -> Set[str]:
        with self._lock:
            return {s.image_id for s in self._sessions.values() if s.image_id}

    def nbytes(self) -> int:
        with self._lock:
            sessions = list(self._sessions.values())
        return sum(session.nbytes for session in sessions)

    def flush(self) -> None:
        """Write a snapshot of every session whose journal has grown (server shutdown)."""
        with self._lock:
            sessions = list(self._sessions.values())
        for session in sessions:
            with session.lock:
                session.compact(force=True)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)
