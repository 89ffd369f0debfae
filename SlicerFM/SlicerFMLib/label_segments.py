"""A multi-label map from the server -> named, coloured segments of a segmentation node.

Input: ``labels_kji`` (integer (K, J, I), 0 = background) on the uploaded volume's grid
``ijk_to_ras_world`` ((4, 4), voxel (i, j, k, 1) -> world RAS mm) and the server's label
dictionary ``{"<id>": {"name": str, "color": [r, g, b] (0..255 or 0..1)}}``.

Rules (what the user can rely on):

* one segment per label present in the map, named and coloured from the dictionary;
* an existing segment with the same name is updated in place (its ID, colour and other
  properties kept; its voxels replaced by the new result) -- unless it is locked, then it is
  left untouched and reported;
* voxels of locked segments are never given to a new or updated segment, and no other
  segment loses voxels (segments may overlap, as with the Segment Editor's "allow overlap");
* labels absent from the map change nothing (an existing segment of that name is kept);
* the whole import is ONE undo step (one state saved before the first write);
* each written segment is tagged with its engine and class (:func:`tag_class`), so that
  clicks on it can be sent as corrections of that class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from .class_catalogue import colour_01
from .editor_settings import locked_segment_ids
from .segment_io import replace_segment, segment_to_mask
from .undo import save_state_for_undo

CLASS_TAG = "SlicerFM.Class"
ENGINE_TAG = "SlicerFM.Engine"


@dataclass
class ImportReport:
    """What an import did: segment IDs created / updated, names skipped because the
    segment is locked, dictionary labels absent from the map."""

    created: List[str] = field(default_factory=list)
    updated: List[str] = field(default_factory=list)
    skipped_locked: List[str] = field(default_factory=list)
    absent: List[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(self.created)} segment(s) created", f"{len(self.updated)} updated"]
        if self.skipped_locked:
            parts.append("locked, left as they were: " + ", ".join(self.skipped_locked))
        if len(self.absent) > 8:        # e.g. "everything" on a head scan
            parts.append(f"{len(self.absent)} classes not found in the image")
        elif self.absent:
            parts.append("not found in the image: " + ", ".join(self.absent))
        return "; ".join(parts)


def tag_class(segmentation_node, segment_id: str, engine: str, class_id: int) -> None:
    """Remember that ``segment_id`` holds class ``class_id`` of ``engine``."""
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    segment.SetTag(ENGINE_TAG, engine)
    segment.SetTag(CLASS_TAG, str(int(class_id)))


def segment_class(segmentation_node, segment_id: str) -> Optional[Tuple[str, int]]:
    """``(engine, class id)`` of a segment written by an automatic segmentation, else None."""
    import vtk

    segment = segmentation_node.GetSegmentation().GetSegment(segment_id) \
        if segmentation_node is not None and segment_id else None
    if segment is None:
        return None
    engine, label = vtk.reference(""), vtk.reference("")
    if not (segment.GetTag(ENGINE_TAG, engine) and segment.GetTag(CLASS_TAG, label)):
        return None
    try:
        return str(engine), int(str(label))
    except ValueError:
        return None


def label_bounding_boxes(labels_kji: np.ndarray) -> Dict[int, Tuple[Tuple[int, ...], Tuple[int, ...]]]:
    """``{label: ((k0, j0, i0), (k1, j1, i1))}`` (stop exclusive) of every non-zero label,
    in three passes over the map (one per axis), whatever the number of labels."""
    labels = np.asarray(labels_kji)
    if labels.ndim != 3:
        raise ValueError(f"a label map must be (K, J, I); got shape {labels.shape}")
    if labels.size == 0:
        return {}
    if labels.dtype.kind not in "iu" or labels.min() < 0:
        raise ValueError(f"a label map holds non-negative integers; got {labels.dtype}")
    count = int(labels.max()) + 1
    presence = []
    for axis in range(3):
        moved = np.moveaxis(labels, axis, 0)
        presence.append(np.stack([np.bincount(plane.ravel(), minlength=count) > 0
                                  for plane in moved]))        # (size along axis, count)
    boxes = {}
    for label in np.flatnonzero(presence[0].any(axis=0)):
        if label == 0:
            continue
        starts, stops = [], []
        for axis in range(3):
            hits = np.flatnonzero(presence[axis][:, label])
            starts.append(int(hits[0]))
            stops.append(int(hits[-1]) + 1)
        boxes[int(label)] = (tuple(starts), tuple(stops))
    return boxes


def _find_segment(segmentation_node, name: str, engine: str, class_id: int) -> Optional[str]:
    """The segment to update for a class: a segment tagged with the class whose name is
    ``name``, else the first one named ``name``; None when there is none."""
    segmentation = segmentation_node.GetSegmentation()
    named = [segmentation.GetNthSegmentID(n) for n in range(segmentation.GetNumberOfSegments())
             if segmentation.GetNthSegment(n).GetName() == name]
    for segment_id in named:
        if segment_class(segmentation_node, segment_id) == (engine, class_id):
            return segment_id
    return named[0] if named else None


def import_label_map(segmentation_node, labels_kji: np.ndarray, ijk_to_ras_world,
                     dictionary: Dict, engine: str, history=None,
                     computed_bbox_kji=None) -> ImportReport:
    """Write the label map into ``segmentation_node`` following the module's rules (see
    the module docstring). history: where the single undo state goes (see
    :func:`SlicerFMLib.undo.save_state_for_undo`). computed_bbox_kji: ``[[k0, j0, i0],
    [k1, j1, i1]]`` (stop exclusive) when the server computed only that box: outside it the
    map says nothing, so existing segments keep their voxels there. Raises ValueError for
    a map whose labels are not in the dictionary or a malformed dictionary entry."""
    labels = np.asarray(labels_kji)
    boxes = label_bounding_boxes(labels)
    entries = {}
    for key, value in dictionary.items():
        try:
            entries[int(key)] = (str(value["name"]), colour_01(value.get("color")))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"label dictionary entry {key!r}: {value!r} is not "
                             "{'name': ..., 'color': [r, g, b]}") from error
    unknown = sorted(set(boxes) - set(entries))
    if unknown:
        raise ValueError(f"the label map holds labels {unknown} that its dictionary does not name")
    report = ImportReport()
    locked = set(locked_segment_ids(segmentation_node))
    locked_union = None
    if locked:
        locked_union = np.zeros(labels.shape, dtype=bool)
        for segment_id in locked:
            locked_union |= segment_to_mask(segmentation_node, segment_id, labels.shape,
                                            ijk_to_ras_world)
    editable = None if locked_union is None else ~locked_union
    if computed_bbox_kji is not None:
        inside = np.zeros(labels.shape, dtype=bool)
        inside[tuple(slice(int(a), int(b)) for a, b in zip(*computed_bbox_kji))] = True
        editable = inside if editable is None else editable & inside
    segmentation = segmentation_node.GetSegmentation()
    saved = False
    for class_id in sorted(entries):
        name, colour = entries[class_id]
        if class_id not in boxes:
            report.absent.append(name)
            continue
        segment_id = _find_segment(segmentation_node, name, engine, class_id)
        if segment_id is not None and segment_id in locked:
            report.skipped_locked.append(name)
            continue
        if not saved:
            save_state_for_undo(segmentation_node, history)
            saved = True
        if segment_id is None:
            segment_id = segmentation.AddEmptySegment("", name, colour)
            report.created.append(segment_id)
        else:
            report.updated.append(segment_id)
        start, stop = boxes[class_id]
        block = labels[tuple(slice(a, b) for a, b in zip(start, stop))] == class_id
        replace_segment(segmentation_node, segment_id, (start, stop), block, ijk_to_ras_world,
                        labels.shape, editable_mask=editable, save_undo_state=False,
                        locked_segment_ids=tuple(locked))
        tag_class(segmentation_node, segment_id, engine, class_id)
    return report
