"""Propagation of a slice engine's result as a background job (docs/PROTOCOL.md, "Slice engines").

An interaction with a slice engine (``medsam``, ``sam``) answers at once with the prompted
slice only; right after its commit, still under the session's lock, :func:`start` takes a
plan (the engine's copy of what it needs) and submits a ``propagate`` job. The job walks
through the neighbouring slices holding the device one encoder batch or one decode at a
time (a click from anyone waits for one step, not the whole walk), reports ``propagating``
done/total slices, and can be cancelled with ``DELETE /api/jobs/{id}``. When it ends it
commits the changed slab through the locks as its own undo step, and leaves the change as
the job array ``mask``: a mask update message (meta ``segment``, ``bbox_kji``, ``voxels``,
``can_undo``, ``can_redo``) that the client applies like an interaction's answer.

A propagation belongs to the segment state it started from. It stops early (state
``cancelled``) when that state is gone: ``stage`` is ``superseded`` after any later change to
the segment (a click, undo, redo, reset, seed, delete, another image), ``segment_locked`` when
the segment was locked, ``session_ended`` when the session was released or expired. Nothing
of a cancelled propagation is committed; the prompted slice stays.
"""

from __future__ import annotations

import contextlib
from typing import Any, Dict, Optional

import numpy as np

from .auth.identity import LOCAL
from .engines.base import SegmentationRequest
from .errors import DomainError, JobCancelled
from .imaging import StoredImage
from .interaction import commit_result
from .jobs import JobContext
from .segments import Change, SegmentSet
from .session import Session
from .state import ServerState

KIND = "propagate"


class _Generation:
    """The segment state a propagation belongs to: the session, its segment set, the segment
    and its prompt list object (every commit, undo or redo replaces the list)."""

    def __init__(self, state: ServerState, session: Session, segments: SegmentSet, name: str):
        self.state, self.session, self.segments, self.name = state, session, segments, name
        self.segment = segments.get(name)
        self.prompts = self.segment.prompts

    def gone(self) -> Optional[str]:
        """Why this state no longer holds (a job stage name), or None while it does."""
        if not self.state.sessions.is_live(self.session):
            return "session_ended"
        if (self.session.segments is not self.segments or self.segments.find(self.name) is not self.segment
                or self.segment.prompts is not self.prompts):
            return "superseded"
        if self.segment.locked:
            return "segment_locked"
        return None

    def check(self, ctx: JobContext) -> None:
        reason = self.gone()
        if reason is not None:
            ctx.progress(reason)
            raise JobCancelled()


def start(state: ServerState, session: Session, segments: SegmentSet, name: str, engine_name: str,
          image: StoredImage, options: Dict[str, Any], owner: str = LOCAL.owner) -> Optional[dict]:
    """Submit the propagation of segment ``name``'s last interaction when its engine
    propagates; the job's status, or None when there is nothing to propagate. Call under
    the session's lock, right after the interaction's commit."""
    engine = state.engines.get(engine_name)
    if not getattr(engine, "propagates", False):
        return None
    segment = segments.get(name)
    request = SegmentationRequest(image=image.as_engine_input(), prompts=list(segment.prompts),
                                  previous=segment.mask, cache=state.caches.cache_for(engine_name, image.image_id),
                                  options=dict(options))
    plan = engine.plan_propagation(request)
    if plan is None:
        return None
    generation = _Generation(state, session, segments, name)

    def work(ctx: JobContext) -> dict:
        generation.check(ctx)

        @contextlib.contextmanager
        def step():
            generation.check(ctx)
            try:
                with ctx.device_step():
                    yield
            except JobCancelled:
                generation.check(ctx)  # a cancel because the segment moved on says so
                raise

        def progress(stage: str, done: int, total: int) -> None:
            generation.check(ctx)
            ctx.progress(stage, done, total)

        done = engine.propagate(plan, progress=progress, step=step)
        return _commit(ctx, generation, done, engine_name)

    _cancel_previous(state, session, name)
    job = state.jobs.submit(KIND, work, engine.device, image_ids=[image.image_id], owner=owner)
    session.propagations[name] = job.id
    return state.jobs.describe(job)


def _cancel_previous(state: ServerState, session: Session, name: str) -> None:
    """Cancel the segment's earlier propagation: superseded, and no longer holding a place
    among the server's pending jobs (a queued job is cancelled at once)."""
    previous = session.propagations.pop(name, None)
    if previous is not None:
        try:
            state.jobs.cancel(previous, stage="superseded")
        except DomainError:  # finished and forgotten already
            pass


def _commit(ctx: JobContext, generation: _Generation, done, engine_name: str) -> dict:
    """Commit the propagation as one undo step unless its segment state is gone or it
    changes nothing; store the change as the array ``mask``; the job's result."""
    segments, segment, result = generation.segments, generation.segment, done.result
    with generation.session.lock:
        generation.check(ctx)
        change = Change(generation.name, None, np.zeros((0, 0, 0), bool))
        if result.mask.size and not np.array_equal(segment.mask.region(result.bbox), result.mask):
            change = commit_result(segments, segment, result, list(segment.prompts), engine_name)
        # Under the session's lock, before any later change to the segment can be made: the
        # job now ends done (a cancel arriving from here on no longer applies), and a client
        # that changed the segment afterwards sees "committed" until then.
        ctx.commit_point()
        meta = segments.change_meta(change)
    ctx.add_array("mask", change.values.view(np.uint8), meta)
    return {"segment": generation.name, "bbox_kji": meta["bbox_kji"], "voxels": meta["voxels"], **done.summary}
