"""Interactions and segment operations. Every change answers with a mask message holding
only the changed bounding box; stage timings travel in the standard Server-Timing header
(durations as ``dur``; the queue position on arrival and engine counts as ``desc``)."""

from __future__ import annotations

import time
from typing import Callable, Dict, Optional

import numpy as np
from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from slicerfm_client import protocol, wire
from slicerfm_client.geometry import bbox_shape

from ..auth.identity import Identity
from ..deps import API_DEPENDENCIES, authenticate, current_session, get_state
from ..errors import DomainError, EngineError, corrupted, invalid
from .. import propagation
from ..interaction import Timings, parse_prompt, run_interaction
from ..segments import check_segment_name
from ..session import Outcome, Session
from ..state import ServerState
from .bodies import json_body, json_schema_body, read_limited

router = APIRouter(dependencies=API_DEPENDENCIES)

MAX_SEED_BYTES = 1 << 30
SEED_OVERHEAD_BYTES = 1 << 20

_POINT = {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3}
SEGMENT_SCHEMA = {"type": "object", "required": ["segment"],
                  "properties": {"segment": {"type": "string", "minLength": 1, "maxLength": 200}}}
INTERACT_SCHEMA = {"type": "object", "required": ["segment", "prompt"], "properties": {
    "segment": {"type": "string", "minLength": 1, "maxLength": 200},
    "engine": {"type": "string"},
    "label": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    "slice_axis": {"type": "integer", "enum": [0, 1, 2]}, "propagate": {"type": "boolean"},
    "max_slices": {"type": "integer", "minimum": 1},
    "prompt": {"type": "object", "required": ["kind"], "properties": {
        "kind": {"type": "string", "enum": ["point", "box"]}, "positive": {"type": "boolean"},
        "point_kji": _POINT, "box_kji": {"type": "array", "items": _POINT, "minItems": 2, "maxItems": 2}}}}}
LOCK_SCHEMA = {"type": "object", "required": ["segment"], "properties": {
    "segment": {"type": "string", "minLength": 1, "maxLength": 200}, "locked": {"type": "boolean"}}}
MESSAGE_BODY = {"requestBody": {"required": True, "content": {
    protocol.MEDIA_TYPE_MESSAGE: {"schema": {"type": "string", "format": "binary"}}}}}


def server_timing(timings: Timings) -> str:
    """``name;dur=ms`` for durations, ``name;desc="text"`` for the other figures."""
    entries = [f"{name};dur={ms:.3f}" for name, ms in timings.ms.items()]
    entries += [f'{name};desc="{text}"' for name, text in timings.notes.items()]
    return ", ".join(entries)


def _mask_response(outcome: Outcome, timings: Timings, started: float, extra: Optional[dict] = None) -> Response:
    """Encode a change as a mask message (``extra`` added to its meta); adds the encode and
    server-total timings."""
    start = time.perf_counter()
    change = outcome.change
    meta = {
        "segment": change.segment,
        "bbox_kji": None if change.bbox is None else [list(change.bbox[0]), list(change.bbox[1])],
        "voxels": outcome.voxels, "can_undo": outcome.can_undo, "can_redo": outcome.can_redo,
        **(extra or {}),
    }
    body = wire.encode(change.values.view("uint8"), meta)
    timings.ms["encode"] = (time.perf_counter() - start) * 1000.0
    timings.ms["server"] = (time.perf_counter() - started) * 1000.0
    return Response(body, media_type=protocol.MEDIA_TYPE_MESSAGE,
                    headers={"Server-Timing": server_timing(timings)})


def _segment_name(body: dict) -> str:
    name = body.get("segment")
    if name is None:
        raise invalid("the request needs 'segment': the segment's name")
    return check_segment_name(name)


async def _respond(run: Callable[[], Outcome], started: float, timings: Timings) -> Response:
    def work():
        outcome = run()
        return _mask_response(outcome, timings, started)

    return await run_in_threadpool(work)


def _interaction_options(body: dict) -> dict:
    """The engine-specific fields of an interaction, checked: ``label`` (class-aware engines),
    ``slice_axis``, ``propagate`` and ``max_slices`` (slice engines)."""
    options = {}
    label = body.get("label")
    if label is not None:
        if isinstance(label, bool) or not isinstance(label, (str, int)):
            raise invalid("'label' must be a class name or id")
        options["label"] = label
    axis = body.get("slice_axis")
    if axis is not None:
        if isinstance(axis, bool) or axis not in (0, 1, 2):
            raise invalid("'slice_axis' must be 0 (k), 1 (j) or 2 (i): the voxel axis the slice view shows")
        options["slice_axis"] = axis
    propagate = body.get("propagate")
    if propagate is not None:
        if not isinstance(propagate, bool):
            raise invalid("'propagate' must be true or false")
        options["propagate"] = propagate
    max_slices = body.get("max_slices")
    if max_slices is not None:
        if isinstance(max_slices, bool) or not isinstance(max_slices, int) or max_slices < 1:
            raise invalid("'max_slices' must be a whole number >= 1 (slices per direction)")
        options["max_slices"] = max_slices
    return options


@router.post(protocol.PATH_INTERACT, openapi_extra=json_schema_body(INTERACT_SCHEMA))
async def interact(request: Request, session: Session = Depends(current_session),
                   identity: Identity = Depends(authenticate),
                   state: ServerState = Depends(get_state)) -> Response:
    """One prompt on one segment: {"segment", "engine", "prompt": {"kind", "positive",
    "point_kji" | "box_kji"}, "label"?, "slice_axis"?, "propagate"?, "max_slices"?}. Creates
    the segment on first use. ``label`` (a class name or id) tells class-aware engines
    (vista3d) which class the points are on. Slice engines (medsam, sam) answer the prompted
    slice and start a propagation job, whose status is the answer's meta ``propagation``."""
    started = time.perf_counter()
    body = await json_body(request)
    name = _segment_name(body)
    engine = body.get("engine", "classic")
    if not isinstance(engine, str) or not engine:
        raise invalid("'engine' must be the name of a served engine")
    raw_prompt = body.get("prompt")
    if not isinstance(raw_prompt, dict):
        raise invalid("the request needs 'prompt': {kind, positive, point_kji | box_kji}")
    options = _interaction_options(body)
    timings = Timings({"decode": (time.perf_counter() - started) * 1000.0})
    extra: dict = {}

    def run_on(segments):
        image = state.images.get(session.image_id, identity)
        prompt = parse_prompt(raw_prompt, image.array.shape)
        change, more = run_interaction(state, image, segments, name, engine, prompt, options, identity.owner)
        timings.ms.update(more.ms)
        timings.notes.update(more.notes)
        try:  # a slice engine's answer is the prompted slice; its propagation runs as a job
            job = propagation.start(state, session, segments, name, engine, image, options, identity.owner)
        except DomainError as error:  # e.g. server_full: the slice stands, its propagation could not start
            extra["propagation_error"] = {"error": error.code, "message": error.message}
        except EngineError as error:
            extra["propagation_error"] = {"error": protocol.ERROR_ENGINE_FAILED, "message": str(error)}
        else:
            if job is not None:
                extra["propagation"] = job
        return change, timings.ms

    def work():
        outcome, _ = session.interact(run_on)
        return _mask_response(outcome, timings, started, extra)

    response = await run_in_threadpool(work)
    state.audit.event(identity.name, "segment.interact", session=session.id, engine=engine,
                      ms=round(timings.ms.get("server", 0.0), 1))
    return response


def _simple_op(method_name: str):
    async def endpoint(request: Request, session: Session = Depends(current_session),
                       identity: Identity = Depends(authenticate),
                       state: ServerState = Depends(get_state)) -> Response:
        started = time.perf_counter()
        name = _segment_name(await json_body(request))
        timings = Timings({"decode": (time.perf_counter() - started) * 1000.0})

        def run() -> Outcome:
            start = time.perf_counter()
            outcome = getattr(session, method_name)(name)
            timings.ms["commit"] = (time.perf_counter() - start) * 1000.0
            return outcome

        response = await _respond(run, started, timings)
        state.audit.event(identity.name, f"segment.{method_name}", session=session.id)
        return response

    endpoint.__name__ = f"segment_{method_name}"
    return endpoint


for _path, _method, _summary in ((protocol.PATH_UNDO, "undo", "Undo the last step of a segment"),
                                 (protocol.PATH_REDO, "redo", "Redo the last undone step of a segment"),
                                 (protocol.PATH_RESET, "reset", "Empty a segment and forget its prompts (undoable)")):
    router.post(_path, summary=_summary, openapi_extra=json_schema_body(SEGMENT_SCHEMA))(_simple_op(_method))


def _int_box(box) -> Optional[tuple]:
    """``((k0, j0, i0), (k1, j1, i1))`` from JSON integers only (not floats, not booleans)."""
    if not (isinstance(box, list) and len(box) == 2 and all(isinstance(c, list) and len(c) == 3 for c in box)):
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) for c in box for v in c):
        return None
    return tuple(box[0]), tuple(box[1])


def seed_decoder(raw: bytes) -> Callable[[tuple], tuple]:
    """``decode(image shape) -> (name, bbox, mask)`` for a seed message: its name, box and
    shape are checked against the image *before* the mask is allocated (422/400 otherwise)."""
    def decode(shape):
        found: Dict[str, object] = {}

        def on_header(header: wire.Header) -> None:
            found["name"] = _segment_name(header.meta)
            box = _int_box(header.meta.get("bbox_kji"))
            if box is None:
                raise invalid("the seed needs meta.bbox_kji = [[k0, j0, i0], [k1, j1, i1]] (integers)")
            if any(a < 0 or b > n or a > b for a, b, n in zip(box[0], box[1], shape)):
                raise invalid(f"the seed box {[list(box[0]), list(box[1])]} lies outside the image of "
                              f"shape {list(shape)}")
            if tuple(header.shape) != bbox_shape(box):
                raise invalid(f"the seed mask's shape (of {len(header.shape)} dimensions) does not match "
                              f"its box {[list(box[0]), list(box[1])]}")
            found["box"] = box

        problem = None
        try:
            _, mask = wire.decode(raw, on_header=on_header)
        except wire.WireFormatError as error:
            problem = str(error)
        if problem is not None:  # raised outside the handler: no traceback keeps the decoder alive
            raise corrupted(f"the seed mask is not a valid mask message: {problem}")
        return found["name"], found["box"], np.asarray(mask).astype(bool)

    return decode


@router.post(protocol.PATH_SEED, openapi_extra=MESSAGE_BODY)
async def seed(request: Request, session: Session = Depends(current_session),
               identity: Identity = Depends(authenticate), state: ServerState = Depends(get_state)) -> Response:
    """Replace a segment with a mask message (uint8 0/1) whose meta gives "segment" and
    "bbox_kji"; used to re-seed a segment from the client's copy after a reconnect."""
    started = time.perf_counter()
    limit = MAX_SEED_BYTES
    segments = session.segments
    if segments is not None:  # a mask is never larger than its image (raw, 8 bytes a voxel)
        limit = min(limit, int(np.prod(segments.shape, dtype=np.int64)) * 8 + SEED_OVERHEAD_BYTES)
    decode = seed_decoder(await read_limited(request, limit, "a seed mask message"))
    timings = Timings({"decode": (time.perf_counter() - started) * 1000.0})

    def run() -> Outcome:
        start = time.perf_counter()
        outcome = session.seed(decode)
        timings.ms["commit"] = (time.perf_counter() - start) * 1000.0
        return outcome

    response = await _respond(run, started, timings)
    state.audit.event(identity.name, "segment.seed", session=session.id)
    return response


@router.post(protocol.PATH_DELETE, openapi_extra=json_schema_body(SEGMENT_SCHEMA))
async def delete_segment(request: Request, session: Session = Depends(current_session),
                         identity: Identity = Depends(authenticate), state: ServerState = Depends(get_state)) -> dict:
    name = _segment_name(await json_body(request))
    await run_in_threadpool(session.delete, name)
    state.audit.event(identity.name, "segment.delete", session=session.id)
    return {"deleted": name}


@router.post(protocol.PATH_LOCK, openapi_extra=json_schema_body(LOCK_SCHEMA))
async def lock_segment(request: Request, session: Session = Depends(current_session)) -> dict:
    """{"segment", "locked": bool}: a locked segment's voxels cannot be taken by any other
    segment's interaction, and the segment itself cannot be changed until unlocked."""
    body = await json_body(request)
    name = _segment_name(body)
    locked = body.get("locked", True)
    if not isinstance(locked, bool):
        raise invalid("'locked' must be true or false")
    return await run_in_threadpool(session.lock_segment, name, locked)


@router.get(protocol.PATH_SEGMENTS)
async def list_segments(session: Session = Depends(current_session)) -> dict:
    return {"segments": await run_in_threadpool(session.list_segments)}


@router.get(protocol.PATH_LABELMAP)
async def labelmap(session: Session = Depends(current_session)) -> Response:
    """All segments as one label map message (uint8, or uint16 past 255 segments); meta
    "segments" lists name, label and locked."""
    labels, described = await run_in_threadpool(session.labelmap)
    body = await run_in_threadpool(wire.encode, labels, {"segments": described})
    return Response(body, media_type=protocol.MEDIA_TYPE_MESSAGE)
