"""Interactive segmentation of a Slicer scene through a backend: clicks, boxes, undo/redo.

Usable without the module's widget (Slicer's Python console, scripts, tests on the
``slicer-core`` wheel, another front end) and without Qt. The module's Logic
(:class:`SlicerFMLib.logic.SlicerFMCoreLogic`) owns one of these on its one connection.
Every operation goes through the prepare -> run -> apply cycle of :mod:`SlicerFMLib.cycle`:

1. prepare, on the calling (main) thread: read MRML -- the volume's voxels and world
   geometry (:func:`SlicerFMLib.volume_io.volume_to_array`), prompts from markups in world
   RAS converted to voxel ``(k, j, i)`` coordinates, segments whose server copy is stale
   (:mod:`SlicerFMLib.segment_sync`) -- into an :class:`SlicerFMLib.interaction.Interaction`;
2. run, on the runner: network only (:func:`SlicerFMLib.interaction.execute_interaction`);
3. apply, on the main thread: the server's mask update is written into the selected segment,
   only inside the changed box, obeying locks and the Segment Editor's masking settings
   (:mod:`SlicerFMLib.segment_io`, :mod:`SlicerFMLib.editor_settings`), with an undo state
   saved first (:mod:`SlicerFMLib.undo`).

Clicks made while one is in flight are queued and prepared only after its result is applied
(each is prepared from the scene as the user then sees it).

Slice engines (``medsam``, ``sam``): prompts from slice views and the propagation that
follows each click, :mod:`SlicerFMLib.propagation_logic`.

Lost session (server restarted, lease expired: ``SessionExpiredError``): the Logic tells
the user, claims a new session (restarting a local backend that died), re-sends the image,
re-seeds the segment from what Slicer holds and repeats the operation; no voxel of the
segment is lost, only the server's undo history.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Optional, Sequence, Tuple

import numpy as np

from slicerfm_client import errors

from . import interaction as ops
from .connection import describe_error
from .cycle import ERROR, INFO, WARNING, FeatureLogic
from .editor_settings import EditSettings, locked_segment_ids, set_segment_locked
from .editor_settings import settings_from_segment_editor
from .label_segments import segment_class
from .propagation_logic import PropagationMixin
from .prompts import prompt_polarity, ras_to_kji, roi_to_box
from .segment_io import apply_mask_update
from .slice_views import slice_node_by_id
from .segment_sync import SegmentState, new_state, record_write, refresh_state
from .volume_io import volume_modality, volume_to_array
from .worker import BackgroundWorker, InlineRunner, Task

log = logging.getLogger(__name__)

#: prompts are rounded to this fraction of a voxel (drops float noise of RAS round trips)
PROMPT_DECIMALS = 3


class ImageRecord:
    """The last volume prepared for upload: its MRML identity and, once known, its id."""

    def __init__(self, key: tuple, image_id: Optional[str] = None):
        self.key = key
        self.image_id = image_id


def volume_key(volume_node, array: np.ndarray, ijk_to_ras_world: np.ndarray) -> tuple:
    """Changes whenever the voxels or the world geometry may have changed: the node, its
    vtkImageData object and modified time, dtype, shape and ijk_to_ras_world."""
    image = volume_node.GetImageData()
    return (volume_node.GetID(), image.__this__, image.GetMTime(), array.dtype.str,
            array.shape, np.round(ijk_to_ras_world, 6).tobytes())


class InteractiveSegmentationLogic(PropagationMixin, FeatureLogic):
    """Interactive segmentation of ``segmentID`` of ``segmentationNode`` on ``volumeNode``.

    Attributes to set: ``engine`` (server engine name), ``modality`` ("auto" = from the
    volume's DICOM attributes, or "CT"/"MR"/"unknown"), ``editorNode`` (a
    ``vtkMRMLSegmentEditorNode`` whose overwrite/masking settings apply, or None),
    ``classCorrections`` (points on a segment written by an automatic segmentation go to
    its engine with its class; default True), ``segmentationHistory`` (an object with
    ``SaveState()``, e.g. :class:`SlicerFMLib.undo.SegmentEditorHistory`, receiving an undo
    state before each write; None = MRML scene undo when enabled), and the callbacks of
    :class:`SlicerFMLib.cycle.FeatureLogic`. ``connection`` and ``runner``: see there.
    ``propagationRunner``: where slice engines' propagation jobs are followed (default: an
    ``InlineRunner`` when ``runner`` is one, else a ``BackgroundWorker`` the front end polls);
    see :class:`SlicerFMLib.propagation_logic.PropagationMixin`.
    """

    description = "interaction"

    def __init__(self, connection=None, runner=None, propagationRunner=None):
        super().__init__(connection, runner)
        self._init_propagation(propagationRunner or (
            InlineRunner() if self.runner.synchronous else BackgroundWorker()))
        self.engine = "classic"
        self.classCorrections = True
        self.modality = "auto"
        self.volumeNode = None
        self.segmentationNode = None
        self.segmentID = ""
        self.editorNode = None
        self.segmentationHistory = None
        self.lastUpdate = None
        self._image: Optional[ImageRecord] = None
        self._scene = None
        self._states = {}
        self._observed = []
        self._inflight: Optional[Task] = None
        self._queue = deque()

    def forgetServerState(self) -> None:
        """After a disconnect: the next operation uploads the image again (the segments'
        server copies are re-seeded anyway, the connection generation having moved on)."""
        self._image = None
        self._forget_propagations()

    @property
    def inflight(self) -> Optional[Task]:
        """The interaction running now (None when idle); more may be queued behind it."""
        return self._inflight

    # -- inputs and prompts ----------------------------------------------------------

    def setInputs(self, volumeNode, segmentationNode, segmentID: str) -> None:
        """Select the source volume, the segmentation node and the segment to edit."""
        self.volumeNode, self.segmentationNode, self.segmentID = \
            volumeNode, segmentationNode, segmentID or ""

    def addPoint(self, rasWorld: Sequence[float], positive: bool = True, view=None) -> Task:
        """One positive or negative click at ``rasWorld`` (world RAS mm, 3 values). ``view``:
        the slice node of the view it was placed in (default: the view the mouse is in, if
        any); a slice engine gets its axis as ``slice_axis``."""
        view = view if view is not None else self.promptView()
        return self._start(ops.INTERACT, point_ras=[float(v) for v in rasWorld],
                           positive=bool(positive), view_id=view.GetID() if view else None)

    def addPointFromMarkups(self, markupsNode, index: int, positive: Optional[bool] = None,
                            view=None) -> Task:
        """Send control point ``index`` of a point list as a click; polarity from the node
        (see :func:`SlicerFMLib.prompts.set_prompt_polarity`) unless ``positive`` is given."""
        position = [0.0, 0.0, 0.0]
        markupsNode.GetNthControlPointPositionWorld(index, position)
        if positive is None:
            positive = prompt_polarity(markupsNode)
        return self.addPoint(position, positive, view)

    def addBox(self, roiNode, view=None) -> Task:
        """Send a markups ROI as a box prompt: its voxel-space bounding box, or with a slice
        engine and a slice ``view`` (default: the view the mouse is in, if any) a slice box
        on the slice that view shows (:func:`SlicerFMLib.slice_views.slice_box`)."""
        view = view if view is not None else self.promptView()
        return self._start(ops.INTERACT, roi_id=roiNode.GetID(),
                           view_id=view.GetID() if view else None)

    def undo(self) -> Task:
        """Undo the segment's last AI step (server history) and show the result."""
        return self._start(ops.UNDO)

    def redo(self) -> Task:
        return self._start(ops.REDO)

    def resetSegment(self) -> Task:
        """Empty the segment (undoable) and forget its prompts."""
        return self._start(ops.RESET)

    def setSegmentLocked(self, locked: bool = True) -> Task:
        """Lock the segment: no SlicerFM result on another segment changes its voxels."""
        self._require_inputs()
        set_segment_locked(self.segmentationNode, self.segmentID, locked)
        return self._start(ops.LOCK, locked=bool(locked))

    def isSegmentLocked(self) -> bool:
        return bool(self.segmentationNode is not None and
                    self.segmentID in locked_segment_ids(self.segmentationNode))

    def observePromptNodes(self, *markupsNodes) -> None:
        """Send one interaction per control point placed in any of these point lists."""
        import vtk
        from slicer import vtkMRMLMarkupsNode

        for node in markupsNodes:
            @vtk.calldata_type(vtk.VTK_INT)
            def placed(caller, event, index, node=node):
                try:
                    self.addPointFromMarkups(node, index)
                except (ValueError, RuntimeError, errors.SlicerFMError) as error:
                    self._notify(describe_error(error, self.connection.settings), ERROR)

            tag = node.AddObserver(vtkMRMLMarkupsNode.PointPositionDefinedEvent, placed)
            self._observed.append((node, tag))

    def removeObservers(self) -> None:
        for node, tag in self._observed:
            node.RemoveObserver(tag)
        self._observed = []

    def canUndo(self) -> bool:
        state = self._current_state()
        return bool(state and state.can_undo)

    def canRedo(self) -> bool:
        state = self._current_state()
        return bool(state and state.can_redo)

    def cancel(self) -> None:
        """Cancel pending interactions; a request already sent finishes but is not applied
        (the segment is re-seeded from Slicer before the next operation)."""
        self._queue.clear()
        self.runner.cancel()

    # -- prepare (main thread) ---------------------------------------------------------

    def _require_inputs(self) -> None:
        if self.volumeNode is None or self.segmentationNode is None or not self.segmentID:
            raise ValueError("select a source volume, a segmentation and a segment first")
        if self.segmentationNode.GetSegmentation().GetSegment(self.segmentID) is None:
            raise ValueError(f"the segmentation '{self.segmentationNode.GetName()}' has no "
                             f"segment with ID {self.segmentID!r}")

    def _current_state(self) -> Optional[SegmentState]:
        if self.segmentationNode is None:
            return None
        return self._states.get((self.segmentationNode.GetID(), self.segmentID))

    def _state(self, segment_id, shape, ijk_to_ras, force=False) -> SegmentState:
        key = (self.segmentationNode.GetID(), segment_id)
        state = self._states.get(key)
        if state is None:
            state = new_state(self.segmentationNode, segment_id, shape, ijk_to_ras)
        else:
            state = refresh_state(state, self.segmentationNode, shape, ijk_to_ras, force)
        self._states[key] = state
        return state

    def _prompt(self, request, array, ijk_to_ras, slice_engine: bool) -> dict:
        if "point_ras" in request:
            point = np.round(ras_to_kji(request["point_ras"], ijk_to_ras), PROMPT_DECIMALS)
            inside = (point >= -0.5) & (point <= np.asarray(array.shape[:3]) - 0.5)
            if not inside.all():
                raise ValueError("the point lies outside the source volume: click inside it")
            return {"kind": "point", "positive": request["positive"],
                    "point_kji": [float(v) for v in point]}
        roi = self.volumeNode.GetScene().GetNodeByID(request["roi_id"])
        if roi is None:
            raise ValueError("the box was removed before it could be sent")
        if slice_engine and slice_node_by_id(roi.GetScene(), request.get("view_id")) is not None:
            return {"kind": "box", "box_kji": None}     # the view's slice box (_slice_prompt)
        low, high = roi_to_box(roi, ijk_to_ras, array.shape[:3])
        return {"kind": "box", "box_kji": [list(low), list(high)]}

    def _prepare(self, op: str, request: dict, recovering: bool = False) -> ops.Interaction:
        self._require_inputs()
        array, ijk_to_ras = volume_to_array(self.volumeNode)
        if array.ndim != 3:
            raise ValueError("SlicerFM segments scalar volumes; this volume has "
                             f"{array.shape[3]} components per voxel")
        if op in (ops.INTERACT, ops.UNDO, ops.REDO, ops.RESET) and self.isSegmentLocked():
            raise ValueError(f"segment '{self._segment_name()}' is locked: unlock it first")
        self._scene = self.volumeNode.GetScene()
        key = volume_key(self.volumeNode, array, ijk_to_ras)
        payload = None
        if recovering or self._image is None or self._image.key != key \
                or self._image.image_id is None:
            modality = volume_modality(self.volumeNode) if self.modality == "auto" else self.modality
            payload = ops.ImagePayload(array.copy(), ijk_to_ras.copy(), modality)
            self._image = ImageRecord(key)
        current = self._state(self.segmentID, array.shape, ijk_to_ras, force=recovering)
        locked = [s for s in locked_segment_ids(self.segmentationNode) if s != self.segmentID]
        seeds = [self._seed(current, locked=(op == ops.LOCK and request.get("locked", True))
                            or self.isSegmentLocked())]
        seeds += [self._seed(self._state(s, array.shape, ijk_to_ras), locked=True) for s in locked]
        prompt, engine, label, slice_options = None, self.engine, None, {}
        if op == ops.INTERACT:
            engine, label = self._engine_for("point" if "point_ras" in request else "box")
            slice_engine = self.slicePrompts(engine)
            prompt = self._prompt(request, array, ijk_to_ras, slice_engine)
            if slice_engine:
                slice_options = self._slice_prompt(prompt, request, array, ijk_to_ras)
        interaction = ops.Interaction(
            op=op, segment=current.server_name, engine=engine, prompt=prompt, label=label,
            slice_options=slice_options, locked=request.get("locked", True), image=payload,
            image_id=self._image.image_id, seeds=seeds, reconnect=recovering,
            recovering=recovering, description=self._describe(op, prompt),
            target=(self.segmentationNode.GetID(), self.segmentID, self.volumeNode.GetID()),
            request=(op, request))
        self._claim_propagation(interaction)
        return interaction

    def _prepare_any(self, op: str, request: dict) -> Optional[ops.Interaction]:
        """The operation, prepared from the scene now; None when there is nothing to do."""
        if op == ops.PROPAGATED:
            return self._prepare_propagated(request)
        return self._prepare(op, request)

    def _engine_for(self, kind: str) -> Tuple[str, Optional[int]]:
        """(engine, class) of an interaction: points on a segment that an automatic
        segmentation wrote (tagged with its engine and class, see
        :mod:`SlicerFMLib.label_segments`) are corrections of that class by that engine,
        when ``classCorrections`` is on; anything else goes to ``engine`` without a class."""
        if kind == "point" and self.classCorrections:
            tagged = segment_class(self.segmentationNode, self.segmentID)
            if tagged is not None:
                return tagged
        return self.engine, None

    @staticmethod
    def _seed(state: SegmentState, locked: bool) -> ops.SeedPayload:
        bbox, block = state.mirror.seed_block()
        return ops.SeedPayload(state.server_name, bbox, block, state.generation, state.dirty,
                                state.mirror.bbox is None, locked)

    def _segment_name(self) -> str:
        segment = self.segmentationNode.GetSegmentation().GetSegment(self.segmentID)
        return segment.GetName() if segment is not None else self.segmentID

    def _describe(self, op, prompt) -> str:
        if op == ops.INTERACT:
            what = "box" if prompt["kind"] == "box" else \
                ("positive point" if prompt["positive"] else "negative point")
            return f"{what} on '{self._segment_name()}'"
        return f"{op} '{self._segment_name()}'"

    # -- run ---------------------------------------------------------------------------

    def _start(self, op: str, **request) -> Optional[Task]:
        """Prepare and run now, or queue when an interaction is in flight (its result must be
        applied before the next one is prepared from the scene). Returns the task, None if
        queued."""
        if self._inflight is not None:
            # it keeps the inputs it was made with: choosing another segment (or engine)
            # while it waits must not send it elsewhere
            self._queue.append((op, request, self._inputs()))
            return None
        interaction = self._prepare_any(op, request)
        return None if interaction is None else self._run(interaction)

    def _inputs(self) -> tuple:
        return self.volumeNode, self.segmentationNode, self.segmentID, self.engine

    def _run(self, interaction: ops.Interaction) -> Task:
        def settled():
            if self._inflight is None:
                self._next()

        task = self._cycle(interaction, self._execute, self._apply,
                           description=interaction.description,
                           on_error=lambda error: self._on_error(interaction, error),
                           on_cancelled=lambda outcome: self._on_cancelled(interaction, outcome),
                           before=self._landed, after=settled)
        if not task.delivered:
            self._inflight = task
        return task

    def _landed(self) -> None:
        self._inflight = None

    def _execute(self, interaction: ops.Interaction) -> ops.InteractionOutcome:
        return ops.execute_interaction(self.connection, interaction)

    def _next(self) -> None:
        """Prepare and run the next queued request (main thread)."""
        while self._queue and self._inflight is None:
            op, request, inputs = self._queue.popleft()
            current = self._inputs()
            self.volumeNode, self.segmentationNode, self.segmentID, self.engine = inputs
            try:
                interaction = self._prepare_any(op, request)
                if interaction is not None:
                    self._run(interaction)
            except (ValueError, RuntimeError) as error:
                self._report(error)
            finally:
                self.volumeNode, self.segmentationNode, self.segmentID, self.engine = current

    def _on_error(self, interaction: ops.Interaction, error: BaseException) -> Optional[Task]:
        """React to a failed interaction (main thread); returns the recovery task when one
        runs. With the inline runner, an error that is not recovered is raised."""
        self._release_propagation(interaction)
        if isinstance(error, errors.SessionExpiredError) and not interaction.recovering:
            self._notify("The SlicerFM server lost this session (it was restarted, or the "
                         "session expired). Reconnecting and re-sending the image and "
                         f"segment '{self._segment_name()}' from Slicer...", WARNING)
            return self._recover(interaction)
        if isinstance(error, errors.ServerUnreachableError) and not interaction.recovering \
                and self.connection.local_backend_died():
            self._notify("The local SlicerFM backend stopped. Starting it again and re-sending "
                         f"the image and segment '{self._segment_name()}' from Slicer...", WARNING)
            return self._recover(interaction)
        if isinstance(error, errors.ImageNotFoundError) and interaction.image is None \
                and not interaction.recovering:
            self._image = None            # the server evicted it: upload again
            return self._run(self._prepare(*interaction.request))
        self._report(error)
        return None

    def _recover(self, interaction: ops.Interaction) -> Optional[Task]:
        """New session, image and seeds, then the operation again -- except undo/redo: the
        server's history is gone, so only the state is restored and the user told so."""
        op, request = interaction.request
        try:
            recovery = self._prepare(ops.SYNC if op in (ops.UNDO, ops.REDO) else op, request,
                                     recovering=True)
        except (ValueError, RuntimeError) as error:
            self._report(error)
            return None
        recovery.request = interaction.request
        for state in self._states.values():
            state.can_undo = state.can_redo = False
        return self._run(recovery)

    # -- apply (main thread) -------------------------------------------------------------

    def _apply(self, interaction: ops.Interaction, outcome: ops.InteractionOutcome) -> None:
        if self._image is not None and self._image.image_id is None:
            self._image.image_id = outcome.image_id
        segmentation_id, segment_id, volume_id = interaction.target
        scene = self._scene
        segmentation = scene.GetNodeByID(segmentation_id) if scene is not None else None
        volume = scene.GetNodeByID(volume_id) if scene is not None else None
        for state in self._states.values():
            if state.server_name in outcome.seeded:
                state.generation, state.dirty = outcome.generation, False
        state = self._states.get((segmentation_id, segment_id))
        self._settled_propagation(interaction)
        if segmentation is None or volume is None or state is None:
            self._notify("the segmentation or volume was removed before the result arrived; "
                         "the result was not applied", WARNING)
            return
        if interaction.op == ops.PROPAGATED:
            if self._apply_propagated(interaction, segmentation, state):
                self._write(outcome.update, segmentation, segment_id, volume, state)
            self._changed()
            return
        state.generation = outcome.generation
        if outcome.prior is not None:        # the propagation committed before this operation
            self._write(outcome.prior, segmentation, segment_id, volume, state)
        if outcome.update is not None:
            self._write(outcome.update, segmentation, segment_id, volume, state)
        self._changed()
        self._propagation_started(interaction, outcome.update)
        if interaction.recovering:
            self._notify("Reconnected to the SlicerFM server: image re-sent and segment "
                         f"'{self._segment_name()}' restored from Slicer (the server's undo "
                         "history starts afresh).", INFO)
            if interaction.request[0] in (ops.UNDO, ops.REDO):
                self._report(errors.NothingToUndoError(
                    f"nothing to {interaction.request[0]}: the server's undo history was lost with the "
                    "session (your segment is intact)"))

    def _write(self, update, segmentation, segment_id, volume, state: SegmentState) -> None:
        state.can_undo, state.can_redo = update.can_undo, update.can_redo
        self.lastUpdate = update
        if update.bbox is None:
            return
        array, ijk_to_ras = volume_to_array(volume)
        settings = self._edit_settings(segmentation, segment_id, update.bbox, ijk_to_ras, array)
        try:
            apply_mask_update(segmentation, segment_id, update.bbox, update.mask, ijk_to_ras,
                              history=self.segmentationHistory, **settings.as_kwargs())
        except ValueError:                # e.g. locked in the meantime: the cycle reports it
            state.dirty = True
            raise
        record_write(state, segmentation, update.bbox, array.shape, ijk_to_ras)

    def _edit_settings(self, segmentation, segment_id, bbox, ijk_to_ras, array) -> EditSettings:
        if self.editorNode is None:
            return EditSettings(locked_segment_ids=locked_segment_ids(segmentation))
        return settings_from_segment_editor(self.editorNode, segmentation, segment_id,
                                            [list(bbox[0]), list(bbox[1])], ijk_to_ras, array)

    def _on_cancelled(self, interaction: ops.Interaction,
                      outcome: Optional[ops.InteractionOutcome]) -> None:
        """A cancelled request finished anyway: keep Slicer as it is and re-seed later."""
        self._release_propagation(interaction)
        if outcome is None:
            return
        if self._image is not None and self._image.image_id is None:
            self._image.image_id = outcome.image_id
        state = self._states.get(outcome.interaction.target[:2])
        if state is not None:
            state.dirty = True
        self._notify(f"cancelled: {outcome.interaction.description}", INFO)
