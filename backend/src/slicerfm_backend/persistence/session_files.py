"""One session's folder in the state directory: who it belongs to, and a write-ahead journal.

``session.json`` holds the session id, the SHA-256 of its lease secret (never the secret),
its owner, user name, client name and creation time. ``journal-<n>.log`` holds every change
as a record (see :mod:`.records`), appended *before* the change is made in memory:
``attach`` (an image, which starts an empty segment set) and the segment set's own records
(:meth:`SegmentSet.replay`). When the journal has grown past its limit, the whole state is
written as ``snapshot-<n+1>.bin`` and a new journal starts, so a session's files stay
about as large as its state. After a restart :func:`load` rebuilds the session exactly.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple

from ..segments import SegmentSet
from . import records, snapshot
from .state_dir import StateDirectory, storage_error, write_atomically

log = logging.getLogger(__name__)

META = "session.json"
COMPACT_BYTES = 8 << 20


def _journal(folder: Path, generation: int) -> Path:
    return folder / f"journal-{generation}.log"


def _snapshot(folder: Path, generation: int) -> Path:
    return folder / f"snapshot-{generation}.bin"


class SessionFiles:
    """The files of one session (see the module docstring). Not thread-safe: used under the
    session's own lock."""

    def __init__(self, state: StateDirectory, session_id: str, generation: int = 0):
        self.state = state
        self.folder = state.sessions / session_id
        self.generation = generation
        self._fd: Optional[int] = None
        self.journal_bytes = 0
        self.snapshot_bytes = 0

    def create(self, meta: dict) -> None:
        """Write ``session.json`` and open an empty journal; 503 when the disk refuses."""
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_atomically(self.folder / META, json.dumps(meta).encode("utf-8"))
            self._open()
        except OSError as error:
            self.state.report(error)
            shutil.rmtree(self.folder, ignore_errors=True)
            raise storage_error(error, "a new session") from None

    def _open(self) -> None:
        path = _journal(self.folder, self.generation)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.journal_bytes = os.fstat(self._fd).st_size

    def append(self, kind: str, fields: dict, blobs: Sequence[bytes] = ()) -> None:
        """Add a record (before the change it describes is made); 503 when it cannot be
        written, with the journal left as it was."""
        data = records.encode(kind, fields, blobs)
        try:
            if self._fd is None:
                self._open()
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as error:
            self.state.report(error)
            self._truncate_back()
            raise storage_error(error, "your change") from None
        self.journal_bytes += len(data)
        self.state.sync_soon(self._fd)

    def _truncate_back(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, self.journal_bytes)
        except OSError:
            pass  # a read-only disk took nothing; a record cut short is ignored when read

    def needs_snapshot(self) -> bool:
        return self.journal_bytes > max(COMPACT_BYTES, 2 * self.snapshot_bytes)

    def write_snapshot(self, image_id: Optional[str], segments: Optional[SegmentSet]) -> None:
        """Start generation n+1 with the whole state; on failure keep appending to the old
        journal (nothing is lost, the journal only grows)."""
        fields, blobs = snapshot.dump(segments) if segments is not None else ({}, [])
        data = records.encode("snapshot", {"image_id": image_id, **fields}, blobs)
        old = self.generation
        try:
            write_atomically(_snapshot(self.folder, old + 1), data)
        except OSError as error:
            self.state.report(error)
            log.warning("could not write a session snapshot (%s); its journal keeps growing", error.strerror)
            return
        self.close()
        self.generation, self.snapshot_bytes = old + 1, len(data)
        self._open()
        for stale in (_journal(self.folder, old), _snapshot(self.folder, old)):
            try:
                stale.unlink()
            except FileNotFoundError:
                pass
            except OSError as error:
                log.warning("could not remove an old session file (%s)", error.strerror)

    def close(self) -> None:
        if self._fd is not None:
            self.state.forget(self._fd)
            try:
                os.fsync(self._fd)
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None

    def remove(self) -> None:
        """Delete the session's files (it ended)."""
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)


MakeSegments = Callable[[Tuple[int, ...]], SegmentSet]


def load(state: StateDirectory, folder: Path, make_segments: MakeSegments):
    """``(meta, image_id, segments or None, files)`` of a persisted session; ValueError when
    its files cannot be read back."""
    meta = json.loads((folder / META).read_text(encoding="utf-8"))
    generations = sorted(int(p.stem.split("-")[1]) for p in folder.glob("snapshot-*.bin"))
    generation, image_id, segments, snapshot_bytes = 0, None, None, 0
    for candidate in reversed(generations):
        with open(_snapshot(folder, candidate), "rb") as handle:
            found = next(records.read(handle), None)
        if found is not None and found[0] == "snapshot":
            _, fields, blobs = found
            generation, image_id = candidate, fields.get("image_id")
            if "shape" in fields:
                segments = snapshot.load(fields, blobs, make_segments(tuple(fields["shape"])))
            snapshot_bytes = _snapshot(folder, candidate).stat().st_size
            break
    path = _journal(folder, generation)
    if path.exists():
        with open(path, "rb") as handle:
            for kind, fields, blobs in records.read(handle):
                if kind == "attach":
                    image_id, segments = fields["image_id"], make_segments(tuple(fields["shape"]))
                elif segments is None:
                    raise ValueError(f"journal record {kind!r} before any image was attached")
                else:
                    segments.replay(kind, fields, blobs)
            valid = handle.tell()
        if valid < path.stat().st_size:  # a record cut short by a crash: drop it
            os.truncate(path, valid)
    files = SessionFiles(state, meta["id"], generation)
    files.snapshot_bytes = snapshot_bytes
    return meta, image_id, segments, files
