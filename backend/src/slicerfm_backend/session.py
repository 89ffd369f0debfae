"""One session: its owner, its image, its segments, one request at a time.

Everything a request does to a session goes through a method here (``attach``,
``interact``, ``undo``, ``seed``, ...), run under the session's own lock, so the routes
never touch the segment set and a session could live in another process behind the same
methods. With a state directory every change is journaled before it is made
(:class:`SegmentSet`'s recorder) and the journal is compacted into a snapshot now and then.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple

import numpy as np

from slicerfm_client import protocol

from .auth.identity import Identity
from .engines.base import BBox
from .errors import DomainError
from .segments import Change, SegmentSet

if TYPE_CHECKING:
    from .imaging import StoredImage
    from .persistence.session_files import SessionFiles


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


@dataclass
class Outcome:
    """A change and the segment's state after it (what a mask message carries)."""

    change: Change
    voxels: int = 0
    can_undo: bool = False
    can_redo: bool = False


def _no_image() -> DomainError:
    return DomainError(protocol.ERROR_NO_IMAGE,
                       "no image is attached to this session; upload and attach an image first")


class Session:
    def __init__(self, session_id: str, secret_sha256: str, identity: Identity, client: str, now: float,
                 clock: Callable[[], float], created_wall: float,
                 make_segments: Callable[[tuple], SegmentSet]):
        self.id = session_id
        self.secret_sha256 = secret_sha256
        self.owner = identity.owner
        self.user = identity.name
        self.client = client
        self.created = now
        self.created_wall = created_wall
        self.last_seen = now
        self.last_active = now
        self.clock = clock
        self.image_id: Optional[str] = None
        self.segments: Optional[SegmentSet] = None
        self.files: Optional["SessionFiles"] = None
        self._make_segments = make_segments
        # One request at a time per session: interactions on one image are sequential.
        self.lock = _WorkLock(self)
        # segment name -> id of its latest propagation job (slice engines; see propagation.py)
        self.propagations: Dict[str, str] = {}

    # -- persistence -------------------------------------------------------------------------

    def meta(self) -> dict:
        """What ``session.json`` holds (never the lease secret itself)."""
        return {"id": self.id, "secret_sha256": self.secret_sha256, "owner": self.owner,
                "user": self.user, "client": self.client, "created": self.created_wall}

    @classmethod
    def from_meta(cls, meta: dict, now: float, clock, make_segments) -> "Session":
        source = meta["owner"].partition(":")[0]
        session = cls(meta["id"], meta["secret_sha256"], Identity(meta["user"], "", source), meta["client"],
                      now, clock, float(meta["created"]), make_segments)
        session.owner = meta["owner"]
        return session

    def _record(self, kind: str, fields: dict, blobs=()) -> None:
        if self.files is not None:
            self.files.append(kind, fields, blobs)

    def compact(self, force: bool = False) -> None:
        """Start a new journal from a snapshot when the journal has grown (call under the lock)."""
        if self.files is not None and (force and self.files.journal_bytes or self.files.needs_snapshot()):
            self.files.write_snapshot(self.image_id, self.segments)

    def end(self) -> None:
        """Forget everything (call under the lock): files, segments, memory."""
        if self.files is not None:
            self.files.remove()
            self.files = None
        self.segments = None
        self.image_id = None

    # -- reading -----------------------------------------------------------------------------

    @property
    def nbytes(self) -> int:
        segments = self.segments
        return 0 if segments is None else segments.nbytes

    def describe(self) -> dict:
        return {"image_id": self.image_id,
                "segments": [s.describe() for s in self.segments] if self.segments else []}

    def summary(self, now: float) -> dict:
        """For admins: who, since when, how busy; no secrets and no image ids."""
        return {"session": self.id, "user": self.user, "client": self.client,
                "age_s": round(now - self.created, 1), "idle_s": round(now - self.last_active, 1),
                "image_attached": self.image_id is not None,
                "segments": len(list(self.segments)) if self.segments else 0, "bytes": self.nbytes}

    def _segments(self) -> SegmentSet:
        if self.segments is None:
            raise _no_image()
        return self.segments

    def _outcome(self, change: Change) -> Outcome:
        segment = self.segments.find(change.segment) if self.segments is not None else None
        if segment is None:
            return Outcome(change)
        return Outcome(change, segment.mask.count(), bool(segment.undo), bool(segment.redo))

    # -- operations (each takes the session's lock) ------------------------------------------

    def attach(self, image: "StoredImage") -> dict:
        """Make ``image`` the session's image. Re-attaching the same image keeps the
        segments; another image starts with none."""
        with self.lock:
            if self.image_id != image.image_id or self.segments is None:
                segments = self._make_segments(image.array.shape)
                self._record("attach", {"image_id": image.image_id, "shape": list(image.array.shape)})
                if self.files is not None:
                    segments.recorder = self.files.append
                self.image_id, self.segments = image.image_id, segments
                self.compact()
            return self.describe()

    def interact(self, run: Callable[[SegmentSet], Tuple[Change, Dict[str, float]]]
                 ) -> Tuple[Outcome, Dict[str, float]]:
        """Run an interaction (:func:`slicerfm_backend.interaction.run_interaction` bound to
        its image, engine and prompt) on the segments."""
        with self.lock:
            change, timings = run(self._segments())
            self.compact()
            return self._outcome(change), timings

    def _walk(self, method: str, name: str) -> Outcome:
        with self.lock:
            segments = self._segments()
            change = getattr(segments, method)(segments.get(name))
            self.compact()
            return self._outcome(change)

    def undo(self, name: str) -> Outcome:
        return self._walk("undo", name)

    def redo(self, name: str) -> Outcome:
        return self._walk("redo", name)

    def reset(self, name: str) -> Outcome:
        return self._walk("reset", name)

    def seed(self, decode: Callable[[Tuple[int, ...]], Tuple[str, BBox, np.ndarray]]) -> Outcome:
        """Replace a segment with a mask: ``decode(image shape) -> (name, bbox, mask)`` checks
        the message against the image before any voxel is allocated."""
        with self.lock:
            segments = self._segments()
            name, bbox, mask = decode(segments.shape)
            change = segments.seed(segments.get_or_create(name), bbox, mask)
            self.compact()
            return self._outcome(change)

    def delete(self, name: str) -> None:
        with self.lock:
            self._segments().delete(name)
            self.compact()

    def lock_segment(self, name: str, locked: bool) -> dict:
        with self.lock:
            segments = self._segments()
            segment = segments.get_or_create(name)
            segments.set_locked(segment, locked)
            self.compact()
            return segment.describe()

    def status(self) -> dict:
        with self.lock:
            return self.describe()

    def list_segments(self) -> List[dict]:
        with self.lock:
            return [s.describe() for s in self.segments or []]

    def labelmap(self) -> Tuple[np.ndarray, List[dict]]:
        with self.lock:
            return self._segments().labelmap()
