"""One interaction: validate the prompt, run the engine, commit the result through the locks.

The engine only proposes values inside a bounding box; :meth:`SegmentSet.commit` applies
segment locks and computes the changed box, so no engine can touch a locked segment. The
engine runs in a slot of its device's scheduler (:mod:`.scheduler`: clicks before job
steps, round-robin between users); how long the click waited for it and how many were
ahead of it come back with the stage timings.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, Optional, Tuple

import numpy as np

from slicerfm_client import protocol
from slicerfm_client.geometry import bbox_shape, clip_bbox

from .device_memory import free_device_memory, is_out_of_memory, out_of_memory
from .engines.base import Prompt, SegmentationRequest
from .errors import DomainError, EngineError, PromptError, invalid
from .imaging import StoredImage, check_prompt_inside
from .scheduler import INTERACTIVE
from .segments import Change, SegmentSet

if TYPE_CHECKING:
    from .state import ServerState

log = logging.getLogger(__name__)


@dataclass
class Timings:
    """Stage durations in ms (``Server-Timing`` ``dur``) and other figures (its ``desc``:
    the queue position on arrival, the engine's counts)."""

    ms: Dict[str, float] = field(default_factory=dict)
    notes: Dict[str, str] = field(default_factory=dict)


def parse_prompt(raw: dict, shape) -> Prompt:
    """A Prompt from its JSON form, checked against the image ``shape`` (K, J, I): ``kind``
    a known string, ``positive`` a JSON boolean when given, coordinates JSON numbers."""
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in protocol.PROMPT_KINDS:
        raise invalid(f"unknown prompt kind {kind!r}; use one of {', '.join(protocol.PROMPT_KINDS)}")
    positive = raw.get("positive", True)
    if not isinstance(positive, bool):
        raise invalid(f"'positive' must be true or false (a JSON boolean), got {positive!r}")
    if kind == protocol.PROMPT_POINT:
        point = raw.get("point_kji")
        check_prompt_inside(point, shape)
        return Prompt(kind, positive, point_kji=tuple(float(v) for v in point))
    box = raw.get("box_kji")
    if not isinstance(box, (list, tuple)) or len(box) != 2:
        raise invalid("a box needs box_kji = [[k0, j0, i0], [k1, j1, i1]]")
    for corner in box:
        check_prompt_inside(corner, shape)
    a, b = (tuple(float(v) for v in corner) for corner in box)
    return Prompt(kind, True, box_kji=(tuple(map(min, a, b)), tuple(map(max, a, b))))


def _run_engine(state: "ServerState", engine, engine_name: str, request: SegmentationRequest):
    try:
        return engine.segment(request)
    except PromptError as error:
        raise invalid(f"engine {engine_name!r} cannot use this prompt: {error}") from error
    except EngineError as error:
        raise DomainError(protocol.ERROR_ENGINE_FAILED,
                          f"engine {engine_name!r} failed: {error}. Your segments are unchanged.") from error
    except MemoryError as error:
        raise DomainError(protocol.ERROR_ENGINE_FAILED,
                          f"engine {engine_name!r} ran out of memory on this request; your "
                          "segments are unchanged. Try a smaller region or another engine.") from error
    except Exception as error:  # an engine bug must not take the session down
        if is_out_of_memory(error):
            free_device_memory(state.caches)
            raise out_of_memory(engine_name, engine.device) from None
        log.exception("engine %s failed", engine_name)
        raise DomainError(protocol.ERROR_ENGINE_FAILED,
                          f"engine {engine_name!r} failed unexpectedly ({type(error).__name__}: "
                          f"{error}). Your segments are unchanged.") from error


def run_interaction(state: "ServerState", image: StoredImage, segments: SegmentSet,
                    segment_name: str, engine_name: str, prompt: Prompt,
                    options: Optional[dict] = None, user: str = "") -> Tuple[Change, Timings]:
    """Apply one prompt to a segment with the served engine ``engine_name`` (in a slot of
    its device's scheduler for ``user``, with its per-image cache); returns the change and
    the timings. ``options`` are engine-specific fields of the request
    (SegmentationRequest.options)."""
    timings = Timings()
    engine = state.engines.get(engine_name)
    if prompt.kind not in engine.capabilities.prompt_kinds:
        raise invalid(f"engine {engine_name!r} does not take {prompt.kind} prompts "
                      f"(it takes {', '.join(engine.capabilities.prompt_kinds)})")
    segment = segments.get_or_create(segment_name)
    segments.require_unlocked(segment)
    prompts = segment.prompts + [prompt]
    request = SegmentationRequest(
        image=image.as_engine_input(), prompts=prompts, previous=segment.mask,
        cache=state.caches.cache_for(engine_name, image.image_id), options=dict(options or {}),
    )
    with state.devices(engine.device).slot(user, INTERACTIVE) as ticket:
        timings.ms["queue"] = ticket.wait_s * 1000.0
        timings.notes["queue.ahead"] = str(ticket.ahead)
        start = time.perf_counter()
        result = _run_engine(state, engine, engine_name, request)
        timings.ms["engine"] = (time.perf_counter() - start) * 1000.0
    for stage, ms in result.timings_ms.items():
        if isinstance(ms, (int, float)) and math.isfinite(ms):
            timings.ms[f"engine.{stage}"] = float(ms)
    for name, value in getattr(result, "counts", {}).items():
        timings.notes[f"engine.{name}"] = f"{value:g}"
    state.metrics.observe_engine(engine_name, timings.ms)
    start = time.perf_counter()
    change = commit_result(segments, segment, result, prompts, engine_name)
    timings.ms["commit"] = (time.perf_counter() - start) * 1000.0
    return change, timings


def commit_result(segments: SegmentSet, segment, result, prompts, engine_name: str) -> Change:
    """Check an engine's answer (a boolean mask of its box's shape), clip it to the image and
    commit it through the locks as one undo step; 500 ``engine_failed`` when malformed."""
    mask = np.asarray(result.mask)
    if mask.shape != bbox_shape(result.bbox) or mask.dtype != bool:
        raise DomainError(protocol.ERROR_ENGINE_FAILED,
                          f"engine {engine_name!r} returned a {mask.dtype} mask of shape {mask.shape} "
                          f"for a box of shape {bbox_shape(result.bbox)}; your segments are unchanged")
    clipped = clip_bbox(result.bbox, segments.shape)
    if clipped != tuple(map(tuple, result.bbox)):
        offset = [c - r for c, r in zip(clipped[0], result.bbox[0])]
        mask = mask[tuple(slice(o, o + s) for o, s in zip(offset, bbox_shape(clipped)))]
    return segments.commit(segment, clipped, mask, prompts)
