"""Helpers for the Logic tests: what the server holds vs what Slicer holds."""

import numpy as np

from SlicerFMLib.prompts import kji_to_ras
from SlicerFMLib.segment_io import segment_to_mask
from SlicerFMLib.segment_sync import server_segment_name
from SlicerFMLib.volume_io import volume_to_array


def server_mask(logic, segmentation, segment_id):
    """The segment as the server holds it, bool (K, J, I) (from its label map; a segment the
    server does not know is empty). Locked segments win overlaps in the label map."""
    labels, segments = logic.connection.client.labelmap()
    name = server_segment_name(segmentation, segment_id)
    label = next((s["label"] for s in segments if s["name"] == name), None)
    return np.zeros(labels.shape, bool) if label is None else labels == label


def slicer_mask(volume, segmentation, segment_id):
    """The segment as Slicer holds it, resampled onto the volume's grid: bool (K, J, I)."""
    array, ijk_to_ras = volume_to_array(volume)
    return segment_to_mask(segmentation, segment_id, array.shape, ijk_to_ras)


def ras_of(volume, point_kji):
    """World RAS (3,) of voxel (k, j, i) of ``volume`` (through its parent transforms)."""
    return kji_to_ras(point_kji, volume_to_array(volume)[1])


def dice(a, b):
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total
