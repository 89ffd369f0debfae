"""Automatic segmentation requests as background jobs: validation, the job's work, its results.

A request names an engine that declares the automatic seam
(:class:`slicerfm_backend.engines.base.AutoSegmentation`), an uploaded image and either
``classes`` (names or ids) or ``everything``. :func:`parse_request` checks what can be
checked before queuing (``invalid``, ``image_not_found``, ``engine_unavailable`` with a
message the user can act on); :func:`submit` loads the engine once and queues the job. The
job reports the engine's stages (e.g. ``windows`` done/total), can be cancelled, and leaves
the array ``labels`` (uint8 class ids on the image's grid) whose meta holds the label
dictionary ``labels`` ({id: {name, color, group}}) and ``not_computed``; the job's result
holds the summary (classes run, not computed, device, timings, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List

from ..engines.base import AutoSegmentation, ImageData
from ..errors import invalid
from ..job_work import EngineWork

BODY_KEYS = {"engine", "image_id", "classes", "everything"}
RESULT_KEYS = ("classes", "not_computed", "device", "precision", "windows", "class_groups", "timings_s")


@dataclass
class ParsedRequest:
    engine: str
    image: ImageData
    class_ids: List[int]


def auto_engine_class(state, name: Any):
    """The class of the served automatic engine ``name`` (no loading); ``invalid`` for a
    missing name or an engine without the automatic seam, ``engine_unavailable`` for one not
    served here."""
    if not isinstance(name, str) or not name:
        raise invalid("the request needs 'engine': the name of an engine with automatic segmentation "
                      f"({', '.join(automatic_engines(state)) or 'none served here'})")
    cls = state.engines.engine_class(name)
    if not issubclass(cls, AutoSegmentation):
        raise invalid(f"engine {name!r} has no automatic segmentation; engines with it here: "
                      f"{', '.join(automatic_engines(state)) or 'none'}")
    return cls


def automatic_engines(state) -> List[str]:
    """The served engines that declare the automatic seam."""
    return [name for name in state.engines.names
            if issubclass(state.engines.family.engine_class(name), AutoSegmentation)]


def class_list(state, engine: str) -> Dict[str, Any]:
    """``{"engine", "classes": [...]}`` for ``GET /api/segment/auto/classes`` (no loading)."""
    return {"engine": engine, "classes": auto_engine_class(state, engine).classes()}


def parse_request(state, body: Any, identity=None) -> ParsedRequest:
    """Validate a ``POST /api/segment/auto`` body against the served engines and the store."""
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    extra = set(body) - BODY_KEYS
    if extra:
        raise invalid(f"unknown field(s) {', '.join(sorted(extra))}; allowed: {', '.join(sorted(BODY_KEYS))}")
    cls = auto_engine_class(state, body.get("engine"))
    everything, classes = body.get("everything", False), body.get("classes")
    if not isinstance(everything, bool):
        raise invalid("'everything' must be true or false")
    if everything and classes:
        raise invalid("give either 'classes' or 'everything', not both")
    if not everything and (not isinstance(classes, list) or not classes):
        raise invalid("the request needs 'classes': a non-empty list of class names or ids, "
                      "or 'everything': true")
    try:
        class_ids = cls.class_ids(None if everything else classes, everything)
    except ValueError as error:
        raise invalid(str(error)) from error
    image_id = body.get("image_id")
    if not isinstance(image_id, str) or not image_id:
        raise invalid("the request needs 'image_id': the id of an uploaded image")
    image = state.images.get(image_id, identity).as_engine_input()  # image_not_found when not held (for them)
    return ParsedRequest(body["engine"], image, class_ids)


def run(engine: AutoSegmentation, parsed: ParsedRequest, ctx) -> Dict[str, Any]:
    """The job's work: segment, store ``labels`` with its meta, return the summary."""
    labels, meta = engine.segment_auto(parsed.image, parsed.class_ids, ctx.progress, ctx.device_step)
    ctx.add_array("labels", labels, meta)
    return {key: meta[key] for key in RESULT_KEYS if key in meta}


def submit(state, body: Any, identity=None):
    """Validate ``body``, load the engine (once) and queue the job for ``identity``; returns
    the job. Its ``labels`` array (one byte a voxel) is reserved in the job-results budget."""
    parsed = parse_request(state, body, identity)
    engine = state.engines.get(parsed.engine)  # engine_unavailable without weights
    owner = {} if identity is None else {"owner": identity.owner}
    work = EngineWork("segmentation", parsed.engine, run, parsed, state.engines)
    return state.jobs.submit("segment-auto", work, engine.device,
                             image_ids=[parsed.image.image_id],
                             estimate_s=engine.estimate_auto_s(parsed.image, parsed.class_ids),
                             result_bytes=int(parsed.image.array.size), **owner)
