"""Byte budgets for what the server holds, and giving freed memory back to the system.

Every store that grows with what clients send -- images, sessions' segments and undo
history, finished jobs' result arrays -- reserves its bytes in a :class:`Budget` *before*
it allocates them. Past the budget the request is refused with a message that says what
is full and what to do: ``server_full`` (503, with Retry-After) when the server could take
it later, ``too_large`` (413) when it can never fit. Nothing a user is using is evicted to
make room (the image store may drop cached images no session or job uses).

Budgets are sized from the machine's memory (:func:`machine_memory_bytes`, which honours a
container's cgroup limit) unless configured (see :meth:`Settings.budgets`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
from pathlib import Path
from typing import Optional

from slicerfm_client import protocol

from .errors import DomainError, too_large

log = logging.getLogger(__name__)

RETRY_AFTER_S = 10


def _read_int(path: str) -> Optional[int]:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def machine_memory_bytes() -> int:
    """Physical memory, or the container's cgroup (v2 or v1) memory limit when lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        limit = _read_int(limit_file)
        if limit and limit < total:
            total = limit
    return int(total)


def megabytes(nbytes: int) -> str:
    """``nbytes`` for a message: kB below 1 MB, GB from 10 GB."""
    if nbytes < 1e6:
        return f"{nbytes / 1e3:,.0f} kB"
    return f"{nbytes / 1e6:,.0f} MB" if nbytes < 10e9 else f"{nbytes / 1e9:,.1f} GB"


class Budget:
    """A thread-safe byte counter with a limit: ``reserve`` before allocating, ``release``
    after freeing. ``name`` and ``setting`` appear in refusals (e.g. ``images``,
    ``SLICERFM_IMAGE_CACHE_BYTES``)."""

    def __init__(self, name: str, limit: int, setting: str):
        self.name = name
        self.limit = int(limit)
        self.setting = setting
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        with self._lock:
            return self._used

    def fits(self, nbytes: int) -> bool:
        with self._lock:
            return self._used + nbytes <= self.limit

    def check_size(self, nbytes: int, what: str) -> None:
        """413 when ``nbytes`` alone is more than the whole budget."""
        if nbytes > self.limit:
            raise too_large(f"{what} needs {megabytes(nbytes)}, more than this server's whole "
                            f"{self.name} memory ({megabytes(self.limit)}, {self.setting})")

    def reserve(self, nbytes: int, what: str) -> int:
        """Count ``nbytes`` as used; 413 when it can never fit, 503 (retry later) when the
        budget is full now. Returns ``nbytes`` (to release later)."""
        nbytes = int(nbytes)
        self.check_size(nbytes, what)
        with self._lock:
            if self._used + nbytes > self.limit:
                raise DomainError(
                    protocol.ERROR_SERVER_FULL,
                    f"the server's {self.name} memory is full ({megabytes(self._used)} of "
                    f"{megabytes(self.limit)} in use); {what} needs {megabytes(nbytes)}. Try again "
                    f"in a few minutes, or ask the administrator to raise {self.setting}",
                    retry_after_s=RETRY_AFTER_S)
            self._used += nbytes
        return nbytes

    def force(self, nbytes: int) -> None:
        """Count ``nbytes`` without a check (restoring what was persisted before a restart)."""
        with self._lock:
            self._used += int(nbytes)

    def release(self, nbytes: int) -> None:
        with self._lock:
            self._used = max(0, self._used - int(nbytes))

    def describe(self) -> dict:
        with self._lock:
            return {"used_bytes": self._used, "limit_bytes": self.limit}


_libc = None
_libc_checked = False


def return_memory_to_system() -> None:
    """Ask glibc to give freed heap pages back to the system (``malloc_trim(0)``), so the
    server's resident memory falls after large arrays are freed; a no-op elsewhere."""
    global _libc, _libc_checked
    if not _libc_checked:
        _libc_checked = True
        name = ctypes.util.find_library("c")
        try:
            candidate = ctypes.CDLL(name or "libc.so.6")
            if hasattr(candidate, "malloc_trim"):
                _libc = candidate
        except OSError:
            _libc = None
    if _libc is not None:
        _libc.malloc_trim(0)
