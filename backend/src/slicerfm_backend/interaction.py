"""One interaction: validate the prompt, run the engine, commit the result through the locks.

The engine only proposes values inside a bounding box; :meth:`SegmentSet.commit` applies
segment locks and computes the changed box, so no engine can touch a locked segment.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Dict, Optional, Tuple

import numpy as np

from slicerfm_client import protocol
from slicerfm_client.geometry import bbox_shape, clip_bbox

from .engines.base import Prompt, SegmentationRequest
from .errors import DomainError, EngineError, PromptError, invalid
from .imaging import StoredImage, check_prompt_inside
from .segments import Change, SegmentSet

if TYPE_CHECKING:
    from .state import ServerState

log = logging.getLogger(__name__)


def parse_prompt(raw: dict, shape) -> Prompt:
    """A Prompt from its JSON form, checked against the image ``shape`` (K, J, I)."""
    kind = raw.get("kind")
    if kind == protocol.PROMPT_POINT:
        point = raw.get("point_kji")
        check_prompt_inside(point, shape)
        return Prompt(kind, bool(raw.get("positive", True)), point_kji=tuple(float(v) for v in point))
    if kind == protocol.PROMPT_BOX:
        box = raw.get("box_kji")
        if not isinstance(box, (list, tuple)) or len(box) != 2:
            raise invalid("a box needs box_kji = [[k0, j0, i0], [k1, j1, i1]]")
        for corner in box:
            check_prompt_inside(corner, shape)
        a, b = (tuple(float(v) for v in corner) for corner in box)
        return Prompt(kind, True, box_kji=(tuple(map(min, a, b)), tuple(map(max, a, b))))
    raise invalid(f"unknown prompt kind {kind!r}; use one of {', '.join(protocol.PROMPT_KINDS)}")


def run_interaction(state: "ServerState", image: StoredImage, segments: SegmentSet,
                    segment_name: str, engine_name: str, prompt: Prompt,
                    options: Optional[dict] = None) -> Tuple[Change, Dict[str, float]]:
    """Apply one prompt to a segment with the served engine ``engine_name`` (on its
    device's lock, with its per-image cache); returns the change and the stage timings in ms.
    ``options`` are engine-specific fields of the request (SegmentationRequest.options)."""
    timings: Dict[str, float] = {}
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
    start = time.perf_counter()
    with state.devices(engine.device):
        timings["queue"] = (time.perf_counter() - start) * 1000.0
        start = time.perf_counter()
        try:
            result = engine.segment(request)
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
            log.exception("engine %s failed", engine_name)
            raise DomainError(protocol.ERROR_ENGINE_FAILED,
                              f"engine {engine_name!r} failed unexpectedly ({type(error).__name__}: "
                              f"{error}). Your segments are unchanged.") from error
        timings["engine"] = (time.perf_counter() - start) * 1000.0
    for stage, ms in result.timings_ms.items():
        timings[f"engine.{stage}"] = float(ms)
    start = time.perf_counter()
    change = commit_result(segments, segment, result, prompts, engine_name)
    timings["commit"] = (time.perf_counter() - start) * 1000.0
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
