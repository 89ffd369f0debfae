"""The SlicerFM Logic: interactive segmentation of a Slicer scene through a backend.

Usable without the module's widget (Slicer's Python console, scripts, tests on the
``slicer-core`` wheel) and without Qt. Every operation has three steps:

1. prepare, on the calling (main) thread: read MRML -- the volume's voxels and world
   geometry (:func:`SlicerFMLib.volume_io.volume_to_array`), prompts from markups in world
   RAS converted to voxel ``(k, j, i)`` coordinates, segments whose server copy is stale
   (:mod:`SlicerFMLib.segment_sync`) -- into a :class:`SlicerFMLib.jobs.Job`;
2. execute, on the runner: network only (:func:`SlicerFMLib.jobs.execute_job`);
3. apply, on the main thread: the server's mask update is written into the selected segment,
   only inside the changed box, obeying locks and the Segment Editor's masking settings
   (:mod:`SlicerFMLib.segment_io`, :mod:`SlicerFMLib.editor_settings`), with an undo state
   saved first (:mod:`SlicerFMLib.undo`).

The runner is an :class:`~SlicerFMLib.worker.InlineRunner` by default (each call blocks and
raises errors: convenient in the console) or a :class:`~SlicerFMLib.worker.BackgroundWorker`
(the widget: calls return at once, results are applied when the worker is polled).

Lost session (server restarted, lease expired: ``SessionExpiredError``): the Logic tells
the user, claims a new session (restarting a local backend that died), re-sends the image,
re-seeds the segment from what Slicer holds and repeats the operation; no voxel of the
segment is lost, only the server's undo history.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Callable, Optional, Sequence, Tuple

import numpy as np

from slicerfm_client import errors

from . import jobs
from .connection import Connection, ConnectionSettings, describe_error
from .editor_settings import EditSettings, locked_segment_ids, set_segment_locked
from .editor_settings import settings_from_segment_editor
from .label_segments import segment_class
from .prompts import prompt_polarity, ras_to_kji, roi_to_box
from .segment_io import apply_mask_update
from .segment_sync import SegmentState, new_state, record_write, refresh_state
from .volume_io import volume_to_array
from .worker import InlineRunner, Task

log = logging.getLogger(__name__)

INFO, WARNING, ERROR = "info", "warning", "error"
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


def volume_modality(volume_node, default: str = "unknown") -> str:
    """"CT" or "MR" from the node's ``DICOM.Modality`` attribute, else ``default``."""
    value = (volume_node.GetAttribute("DICOM.Modality") or "").upper()
    return value if value in ("CT", "MR") else default


class InteractiveSegmentationLogic:
    """Interactive segmentation of ``segmentID`` of ``segmentationNode`` on ``volumeNode``.

    Attributes to set: ``engine`` (server engine name), ``modality`` ("auto" = from the
    volume's DICOM attributes, or "CT"/"MR"/"unknown"), ``editorNode`` (a
    ``vtkMRMLSegmentEditorNode`` whose overwrite/masking settings apply, or None),
    ``classCorrections`` (points on a segment written by an automatic segmentation go to
    its engine with its class; default True), ``segmentationHistory`` (an object with
    ``SaveState()``, e.g. the Segment Editor's
    ``vtkSegmentationHistory``, receiving an undo state before each write; None = MRML scene
    undo when enabled), ``messageCallback(text, level)`` and ``changedCallback()``.
    """

    def __init__(self, runner=None):
        self.connection = Connection()
        self.runner = runner or InlineRunner()
        self.engine = "classic"
        self.classCorrections = True
        self.modality = "auto"
        self.volumeNode = None
        self.segmentationNode = None
        self.segmentID = ""
        self.editorNode = None
        self.segmentationHistory = None
        self.messageCallback: Optional[Callable[[str, str], None]] = None
        self.changedCallback: Optional[Callable[[], None]] = None
        self.lastUpdate = None
        self._image: Optional[ImageRecord] = None
        self._scene = None
        self._states = {}
        self._observed = []
        self._inflight: Optional[Task] = None
        self._queue = deque()

    # -- connection ------------------------------------------------------------------

    def connect(self, settings: ConnectionSettings, onDone: Optional[Callable] = None) -> Task:
        """Connect (local: start the backend first). ``task.result`` is the ServerStatus."""
        def done(status):
            self._notify(f"Connected: {status.summary()}", INFO)
            if onDone is not None:
                onDone(status)
            self._changed()

        return self._submit(self.connection.connect, settings, description="Connecting",
                            on_done=done, on_error=self._report)

    def disconnect(self) -> None:
        """Release the session and stop a local backend (waits for running work)."""
        self.cancel()
        self.runner.wait(30.0)
        self.connection.disconnect()
        self._image = None
        self._changed()

    @property
    def status(self):
        return self.connection.status

    # -- inputs and prompts ----------------------------------------------------------

    def setInputs(self, volumeNode, segmentationNode, segmentID: str) -> None:
        """Select the source volume, the segmentation node and the segment to edit."""
        self.volumeNode, self.segmentationNode, self.segmentID = \
            volumeNode, segmentationNode, segmentID or ""

    def addPoint(self, rasWorld: Sequence[float], positive: bool = True) -> Task:
        """One positive or negative click at ``rasWorld`` (world RAS mm, 3 values)."""
        return self._start(jobs.INTERACT, point_ras=[float(v) for v in rasWorld],
                           positive=bool(positive))

    def addPointFromMarkups(self, markupsNode, index: int, positive: Optional[bool] = None) -> Task:
        """Send control point ``index`` of a point list as a click; polarity from the node
        (see :func:`SlicerFMLib.prompts.set_prompt_polarity`) unless ``positive`` is given."""
        position = [0.0, 0.0, 0.0]
        markupsNode.GetNthControlPointPositionWorld(index, position)
        if positive is None:
            positive = prompt_polarity(markupsNode)
        return self.addPoint(position, positive)

    def addBox(self, roiNode) -> Task:
        """Send a markups ROI as a box prompt (its voxel-space bounding box)."""
        return self._start(jobs.INTERACT, roi_id=roiNode.GetID())

    def undo(self) -> Task:
        """Undo the segment's last AI step (server history) and show the result."""
        return self._start(jobs.UNDO)

    def redo(self) -> Task:
        return self._start(jobs.REDO)

    def resetSegment(self) -> Task:
        """Empty the segment (undoable) and forget its prompts."""
        return self._start(jobs.RESET)

    def setSegmentLocked(self, locked: bool = True) -> Task:
        """Lock the segment: no SlicerFM result on another segment changes its voxels."""
        self._require_inputs()
        set_segment_locked(self.segmentationNode, self.segmentID, locked)
        return self._start(jobs.LOCK, locked=bool(locked))

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
        """Cancel pending work; a request already sent finishes but is not applied (the
        segment is re-seeded from Slicer before the next operation)."""
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

    def _prompt(self, request, array, ijk_to_ras) -> dict:
        if "point_ras" in request:
            point = np.round(ras_to_kji(request["point_ras"], ijk_to_ras), PROMPT_DECIMALS)
            inside = (point >= -0.5) & (point <= np.asarray(array.shape[:3]) - 0.5)
            if not inside.all():
                raise ValueError("the point lies outside the source volume: click inside it")
            return {"kind": "point", "positive": request["positive"],
                    "point_kji": [float(v) for v in point]}
        roi = self.volumeNode.GetScene().GetNodeByID(request["roi_id"])
        low, high = roi_to_box(roi, ijk_to_ras, array.shape[:3])
        return {"kind": "box", "box_kji": [list(low), list(high)]}

    def _prepare(self, op: str, request: dict, recovering: bool = False) -> jobs.Job:
        self._require_inputs()
        array, ijk_to_ras = volume_to_array(self.volumeNode)
        if array.ndim != 3:
            raise ValueError("SlicerFM segments scalar volumes; this volume has "
                             f"{array.shape[3]} components per voxel")
        if op in (jobs.INTERACT, jobs.UNDO, jobs.REDO, jobs.RESET) and self.isSegmentLocked():
            raise ValueError(f"segment '{self._segment_name()}' is locked: unlock it first")
        self._scene = self.volumeNode.GetScene()
        key = volume_key(self.volumeNode, array, ijk_to_ras)
        payload = None
        if recovering or self._image is None or self._image.key != key \
                or self._image.image_id is None:
            modality = volume_modality(self.volumeNode) if self.modality == "auto" else self.modality
            payload = jobs.ImagePayload(array.copy(), ijk_to_ras.copy(), modality)
            self._image = ImageRecord(key)
        current = self._state(self.segmentID, array.shape, ijk_to_ras, force=recovering)
        locked = [s for s in locked_segment_ids(self.segmentationNode) if s != self.segmentID]
        seeds = [self._seed(current, locked=(op == jobs.LOCK and request.get("locked", True))
                            or self.isSegmentLocked())]
        seeds += [self._seed(self._state(s, array.shape, ijk_to_ras), locked=True) for s in locked]
        prompt = self._prompt(request, array, ijk_to_ras) if op == jobs.INTERACT else None
        engine, label = self._engine_for(prompt)
        return jobs.Job(op=op, segment=current.server_name, engine=engine, prompt=prompt,
                        label=label,
                        locked=request.get("locked", True), image=payload,
                        image_id=self._image.image_id, seeds=seeds, reconnect=recovering,
                        recovering=recovering, description=self._describe(op, prompt),
                        target=(self.segmentationNode.GetID(), self.segmentID,
                                self.volumeNode.GetID()),
                        request=(op, request))

    def _engine_for(self, prompt) -> Tuple[str, Optional[int]]:
        """(engine, class) of an interaction: points on a segment that an automatic
        segmentation wrote (tagged with its engine and class, see
        :mod:`SlicerFMLib.label_segments`) are corrections of that class by that engine,
        when ``classCorrections`` is on; anything else goes to ``engine`` without a class."""
        if prompt is not None and prompt["kind"] == "point" and self.classCorrections:
            tagged = segment_class(self.segmentationNode, self.segmentID)
            if tagged is not None:
                return tagged
        return self.engine, None

    @staticmethod
    def _seed(state: SegmentState, locked: bool) -> jobs.SeedPayload:
        bbox, block = state.mirror.seed_block()
        return jobs.SeedPayload(state.server_name, bbox, block, state.generation, state.dirty,
                                state.mirror.bbox is None, locked)

    def _segment_name(self) -> str:
        segment = self.segmentationNode.GetSegmentation().GetSegment(self.segmentID)
        return segment.GetName() if segment is not None else self.segmentID

    def _describe(self, op, prompt) -> str:
        if op == jobs.INTERACT:
            what = "box" if prompt["kind"] == "box" else \
                ("positive point" if prompt["positive"] else "negative point")
            return f"{what} on '{self._segment_name()}'"
        return f"{op} '{self._segment_name()}'"

    # -- run ---------------------------------------------------------------------------

    def _submit(self, fn, *args, description, on_done, on_error) -> Task:
        return self.runner.submit(fn, *args, description=description, on_done=on_done,
                                  on_error=on_error)

    def _start(self, op: str, **request) -> Optional[Task]:
        """Prepare and run now, or queue when a job is in flight (its result must be applied
        before the next job is prepared from the scene). Returns the task, None if queued."""
        if self._inflight is not None:
            self._queue.append((op, request))
            return None
        return self._run(self._prepare(op, request))

    def _run(self, job: jobs.Job) -> Task:
        def finished(handler):
            def call(value):
                self._inflight = None
                try:
                    handler(value)
                finally:
                    if self._inflight is None:
                        self._next()
            return call

        task = self.runner.submit(jobs.execute_job, self.connection, job,
                                  description=job.description, on_done=finished(self._apply),
                                  on_error=finished(lambda error: self._on_error(job, error)),
                                  on_cancelled=finished(self._on_cancelled))
        if not task.delivered:
            self._inflight = task
        return task

    def _next(self) -> None:
        """Prepare and run the next queued request (main thread)."""
        while self._queue and self._inflight is None:
            op, request = self._queue.popleft()
            try:
                self._run(self._prepare(op, request))
            except (ValueError, RuntimeError) as error:
                self._report(error)

    def _on_error(self, job: jobs.Job, error: BaseException) -> Optional[Task]:
        """React to a failed job (main thread); returns the recovery task when one runs.
        With the inline runner, an error that is not recovered is raised."""
        if isinstance(error, errors.SessionExpiredError) and not job.recovering:
            self._notify("The SlicerFM server lost this session (it was restarted, or the "
                         "session expired). Reconnecting and re-sending the image and "
                         f"segment '{self._segment_name()}' from Slicer...", WARNING)
            return self._recover(job)
        if isinstance(error, errors.ServerUnreachableError) and not job.recovering \
                and self.connection.local_backend_died():
            self._notify("The local SlicerFM backend stopped. Starting it again and re-sending "
                         f"the image and segment '{self._segment_name()}' from Slicer...", WARNING)
            return self._recover(job)
        if isinstance(error, errors.ImageNotFoundError) and job.image is None \
                and not job.recovering:
            self._image = None            # the server evicted it: upload again
            return self._run(self._prepare(*job.request))
        self._report(error)
        return None

    def _recover(self, job: jobs.Job) -> Optional[Task]:
        """New session, image and seeds, then the operation again -- except undo/redo: the
        server's history is gone, so only the state is restored and the user told so."""
        op, request = job.request
        try:
            recovery = self._prepare(jobs.SYNC if op in (jobs.UNDO, jobs.REDO) else op, request,
                                     recovering=True)
        except (ValueError, RuntimeError) as error:
            self._report(error)
            return None
        recovery.request = job.request
        for state in self._states.values():
            state.can_undo = state.can_redo = False
        return self._run(recovery)

    def _report(self, error: BaseException) -> None:
        self._notify(describe_error(error, self.connection.settings), ERROR)
        if not self.runner.synchronous:
            return
        raise error

    # -- apply (main thread) -------------------------------------------------------------

    def _apply(self, outcome: jobs.Outcome) -> None:
        job = outcome.job
        if self._image is not None and self._image.image_id is None:
            self._image.image_id = outcome.image_id
        segmentation_id, segment_id, volume_id = job.target
        scene = self._scene
        segmentation = scene.GetNodeByID(segmentation_id) if scene is not None else None
        volume = scene.GetNodeByID(volume_id) if scene is not None else None
        for state in self._states.values():
            if state.server_name in outcome.seeded:
                state.generation, state.dirty = outcome.generation, False
        state = self._states.get((segmentation_id, segment_id))
        if segmentation is None or volume is None or state is None:
            self._notify("the segmentation or volume was removed before the result arrived; "
                         "the result was not applied", WARNING)
            return
        state.generation = outcome.generation
        if outcome.update is not None:
            self._write(outcome.update, segmentation, segment_id, volume, state)
        self._changed()
        if job.recovering:
            self._notify("Reconnected to the SlicerFM server: image re-sent and segment "
                         f"'{self._segment_name()}' restored from Slicer (the server's undo "
                         "history starts afresh).", INFO)
            if job.request[0] in (jobs.UNDO, jobs.REDO):
                self._report(errors.NothingToUndoError(
                    f"nothing to {job.request[0]}: the server's undo history was lost with the "
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
        except ValueError as error:       # e.g. locked in the meantime
            state.dirty = True
            self._report(error)
            return
        record_write(state, segmentation, update.bbox, array.shape, ijk_to_ras)

    def _edit_settings(self, segmentation, segment_id, bbox, ijk_to_ras, array) -> EditSettings:
        if self.editorNode is None:
            return EditSettings(locked_segment_ids=locked_segment_ids(segmentation))
        return settings_from_segment_editor(self.editorNode, segmentation, segment_id,
                                            [list(bbox[0]), list(bbox[1])], ijk_to_ras, array)

    def _on_cancelled(self, outcome: Optional[jobs.Outcome]) -> None:
        """A cancelled request finished anyway: keep Slicer as it is and re-seed later."""
        if outcome is None:
            return
        if self._image is not None and self._image.image_id is None:
            self._image.image_id = outcome.image_id
        state = self._states.get(outcome.job.target[:2])
        if state is not None:
            state.dirty = True
        self._notify(f"cancelled: {outcome.job.description}", INFO)

    def _notify(self, text: str, level: str) -> None:
        getattr(log, level)("SlicerFM: %s", text)
        if self.messageCallback is not None:
            self.messageCallback(text, level)

    def _changed(self) -> None:
        if self.changedCallback is not None:
            self.changedCallback()
