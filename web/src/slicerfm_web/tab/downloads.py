"""Downloads of the current segmentation: Slicer's ``.seg.nrrd`` and a NIfTI label map.

* ``download/segmentation.seg.nrrd``: written by Slicer's own segmentation storage node
  (segments with names, colours and tags; overlapping segments kept apart as layers).
* ``download/labels.nii.gz``: one integer label per segment on the volume's voxel grid
  (value = position in the segment list, 1-based; uint8 up to 255 segments, else uint16),
  LPS geometry as any NIfTI reader expects; where segments overlap the later one in the
  list wins.
* ``download/labels.json``: ``{"image", "labels": [{"value", "name", "color" "#rrggbb",
  "segment_id", "locked"}]}`` -- the names and colours of the label map's values.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
from aiohttp import web

from SlicerFMLib.editor_settings import locked_segment_ids
from SlicerFMLib.segment_io import segment_to_mask
from SlicerFMLib.volume_io import volume_to_array

from .images import LPS_TO_RAS
from .segments import hex_colour

KINDS = ("segmentation.seg.nrrd", "labels.nii.gz", "labels.json")


def safe_file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "segmentation"


def label_map(segmentation_node, volume_node) -> Tuple[np.ndarray, List[Dict[str, object]]]:
    """``(labels (K, J, I), dictionary)`` of the segmentation on the volume's grid."""
    array, ijk_to_ras = volume_to_array(volume_node)
    segmentation = segmentation_node.GetSegmentation()
    count = segmentation.GetNumberOfSegments()
    labels = np.zeros(array.shape[:3], dtype=np.uint8 if count < 256 else np.uint16)
    locked = set(locked_segment_ids(segmentation_node))
    dictionary = []
    for index in range(count):
        segment_id = segmentation.GetNthSegmentID(index)
        segment = segmentation.GetSegment(segment_id)
        mask = segment_to_mask(segmentation_node, segment_id, array.shape[:3], ijk_to_ras)
        labels[mask] = index + 1
        dictionary.append({"value": index + 1, "name": segment.GetName(),
                           "color": hex_colour(segment.GetColor()), "segment_id": segment_id,
                           "locked": segment_id in locked})
    return labels, dictionary


def write_nifti(labels: np.ndarray, ijk_to_ras: np.ndarray, path: Path) -> None:
    """Write ``labels`` (K, J, I) with the volume's IJK->RAS as a NIfTI file (worker thread)."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(labels)
    ijk_to_lps = LPS_TO_RAS @ ijk_to_ras
    spacing = np.linalg.norm(ijk_to_lps[:3, :3], axis=0)
    image.SetSpacing([float(v) for v in spacing])
    image.SetDirection([float(v) for v in (ijk_to_lps[:3, :3] / spacing).ravel()])
    image.SetOrigin([float(v) for v in ijk_to_lps[:3, 3]])
    sitk.WriteImage(image, str(path), useCompression=True)


def write_seg_nrrd(segmentation_node, path: Path) -> None:
    """Slicer's segmentation file (main thread: reads the MRML node)."""
    from slicer import vtkMRMLSegmentationStorageNode

    storage = vtkMRMLSegmentationStorageNode()
    storage.SetFileName(str(path))
    if not storage.WriteData(segmentation_node):
        raise RuntimeError("Slicer could not write the segmentation file")


class Downloads:
    """Serves the three downloads for the tab's current volume and segmentation."""

    def __init__(self, current):
        """``current()`` -> (volume node, segmentation node) or (None, None)."""
        self.current = current
        self.folder = Path(tempfile.mkdtemp(prefix="slicerfm-downloads-"))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        kind = request.match_info.get("kind", "")
        if kind not in KINDS:
            raise web.HTTPNotFound(text=f"no download named {kind!r}")
        volume, segmentation = self.current()
        if volume is None or segmentation is None:
            return web.json_response({"error": "open a volume and segment it first"}, status=409)
        stem = safe_file_stem(volume.GetName())
        path = self.folder / f"{stem}-{kind}"
        if kind == "segmentation.seg.nrrd":
            write_seg_nrrd(segmentation, path)
            filename = f"{stem}.seg.nrrd"
        else:
            labels, dictionary = label_map(segmentation, volume)
            if kind == "labels.json":
                path.write_text(json.dumps({"image": volume.GetName(), "labels": dictionary}, indent=1))
                filename = f"{stem}-labels.json"
            else:
                ijk_to_ras = volume_to_array(volume)[1]
                await asyncio.get_running_loop().run_in_executor(None, write_nifti, labels,
                                                                 ijk_to_ras, path)
                filename = f"{stem}-labels.nii.gz"
        return web.FileResponse(path, headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store"})
