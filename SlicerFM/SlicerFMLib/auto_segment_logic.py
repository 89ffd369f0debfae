"""Automatic segmentation from the module (Qt-free): a volume -> named segments.

1. prepare (main thread): the volume's voxels and world geometry, the classes asked for
   (ids from the server's catalogue, or "everything");
2. execute (runner): ``slicerfm_client.auto_segment`` uploads the volume if the server
   lacks it, submits the job, follows its progress (windows done / total) and downloads
   the label map and its dictionary -- cancellable through
   :class:`SlicerFMLib.job_progress.JobProgress`;
3. apply (main thread): :func:`SlicerFMLib.label_segments.import_label_map` writes one
   segment per class into the chosen segmentation (named and coloured from the dictionary,
   locked segments untouched, same-name segments updated in place, one undo step) and tags
   them with their class, so that clicks on them send corrections of that class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .class_catalogue import ClassCatalogue
from .connection import describe_error
from .job_progress import INFO, WARNING, JobProgress, ServerJobLogic
from .label_segments import ImportReport, import_label_map
from .volume_io import volume_modality, volume_to_array

ENGINE = "vista3d"


@dataclass
class AutoSegmentInput:
    """What the worker thread sends: ``array`` (K, J, I) voxels with ``ijk_to_ras`` (4, 4)
    IJK->world RAS; ``classes`` (ids) or ``everything``; the MRML ids to apply to."""

    array: np.ndarray
    ijk_to_ras: np.ndarray
    modality: str
    engine: str
    classes: List = field(default_factory=list)
    everything: bool = False
    target: tuple = ()


@dataclass
class AutoSegmentOutcome:
    """The import report and the server's result meta (label dictionary, ``not_computed``)."""

    report: ImportReport
    meta: Dict[str, Any]

    def summary(self) -> str:
        text = self.report.summary()
        missing = self.meta.get("not_computed") or {}
        if missing.get("voxels"):
            text += (f"; {int(missing['voxels']):,} voxels were not computed "
                     f"({missing.get('reason', 'outside the computed region')}): existing "
                     "segments keep their voxels there")
        return text


def computed_box(not_computed):
    """The box ``[[k0, j0, i0], [k1, j1, i1]]`` the server computed, or None for the whole
    image (from the result's ``not_computed`` report: ``voxels``, ``computed_bbox_kji``)."""
    if not not_computed or not not_computed.get("voxels"):
        return None
    box = not_computed.get("computed_bbox_kji")
    if box is None:
        raise ValueError("the server reports voxels it did not compute but not which ones")
    return [[int(v) for v in box[0]], [int(v) for v in box[1]]]


class AutoSegmentationLogic(ServerJobLogic):
    """Segment ``volumeNode`` automatically into ``segmentationNode``.

    Attributes: ``volumeNode``, ``segmentationNode``, ``engine`` ("vista3d"), ``modality``
    ("auto" = from the DICOM attribute, or "CT"/"MR"/"unknown"), ``segmentationHistory``
    (receives the one undo state; see :func:`SlicerFMLib.undo.save_state_for_undo`).
    ``lastOutcome`` holds the last import.
    """

    description = "automatic segmentation"

    def __init__(self, connection, runner=None):
        super().__init__(connection, runner)
        self.volumeNode = None
        self.segmentationNode = None
        self.engine = ENGINE
        self.modality = "auto"
        self.segmentationHistory = None
        self.lastOutcome: Optional[AutoSegmentOutcome] = None
        self.classCatalogue: Optional[ClassCatalogue] = None
        self._scene = None

    def fetchCatalogue(self, onDone=None):
        """Ask the server for ``engine``'s classes (``GET /api/segment/auto/classes``) on the
        runner; ``classCatalogue`` is set and ``onDone(catalogue)`` called on the main
        thread. Errors (engine not served...) go to the message callback."""
        engine = self.engine

        def fetch():
            from slicerfm_client.auto_segment import class_catalogue

            return ClassCatalogue.from_server(class_catalogue(self.client(), engine))

        def done(catalogue):
            self.classCatalogue = catalogue
            self._changed()
            if onDone is not None:
                onDone(catalogue)

        def failed(error):
            self.classCatalogue = None
            self._notify(f"no class list for '{engine}': "
                         f"{describe_error(error, self.connection.settings)}", WARNING)
            if self.runner.synchronous:
                raise error

        return self.runner.submit(fetch, description=f"{engine} classes", on_done=done,
                                  on_error=failed)

    def prepare(self, classes: Sequence = (), everything: bool = False) -> AutoSegmentInput:
        if self.volumeNode is None or self.segmentationNode is None:
            raise ValueError("select the volume to segment and a segmentation for the results")
        if not everything and not classes:
            raise ValueError("choose classes to segment, or 'everything'")
        ids: List = [] if everything else list(classes)
        if ids and self.classCatalogue is not None:
            ids = self.classCatalogue.resolve(ids)     # the server checks them too
        array, ijk_to_ras = volume_to_array(self.volumeNode, copy=True)
        if array.ndim != 3:
            raise ValueError(f"'{self.volumeNode.GetName()}' has {array.shape[3]} components "
                             "per voxel: automatic segmentation needs a scalar volume")
        modality = volume_modality(self.volumeNode) if self.modality == "auto" else self.modality
        return AutoSegmentInput(array, ijk_to_ras, modality, self.engine, ids, bool(everything),
                                (self.volumeNode.GetID(), self.segmentationNode.GetID()))

    def run(self, classes: Sequence = (), everything: bool = False, onDone=None):
        """Segment the given classes (names or ids of the server's catalogue) or everything;
        ``onDone(outcome)`` on the main thread once the segments are written."""
        payload = self.prepare(classes, everything)
        self._scene = self.volumeNode.GetScene()
        return self._launch(payload, onDone)

    def _execute(self, payload: AutoSegmentInput, progress: JobProgress):
        from slicerfm_client.auto_segment import segment_auto

        progress.check_cancelled()
        progress.local("uploading the volume (if the server lacks it)")
        return segment_auto(self.client(), payload.array, payload.ijk_to_ras,
                            classes=payload.classes or None, everything=payload.everything,
                            engine=payload.engine, modality=payload.modality,
                            on_progress=progress.report, cancel_event=progress.cancel_event,
                            poll_s=self.pollSeconds)

    def _apply(self, payload: AutoSegmentInput, result) -> Optional[AutoSegmentOutcome]:
        labels = result.labels
        meta = {**(result.meta or {}), "labels": result.dictionary,
                "not_computed": result.not_computed or {}, "job_id": result.job_id}
        scene = self._scene
        volume = scene.GetNodeByID(payload.target[0]) if scene is not None else None
        segmentation = scene.GetNodeByID(payload.target[1]) if scene is not None else None
        if volume is None or segmentation is None:
            self._notify("the volume or segmentation was removed before the result arrived; "
                         "the result was not applied", WARNING)
            return None
        if tuple(labels.shape) != tuple(payload.array.shape):
            raise ValueError(f"the server's label map has shape {labels.shape}, the volume "
                             f"{payload.array.shape}")
        report = import_label_map(segmentation, labels, payload.ijk_to_ras, result.dictionary,
                                  payload.engine, history=self.segmentationHistory,
                                  computed_bbox_kji=computed_box(result.not_computed))
        outcome = AutoSegmentOutcome(report, dict(meta))
        self.lastOutcome = outcome
        self._notify(f"Automatic segmentation done: {outcome.summary()}", INFO)
        return outcome
