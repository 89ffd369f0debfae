"""Following a slice engine's propagation job: progress, cancel, and when its change lands.

A click or box with a slice engine (``medsam``, ``sam``) answers with its slice at once and
starts a ``propagate`` job on the server (docs/PROTOCOL.md, section 5.1); the Logic follows it
with a :class:`PropagationWatch`. Network only here (worker thread); the Logic
(:mod:`SlicerFMLib.propagation_logic`) does the MRML side on the main thread.

Why the order of changes needs care: the job commits its change on the server by itself, so
the server's segment moves on between two of the user's operations. Every change Slicer
applies must be applied in the server's order, or a later click's box would be overwritten
by the older propagation. The rule: a propagation's change is applied through the same
queue as the user's operations (the interactive runner); and an operation that changes the
segment while its propagation is still followed *settles* it on the server right after the
operation (:func:`settle_propagation`): the server supersedes a propagation at any later
change of its segment, atomically with the job's own commit, so after the operation the job
either committed before it (its change is applied first) or never will.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from slicerfm_client import errors
from slicerfm_client.client import MaskUpdate

from .job_progress import JobProgress

#: watch states: its job is polled; its change is queued to be applied; an operation on the
#: segment took it over; it ended (applied, cancelled, superseded, failed)
FOLLOWING, APPLYING, OWNED, ENDED = "following", "applying", "owned", "ended"
#: how often a followed job's status is asked for, s
POLL_S = 0.25
#: the longest a settling operation waits for a job that has committed to report done, s
COMMITTED_WAIT_S = 10.0

WHY_CANCELLED = {
    "cancelled": "cancelled: the prompted slice stays",
    "superseded": "superseded by a later change to the segment",
    "segment_locked": "stopped: the segment was locked (the prompted slice stays)",
    "session_ended": "stopped: the server session ended",
}


@dataclass(eq=False)
class PropagationWatch:
    """One propagation the Logic follows (at most one per segment).

    job_id: the server's job. segment: the segment's server name. key: (segmentation node
    ID, segment ID). target: (segmentation ID, segment ID, volume ID) the change goes to.
    label: the segment's name for messages. progress: slices done / total, and the user's
    cancel (thread-safe). update: the job's change once downloaded. status: its last status.
    """

    job_id: str
    segment: str
    key: Tuple[str, str]
    target: tuple
    label: str
    progress: JobProgress = field(default_factory=JobProgress)
    state: str = FOLLOWING
    update: Optional[MaskUpdate] = None
    status: Dict[str, Any] = field(default_factory=dict)
    cancel_sent: bool = False
    started: float = field(default_factory=time.monotonic)

    @property
    def active(self) -> bool:
        """Still running or waiting to be applied: what a progress bar shows."""
        return self.state in (FOLLOWING, APPLYING)

    def text(self) -> str:
        """E.g. "propagating 'liver': 12/40 slices"."""
        snapshot = self.progress.snapshot()
        if self.state == APPLYING:
            return f"applying the propagation of '{self.label}'"
        if snapshot.state == "queued":
            ahead = f" ({snapshot.queue_position} job(s) ahead)" if snapshot.queue_position else ""
            return f"propagation of '{self.label}' queued{ahead}"
        count = f": {snapshot.done}/{snapshot.total} slices" if snapshot.total else ""
        return f"propagating '{self.label}'{count}"


@dataclass
class PollOutcome:
    """What one poll found: ``state`` "running", "done", "cancelled", "failed" or "gone" (the
    server no longer knows the job); ``update`` the change of a done job."""

    state: str
    status: Dict[str, Any]
    update: Optional[MaskUpdate] = None


def _client(connection):
    if connection.client is None:
        raise errors.ConfigurationError("not connected: connect to a SlicerFM backend first")
    return connection.client


def poll_propagation(connection, watch: PropagationWatch, poll_s: float = POLL_S,
                     until_final: bool = False) -> PollOutcome:
    """Worker thread: ask for the job's status (sending the user's cancel first, once),
    download its change when it is done, else wait up to ``poll_s`` (at once on a cancel) and
    report it still running. ``until_final``: keep polling until the job ends (a blocking
    console call)."""
    client = _client(connection)
    while True:
        try:
            if watch.progress.cancelled and not watch.cancel_sent:
                watch.cancel_sent = True
                status = client.cancel_propagation(watch.job_id)
            else:
                status = client.job_status(watch.job_id)
        except errors.JobNotFoundError as error:
            return PollOutcome("gone", {"error": str(error)})
        watch.progress.report(status)
        state = status.get("state")
        if state == "done":
            return PollOutcome("done", status, client.wait_propagation(status, poll_s=0.0))
        if state in ("cancelled", "failed"):
            return PollOutcome(state, status)
        watch.progress.cancel_event.wait(poll_s)
        if not until_final:
            return PollOutcome("running", status)


def settle_propagation(client, job_id: str, discard: bool = False) -> Optional[MaskUpdate]:
    """Worker thread, right after an operation that changed the propagation's segment on the
    server: the job's change when it committed before that operation (to be applied first),
    else None (it never will; the server ends it ``cancelled``). ``discard``: the segment was
    re-seeded by the operation, which replaced whatever the job wrote: nothing to apply."""
    deadline = time.monotonic() + COMMITTED_WAIT_S
    while True:
        try:
            status = client.job_status(job_id)
        except errors.JobNotFoundError:
            return None
        state = status.get("state")
        if state == "done":
            return None if discard else client.wait_propagation(status, poll_s=0.0)
        if state != "running" or status.get("stage") != "committed" or time.monotonic() > deadline:
            return None
        time.sleep(0.01)      # committed under the session's lock: done within moments


def ended_message(watch: PropagationWatch, outcome: PollOutcome) -> Tuple[str, str]:
    """(text, level) for a propagation that ended without a change to apply."""
    if outcome.state == "gone":
        return (f"the propagation of '{watch.label}' is no longer known to the server (it "
                "restarted?); the prompted slice stays", "warning")
    if outcome.state == "failed":
        error = outcome.status.get("error") or {}
        return (f"the propagation of '{watch.label}' failed: "
                f"{error.get('message') or 'no reason given'}", "error")
    stage = outcome.status.get("stage")
    why = WHY_CANCELLED.get(stage, WHY_CANCELLED["cancelled"])
    return f"propagation of '{watch.label}' {why}", ("warning" if stage == "session_ended" else "info")


def done_message(watch: PropagationWatch) -> str:
    """One line on an applied propagation, from its job's result."""
    result = (watch.status or {}).get("result") or {}
    written = result.get("slices_written")
    stopped = result.get("stopped") or {}
    where = f" ({result['plane']})" if result.get("plane") else ""
    slices = f"{written} more slices" if written is not None else "its neighbouring slices"
    reasons = ", ".join(f"{direction}: {reason}" for direction, reason in stopped.items())
    return (f"'{watch.label}' propagated to {slices}{where}" + (f"; stopped {reasons}" if reasons else ""))
