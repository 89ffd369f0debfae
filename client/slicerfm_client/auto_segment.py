"""Automatic segmentation from the client (torch-free): upload, submit, wait, download.

    from slicerfm_client.auto_segment import segment_auto
    result = segment_auto(client, array_kji, ijk_to_ras, classes=["liver", "spleen"])
    result.labels            # uint8 (K, J, I) class ids on the uploaded image's grid
    result.dictionary        # {id: {"name", "color": [r, g, b], "group"}}
    result.not_computed      # {"voxels", "computed_bbox_kji", "reason"}

``on_progress(status)`` receives the job status dict (stage "windows", done/total) while
waiting; setting ``cancel_event`` cancels the job on the server (JobCancelledError).
"""

from __future__ import annotations

import threading
from urllib.parse import quote
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from . import protocol


@dataclass
class AutoResult:
    """A finished automatic segmentation: ``labels`` (K, J, I) on the image grid, the label
    dictionary keyed by int id, the not-computed report and the job's result meta."""

    labels: np.ndarray
    dictionary: Dict[int, Dict[str, Any]]
    not_computed: Dict[str, Any]
    meta: Dict[str, Any] = field(default_factory=dict)
    job_id: str = ""


def request_body(image_id: str, classes: Optional[Sequence[Union[str, int]]] = None,
                 everything: bool = False, engine: str = "vista3d") -> Dict[str, Any]:
    """The JSON body of ``POST /api/segment/auto``; ValueError unless exactly one of
    ``classes`` / ``everything`` is given."""
    if everything == bool(classes):
        raise ValueError("give either classes (names or ids) or everything=True")
    body: Dict[str, Any] = {"engine": engine, "image_id": image_id}
    if everything:
        body["everything"] = True
    else:
        body["classes"] = [c if isinstance(c, int) else str(c) for c in classes]  # type: ignore[union-attr]
    return body


def segment_auto(client, array: np.ndarray, ijk_to_ras, classes: Optional[Sequence[Union[str, int]]] = None,
                 everything: bool = False, engine: str = "vista3d", modality: str = "CT",
                 on_progress: Optional[Callable[[Dict[str, Any]], None]] = None,
                 cancel_event: Optional[threading.Event] = None,
                 timeout_s: Optional[float] = None, poll_s: float = 0.5) -> AutoResult:
    """Upload the image (skipped when the server has it), run the job and download the labels."""
    image_id = client.upload_image(array, ijk_to_ras, modality)
    status = client.submit_job(protocol.PATH_SEGMENT_AUTO, request_body(image_id, classes, everything, engine))
    job_id = status["job_id"]
    final = client.wait_job(job_id, on_progress=on_progress, cancel_event=cancel_event,
                            poll_s=poll_s, timeout_s=timeout_s)
    labels, meta = client.job_array(job_id, "labels")
    dictionary = {int(k): v for k, v in meta.get("labels", {}).items()}
    return AutoResult(labels, dictionary, meta.get("not_computed", {}), final.get("result") or {}, job_id)


def class_catalogue(client, engine: str = "vista3d") -> List[Dict[str, Any]]:
    """The engine's classes (id, name, group, color, auto, everything, special, parts)."""
    with client._lock:
        response = client._request("GET", f"{protocol.PATH_SEGMENT_AUTO_CLASSES}?engine={quote(engine)}",
                                   session=False)
    return response.json()["classes"]
