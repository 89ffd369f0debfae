"""The interactive Logic's side of slice engines: prompts from slice views, and propagation.

Mixed into :class:`SlicerFMLib.interactive_logic.InteractiveSegmentationLogic`. With an
engine that declares ``slice_prompts`` (``medsam``, ``sam``; docs/PROTOCOL.md 5.1):

* prompts: a box drawn in a slice view becomes a slice box on the view's voxel axis and
  the slice it shows, a click carries ``slice_axis`` (:mod:`SlicerFMLib.slice_views`); an
  oblique view is refused with a message saying what to do;
* propagation: the interaction's answer (its slice) is applied at once; the job that
  propagates it is then followed on a runner of its own (``propagationRunner``), so that
  clicks never wait for it, with progress (:meth:`activePropagation`) and cancel
  (:meth:`cancelPropagation`); its change is applied through the interactive queue -- the
  same prepare -> run -> apply cycle as a click (locks, Segment Editor masking, undo state).
  An operation on the segment meanwhile supersedes it on the server and settles it (see
  :mod:`SlicerFMLib.propagation_follow` for why and how: no change is lost or reordered).
"""

from __future__ import annotations

import logging
from typing import Dict, Optional, Tuple

from . import interaction as ops
from .cycle import INFO, WARNING
from .editor_settings import locked_segment_ids
from .job_progress import ProgressSnapshot
from .propagation_follow import (APPLYING, ENDED, FOLLOWING, OWNED, POLL_S, PollOutcome,
                                 PropagationWatch, done_message, ended_message, poll_propagation)
from .slice_views import (AXIS_NAMES, cursor_slice_node, slice_box, slice_node_by_id, view_axis,
                          view_title)

log = logging.getLogger(__name__)


class PropagationMixin:
    """Slice prompts and propagation for the interactive Logic (see the module docstring).

    Attributes: ``propagate`` (default True: False asks the server for the prompted slice
    only), ``maxSlices`` (slices per direction, None = the server's default),
    ``propagationRunner`` (where jobs are polled; a ``BackgroundWorker`` in a front end,
    the ``InlineRunner`` in the console: a call then returns once the propagation is applied).
    """

    def _init_propagation(self, runner) -> None:
        self.propagate = True
        self.maxSlices: Optional[int] = None
        self.propagationRunner = runner
        self.propagationPollSeconds = POLL_S
        self._watches: Dict[Tuple[str, str], PropagationWatch] = {}

    # -- the engine and the view ---------------------------------------------------------

    def slicePrompts(self, engine: Optional[str] = None) -> bool:
        """Whether ``engine`` (default: the current one) takes slice prompts, as the
        connected server declares it (``slice_prompts`` in its engine list)."""
        status = self.connection.status
        name = engine or self.engine
        rows = status.engines if status is not None else []
        return any(row.get("name") == name and row.get("slice_prompts") for row in rows)

    def promptView(self):
        """The slice node of the view a prompt is being placed in (the mouse's), or None."""
        scene = self.volumeNode.GetScene() if self.volumeNode is not None else None
        return cursor_slice_node(scene)

    def _slice_prompt(self, prompt: dict, request: dict, array, ijk_to_ras) -> dict:
        """The slice fields of an interaction with a slice engine (``prompt`` is adapted in
        place: a box from a slice view becomes that view's slice box). Without a known view
        a box goes as a 3-D box and a click without ``slice_axis`` (the segment's axis)."""
        options = {"propagate": bool(self.propagate)}
        if self.maxSlices is not None:
            options["max_slices"] = int(self.maxSlices)
        view = slice_node_by_id(self.volumeNode.GetScene(), request.get("view_id"))
        if view is None:
            return options
        if prompt["kind"] == "box":
            roi = self.volumeNode.GetScene().GetNodeByID(request["roi_id"])
            axis, corners = slice_box(roi, view, ijk_to_ras, array.shape[:3])
            prompt["box_kji"] = [list(corners[0]), list(corners[1])]
            log.info("slice box from %s: axis %s, slice %d, corners (k, j, i) %s - %s",
                     view_title(view), AXIS_NAMES[axis], corners[0][axis], corners[0], corners[1])
        else:
            axis = view_axis(view, ijk_to_ras)
        options["slice_axis"] = axis
        return options

    # -- taking over a followed propagation ------------------------------------------------

    def _claim_propagation(self, interaction: ops.Interaction) -> None:
        """An operation that changes the segment supersedes its propagation on the server:
        it takes the watch over and settles it (or applies its downloaded change first)."""
        if interaction.op not in ops.CHANGES_SEGMENT:
            return
        watch = self._watches.get(tuple(interaction.target[:2]))
        if watch is None or not watch.active:
            return
        if watch.state == FOLLOWING:
            interaction.settle = watch.job_id
        else:
            interaction.prior = watch.update
        watch.state = OWNED
        interaction.watch = watch

    def _release_propagation(self, interaction: ops.Interaction) -> None:
        """The claiming operation failed or was cancelled before it was settled: the server's
        segment did not change through it, so the propagation goes on being followed."""
        watch = getattr(interaction, "watch", None)
        if watch is None or watch.state != OWNED:
            return
        if interaction.settled:
            watch.state = ENDED
            return
        if interaction.prior is not None:
            watch.state = APPLYING
            self._start(ops.PROPAGATED, job=watch.job_id)
        else:
            watch.state = FOLLOWING
            self._follow(watch)

    def _settled_propagation(self, interaction: ops.Interaction) -> None:
        watch = getattr(interaction, "watch", None)
        if watch is not None and watch.state == OWNED:
            watch.state = ENDED

    # -- following ---------------------------------------------------------------------

    def _propagation_started(self, interaction: ops.Interaction, update) -> None:
        """After an interaction's slice was applied: follow the job it started."""
        if update is None:
            return
        if update.propagation_error:
            self._notify(f"the slice is done, but nothing propagates from it: "
                         f"{update.propagation_error.get('message', '')}", WARNING)
        status = update.propagation
        if not status or interaction.op != ops.INTERACT:
            return
        key = tuple(interaction.target[:2])
        previous = self._watches.get(key)
        if previous is not None and previous.active:
            previous.state = ENDED                     # superseded on the server
        watch = PropagationWatch(str(status["job_id"]), interaction.segment, key,
                                 interaction.target, self._segment_label(interaction))
        watch.progress.report(status)
        self._watches[key] = watch
        self._changed()
        self._follow(watch)

    def _follow(self, watch: PropagationWatch) -> None:
        runner = self.propagationRunner
        runner.submit(poll_propagation, self.connection, watch, self.propagationPollSeconds,
                      runner.synchronous, description=f"following {watch.job_id[:6]}",
                      on_done=lambda outcome: self._polled(watch, outcome),
                      on_error=lambda error: self._poll_failed(watch, error),
                      on_cancelled=lambda _outcome: self._poll_failed(watch, None))

    def _polled(self, watch: PropagationWatch, outcome: PollOutcome) -> None:
        """Main thread: one poll of ``watch`` came back."""
        if watch.state != FOLLOWING:
            return                                     # taken over, superseded or dropped
        watch.status = outcome.status
        if outcome.state == "running":
            self._follow(watch)
        elif outcome.state == "done":
            watch.update, watch.state = outcome.update, APPLYING
            self._start(ops.PROPAGATED, job=watch.job_id)
        else:
            watch.state = ENDED
            text, level = ended_message(watch, outcome)
            self._notify(text, level)
        self._changed()

    def _poll_failed(self, watch: PropagationWatch, error: Optional[BaseException]) -> None:
        if watch.state != FOLLOWING:
            return
        watch.state = ENDED
        if error is not None:
            self._notify(f"lost track of the propagation of '{watch.label}': "
                         f"{error}; the prompted slice stays", WARNING)
        self._changed()

    def _prepare_propagated(self, request: dict) -> Optional[ops.Interaction]:
        """The PROPAGATED operation of a finished job, or None when there is nothing to
        apply any more (an operation on the segment took it over meanwhile)."""
        watch = next((w for w in self._watches.values() if w.job_id == request["job"]), None)
        if watch is None or watch.state != APPLYING:
            return None
        return ops.Interaction(op=ops.PROPAGATED, segment=watch.segment,
                               description=f"propagation of '{watch.label}'", prior=watch.update,
                               image_id=self._image.image_id if self._image else None,
                               target=watch.target, request=(ops.PROPAGATED, request),
                               watch=watch)

    def _apply_propagated(self, interaction: ops.Interaction, segmentation, state) -> bool:
        """Whether the finished propagation may be written: not into a segment locked in
        Slicer meanwhile (it is then re-seeded from Slicer before the next operation)."""
        watch = interaction.watch
        watch.state = ENDED
        if interaction.target[1] in locked_segment_ids(segmentation):
            state.dirty = True
            self._notify(f"the propagation of '{watch.label}' finished after the segment was "
                         "locked: not applied", INFO)
            return False
        self._notify(done_message(watch), INFO)
        return True

    # -- what front ends show and do -------------------------------------------------------

    def activePropagation(self) -> Optional[PropagationWatch]:
        """The newest propagation still running or waiting to be applied, or None."""
        active = [w for w in self._watches.values() if w.active]
        return max(active, key=lambda w: w.started) if active else None

    def propagationProgress(self) -> Optional[ProgressSnapshot]:
        watch = self.activePropagation()
        return watch.progress.snapshot() if watch is not None else None

    def cancelPropagation(self) -> bool:
        """Ask the server to stop every running propagation (the prompted slices stay);
        True when one was running. One that has finished already is applied all the same:
        the server holds its change."""
        running = [w for w in self._watches.values() if w.state == FOLLOWING]
        for watch in running:
            watch.progress.cancel()
        return bool(running)

    def _forget_propagations(self) -> None:
        """After a disconnect: the session's jobs are gone."""
        for watch in self._watches.values():
            watch.state = ENDED
        self._watches.clear()

    def _segment_label(self, interaction: ops.Interaction) -> str:
        segmentation = self._scene.GetNodeByID(interaction.target[0]) if self._scene else None
        segment = segmentation.GetSegmentation().GetSegment(interaction.target[1]) \
            if segmentation is not None else None
        return segment.GetName() if segment is not None else interaction.segment
