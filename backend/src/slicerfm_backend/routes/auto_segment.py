"""Automatic segmentation as a background job (VISTA3D class prompts).

``POST /api/segment/auto`` with ``{"engine": "vista3d", "image_id", "classes": [names or
ids]}`` or ``{"engine", "image_id", "everything": true}`` answers 202 with the job's status.
The job reports ``windows`` done/total, can be cancelled (``DELETE /api/jobs/{id}``), and
leaves the array ``labels`` (uint8 class ids on the image's own grid) whose meta holds the
label dictionary ``labels`` ({id: {name, color, group}}) and ``not_computed``.
``GET /api/segment/auto/classes?engine=vista3d`` lists the classes for pickers.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from slicerfm_client import protocol

from ..deps import API_DEPENDENCIES, get_state
from ..errors import invalid
from ..state import ServerState
from .bodies import json_body

router = APIRouter(dependencies=API_DEPENDENCIES)


def _auto_engine(state: ServerState, name):
    if not isinstance(name, str) or not name:
        raise invalid("the request needs 'engine': the name of an engine with automatic "
                      "segmentation (vista3d)")
    engine = state.engines.get(name)
    if not getattr(engine, "supports_auto", False):
        raise invalid(f"engine {name!r} has no automatic segmentation; use vista3d")
    return engine


def parse_classes(body: dict):
    """Class ids (subclasses expanded) from ``classes`` or ``everything``; 422 when wrong."""
    from ..engines.vista3d import labels

    everything = body.get("everything", False)
    classes = body.get("classes")
    if not isinstance(everything, bool):
        raise invalid("'everything' must be true or false")
    if everything and classes:
        raise invalid("give either 'classes' or 'everything', not both")
    if everything:
        return list(labels.EVERYTHING)
    if not isinstance(classes, list) or not classes:
        raise invalid("the request needs 'classes': a non-empty list of class names or ids, "
                      "or 'everything': true")
    try:
        return labels.auto_classes(classes)
    except ValueError as error:
        raise invalid(str(error)) from error


@router.post(protocol.PATH_SEGMENT_AUTO, status_code=202)
async def segment_auto(request: Request, state: ServerState = Depends(get_state)):
    body = await json_body(request)
    class_ids = parse_classes(body)
    image_id = body.get("image_id")
    if not isinstance(image_id, str) or not image_id:
        raise invalid("the request needs 'image_id': the id of an uploaded image")
    image = state.images.get(image_id)  # 404 when unknown
    engine = await run_in_threadpool(_auto_engine, state, body.get("engine"))
    engine_input = image.as_engine_input()

    def work(ctx) -> dict:
        labels, meta = engine.segment_auto(engine_input, class_ids,
                                           progress=lambda stage, done=0, total=0: ctx.progress(stage, done, total),
                                           step=ctx.device_step)
        ctx.add_array("labels", labels, meta)
        return {key: meta[key] for key in ("classes", "not_computed", "device", "precision",
                                           "windows", "class_groups", "timings_s") if key in meta}

    job = state.jobs.submit("segment-auto", work, engine.device, image_ids=[image_id])
    return JSONResponse(state.jobs.describe(job), status_code=202)


@router.get(protocol.PATH_SEGMENT_AUTO_CLASSES)
async def auto_classes(engine: str = "vista3d", state: ServerState = Depends(get_state)) -> dict:
    """The classes of an automatic engine: ``{"engine", "classes": [{id, name, group, color,
    auto, everything, special, parts}]}`` (no model is loaded)."""
    from ..engines.vista3d import labels

    if not getattr(state.engines.engine_class(engine), "supports_auto", False):
        raise invalid(f"engine {engine!r} has no automatic segmentation")
    return {"engine": engine, "classes": labels.catalogue()}
