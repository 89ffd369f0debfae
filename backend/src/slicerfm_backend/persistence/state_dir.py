"""The server's state directory: its layout, its lock, and what a write failure means.

Layout: ``users.json`` (the users command), ``sessions/<id>/`` (each session's
``session.json``, ``journal-<n>.log`` and ``snapshot-<n>.bin``), ``images/<id>.sfm`` (an
uploaded image as it arrived) and ``audit.log``. One server at a time: ``open`` takes an
exclusive lock on the directory and refuses a second server.

A write that fails (disk full, read-only, no permission) is answered 503
``storage_unavailable`` saying so: the change it belonged to is not made, and the server
goes on serving everything that does not write. Appends are flushed to the kernel at once
(a crash or ``kill -9`` of the server loses nothing written) and synced to the disk within
about a second by a background thread (:meth:`StateDirectory.sync_soon`).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Optional

from slicerfm_client import protocol

from ..errors import DomainError

log = logging.getLogger(__name__)

SYNC_INTERVAL_S = 1.0
RETRY_AFTER_S = 30

_REASONS = {errno.ENOSPC: "is full", errno.EDQUOT: "is over its quota", errno.EROFS: "is read-only",
            errno.EACCES: "cannot be written (permission denied)", errno.EPERM: "cannot be written "
            "(operation not permitted)", errno.EFBIG: "refused a file that large", errno.EIO: "has an I/O error"}


def storage_error(error: OSError, what: str) -> DomainError:
    """The 503 for a failed write of ``what`` (e.g. "your change"): names the cause."""
    reason = _REASONS.get(error.errno, f"cannot be written ({os.strerror(error.errno or 0)})")
    return DomainError(protocol.ERROR_STORAGE,
                       f"the server cannot save {what}: its state directory {reason}. Nothing was "
                       "changed; try again later, and tell the server's administrator",
                       retry_after_s=RETRY_AFTER_S)


class StateDirectory:
    """An open state directory (see the module docstring)."""

    def __init__(self, path: Path, on_write_error: Optional[Callable[[OSError], None]] = None):
        self.path = Path(path)
        self.sessions = self.path / "sessions"
        self.images = self.path / "images"
        self.audit_log = self.path / "audit.log"
        self.on_write_error = on_write_error
        self._lock_fd: Optional[int] = None
        self._dirty: Dict[int, float] = {}
        self._dirty_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.last_error: Optional[str] = None

    def open(self) -> "StateDirectory":
        """Create (mode 700) and lock the directory; ValueError when another server holds it
        or it cannot be opened. A directory that is there but not writable is accepted with
        an error in the log (writes then answer 503 until it is fixed)."""
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._lock_fd = os.open(self.path, os.O_RDONLY)
        except OSError as error:
            raise ValueError(f"cannot open the state directory {self.path}: {error.strerror}") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise ValueError(f"another SlicerFM server is using the state directory {self.path}; "
                             "give each server its own SLICERFM_STATE_DIR") from None
        for folder in (self.sessions, self.images):
            try:
                folder.mkdir(mode=0o700, exist_ok=True)
            except OSError as error:
                self.report(error)
        probe = self.path / ".write-probe"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as error:
            self.report(error)
            log.error("the state directory %s cannot be written (%s): sessions and uploads will be "
                      "refused with 503 until it is fixed", self.path, error.strerror)
        self._thread = threading.Thread(target=self._sync_loop, name="slicerfm-state-sync", daemon=True)
        self._thread.start()
        return self

    def report(self, error: OSError) -> None:
        """Count and remember a failed write (the caller answers the request)."""
        self.last_error = f"{error.strerror or error} ({time.strftime('%Y-%m-%d %H:%M:%S')})"
        if self.on_write_error is not None:
            self.on_write_error(error)

    # -- syncing ---------------------------------------------------------------------------

    def sync_soon(self, fd: int) -> None:
        """Sync ``fd`` to disk within about a second (it must stay open until ``forget``)."""
        with self._dirty_lock:
            self._dirty.setdefault(fd, time.monotonic())

    def forget(self, fd: int) -> None:
        with self._dirty_lock:
            self._dirty.pop(fd, None)

    def sync_all(self) -> None:
        with self._dirty_lock:
            fds, self._dirty = list(self._dirty), {}
        for fd in fds:
            try:
                os.fsync(fd)
            except OSError as error:
                if error.errno != errno.EBADF:
                    self.report(error)

    def _sync_loop(self) -> None:
        while not self._stop.wait(SYNC_INTERVAL_S):
            self.sync_all()

    def close(self) -> None:
        self._stop.set()
        self.sync_all()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a synced temporary file and a rename (OSError on failure)."""
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError:
        try:
            temporary.unlink()
        except OSError:
            pass
        raise
