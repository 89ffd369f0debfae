"""Interactions and segment operations. Every change answers with a mask message holding
only the changed bounding box; stage timings travel in the standard Server-Timing header."""

from __future__ import annotations

import time
from typing import Callable, Dict, Optional, Tuple

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from slicerfm_client import protocol, wire
from slicerfm_client.geometry import bbox_shape

from ..deps import API_DEPENDENCIES, current_session, get_state
from .. import propagation
from ..errors import DomainError, EngineError, corrupted, invalid
from ..interaction import parse_prompt, run_interaction
from ..segments import Change, SegmentSet
from ..sessions import Session
from ..state import ServerState
from .bodies import json_body, read_limited

router = APIRouter(dependencies=API_DEPENDENCIES)

MAX_SEED_BYTES = 1 << 30


def _segments(session: Session) -> SegmentSet:
    if session.segments is None:
        raise DomainError(protocol.ERROR_NO_IMAGE,
                          "no image is attached to this session; upload and attach an image first")
    return session.segments


def _server_timing(timings: Dict[str, float]) -> str:
    return ", ".join(f"{name};dur={ms:.3f}" for name, ms in timings.items())


def _mask_response(change: Change, segments: SegmentSet, timings: Dict[str, float],
                   started: float, extra: Optional[dict] = None) -> Response:
    """Encode ``change`` as a mask message (``extra`` added to its meta); adds the encode
    and server-total timings."""
    start = time.perf_counter()
    meta = {**segments.change_meta(change), **(extra or {})}
    body = wire.encode(change.values.view("uint8"), meta)
    timings["encode"] = (time.perf_counter() - start) * 1000.0
    timings["server"] = (time.perf_counter() - started) * 1000.0
    return Response(body, media_type=protocol.MEDIA_TYPE_MESSAGE,
                    headers={"Server-Timing": _server_timing(timings)})


def _segment_name(body: dict) -> str:
    name = body.get("segment")
    if not isinstance(name, str) or not name:
        raise invalid("the request needs 'segment': the segment's name")
    return name


async def _locked_op(session: Session, work: Callable[[], Tuple[Change, Dict[str, float]]],
                     started: float, timings: Dict[str, float]) -> Response:
    def run():
        with session.lock:
            segments = _segments(session)
            change, more = work()
            timings.update(more)
            return _mask_response(change, segments, timings, started)

    return await run_in_threadpool(run)


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


@router.post(protocol.PATH_INTERACT)
async def interact(request: Request, session: Session = Depends(current_session),
                   state: ServerState = Depends(get_state)) -> Response:
    """One prompt on one segment: {"segment", "engine", "prompt": {"kind", "positive",
    "point_kji" | "box_kji"}, "label"?, "slice_axis"?, "propagate"?, "max_slices"?}. Creates
    the segment on first use. ``label`` (a class name or id) tells class-aware engines
    (vista3d) which class the points are on. Slice engines (medsam, sam) answer the prompted
    slice and start a propagation job, whose status is the answer's meta ``propagation``."""
    started = time.perf_counter()
    body = await json_body(request)
    name = _segment_name(body)
    engine = str(body.get("engine", "classic"))
    raw_prompt = body.get("prompt")
    if not isinstance(raw_prompt, dict):
        raise invalid("the request needs 'prompt': {kind, positive, point_kji | box_kji}")
    options = _interaction_options(body)
    timings = {"decode": (time.perf_counter() - started) * 1000.0}

    def run():
        with session.lock:
            segments = _segments(session)
            image = state.images.get(session.image_id)
            prompt = parse_prompt(raw_prompt, image.array.shape)
            change, more = run_interaction(state, image, segments, name, engine, prompt, options)
            timings.update(more)
            try:
                job = propagation.start(state, session, segments, name, engine, image, options)
            except DomainError as error:  # e.g. server_full: the slice stands, its propagation could not start
                job, extra = None, {"propagation_error": {"error": error.code, "message": error.message}}
            except EngineError as error:
                job, extra = None, {"propagation_error": {"error": protocol.ERROR_ENGINE_FAILED, "message": str(error)}}
            else:
                extra = {} if job is None else {"propagation": job}
            return _mask_response(change, segments, timings, started, extra)

    return await run_in_threadpool(run)


def _simple_op(method_name: str, create: bool = False):
    async def endpoint(request: Request, session: Session = Depends(current_session)) -> Response:
        started = time.perf_counter()
        body = await json_body(request)
        name = _segment_name(body)
        timings = {"decode": (time.perf_counter() - started) * 1000.0}

        def work():
            segments = _segments(session)
            start = time.perf_counter()
            change = getattr(segments, method_name)(segments.get(name))
            return change, {"commit": (time.perf_counter() - start) * 1000.0}

        return await _locked_op(session, work, started, timings)

    endpoint.__name__ = f"segment_{method_name}"
    return endpoint


router.post(protocol.PATH_UNDO, summary="Undo the last step of a segment")(_simple_op("undo"))
router.post(protocol.PATH_REDO, summary="Redo the last undone step of a segment")(_simple_op("redo"))
router.post(protocol.PATH_RESET, summary="Empty a segment and forget its prompts (undoable)")(_simple_op("reset"))


@router.post(protocol.PATH_SEED)
async def seed(request: Request, session: Session = Depends(current_session)) -> Response:
    """Replace a segment with a mask message (uint8 0/1) whose meta gives "segment" and
    "bbox_kji"; used to re-seed a segment from the client's copy after a reconnect."""
    started = time.perf_counter()
    raw = await read_limited(request, MAX_SEED_BYTES, "a seed mask message")
    try:
        header, mask = await run_in_threadpool(wire.decode, raw)
    except wire.WireFormatError as error:
        raise corrupted(f"the seed mask is not a valid mask message: {error}") from error
    name = _segment_name(header.meta)
    box = header.meta.get("bbox_kji")
    timings = {"decode": (time.perf_counter() - started) * 1000.0}

    def work():
        segments = _segments(session)
        try:
            bbox = (tuple(int(v) for v in box[0]), tuple(int(v) for v in box[1]))
        except (TypeError, ValueError, IndexError) as error:
            raise invalid("the seed needs meta.bbox_kji = [[k0, j0, i0], [k1, j1, i1]]") from error
        if any(a < 0 or b > n or a > b for a, b, n in zip(bbox[0], bbox[1], segments.shape)):
            raise invalid(f"seed box {box} lies outside the image of shape {list(segments.shape)}")
        if tuple(mask.shape) != bbox_shape(bbox):
            raise invalid(f"seed mask shape {list(mask.shape)} does not match its box {box}")
        start = time.perf_counter()
        change = segments.seed(segments.get_or_create(name), bbox, mask.astype(bool))
        return change, {"commit": (time.perf_counter() - start) * 1000.0}

    return await _locked_op(session, work, started, timings)


@router.post(protocol.PATH_DELETE)
async def delete_segment(request: Request, session: Session = Depends(current_session)) -> dict:
    name = _segment_name(await json_body(request))

    def run():
        with session.lock:
            _segments(session).delete(name)
        return {"deleted": name}

    return await run_in_threadpool(run)


@router.post(protocol.PATH_LOCK)
async def lock_segment(request: Request, session: Session = Depends(current_session)) -> dict:
    """{"segment", "locked": bool}: a locked segment's voxels cannot be taken by any other
    segment's interaction, and the segment itself cannot be changed until unlocked."""
    body = await json_body(request)
    name = _segment_name(body)
    locked = body.get("locked", True)
    if not isinstance(locked, bool):
        raise invalid("'locked' must be true or false")

    def run():
        with session.lock:
            segment = _segments(session).get_or_create(name)
            segment.locked = locked
            return segment.describe()

    return await run_in_threadpool(run)


@router.get(protocol.PATH_SEGMENTS)
def list_segments(session: Session = Depends(current_session)) -> dict:
    with session.lock:
        return {"segments": [s.describe() for s in session.segments or []]}


@router.get(protocol.PATH_LABELMAP)
def labelmap(session: Session = Depends(current_session)) -> Response:
    """All segments as one label map message (uint8, or uint16 past 255 segments); meta
    "segments" lists name, label and locked."""
    with session.lock:
        labels, described = _segments(session).labelmap()
    return Response(wire.encode(labels, {"segments": described}), media_type=protocol.MEDIA_TYPE_MESSAGE)
