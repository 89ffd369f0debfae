"""Registration requests as background jobs: validation, the job's work, its results.

A request names two uploaded images (content ids in the image store), their modalities,
optional masks (uploaded label maps on their image's grid, with an optional label list),
the engine and its options. :func:`parse_request` checks everything that can be checked
before queuing (422/404/413 with a message the user can act on); :func:`submit` queues the
job. The job leaves the array ``displacement`` (float32 ``(K, J, I, 3)``, RAS mm, on the
fixed grid or the engine's native grid; meta ``ijk_to_ras``, ``convention``) and, when
asked, ``warped`` (the moving image resampled onto the field's grid, its own dtype; meta
``ijk_to_ras``). The result meta holds ``neg_jacobian_fraction``, ``runtime_s``,
``timings_s`` and ``details``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict

import numpy as np

from slicerfm_client import protocol

from ..errors import invalid, too_large
from ..imaging import StoredImage
from ..job_work import EngineWork
from .base import RegistrationImage, RegistrationRequest

CONVENTION = ("fixed point x (RAS mm) maps to moving point x + d(x); vectors in RAS mm on the "
              "grid given by ijk_to_ras (i, j, k, 1) -> RAS")
OUTPUT_GRIDS = ("fixed", "native")
MIN_AXIS = 4
MAX_VOXELS = 1 << 27  # per image: a 512³ pair needs ~1.6 GB for its float32 field
GEOMETRY_TOLERANCE_MM = 1e-3
BODY_KEYS = {"engine", "fixed", "moving", "io_steps", "similarity", "affine_prealign",
             "output_grid", "want_warped"}
IMAGE_KEYS = {"image_id", "modality", "mask_id", "mask_labels"}


@dataclass
class ParsedRequest:
    engine: str
    request: RegistrationRequest
    image_ids: tuple
    want_warped: bool


def _flag(body: dict, key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise invalid(f"'{key}' must be true or false, got {value!r}")
    return value


def _image(state, role: str, spec, identity=None) -> tuple:
    """``(RegistrationImage, ids used)`` for the ``fixed``/``moving`` part of a request."""
    if not isinstance(spec, dict) or not isinstance(spec.get("image_id"), str):
        raise invalid(f"'{role}' must be an object with 'image_id' (the id of an uploaded image)")
    extra = set(spec) - IMAGE_KEYS
    if extra:
        raise invalid(f"unknown field(s) in '{role}': {', '.join(sorted(extra))}; "
                      f"allowed: {', '.join(sorted(IMAGE_KEYS))}")
    stored: StoredImage = state.images.get(spec["image_id"], identity)  # 404 when not held (for this user)
    check_image(role, stored.array)
    try:
        modality = protocol.modality(spec.get("modality", stored.modality))
    except ValueError as error:
        raise invalid(f"the {role} image: {error}") from None
    ids = [stored.image_id]
    mask = None
    if spec.get("mask_id") is not None:
        if not isinstance(spec["mask_id"], str):
            raise invalid(f"'{role}.mask_id' must be the id of an uploaded label map")
        mask_image: StoredImage = state.images.get(spec["mask_id"], identity)
        mask = mask_from_labels(role, stored.array.shape, stored.ijk_to_ras, mask_image.array,
                                mask_image.ijk_to_ras, spec.get("mask_labels"))
        ids.append(mask_image.image_id)
    elif spec.get("mask_labels") is not None:
        raise invalid(f"'{role}.mask_labels' needs '{role}.mask_id'")
    image = RegistrationImage(stored.array, np.asarray(stored.ijk_to_ras, dtype=np.float64),
                              modality, mask)
    return image, ids


def check_image(role: str, array: np.ndarray) -> None:
    """422 for degenerate or constant images, 413 for images too large to register."""
    if array.ndim != 3 or min(array.shape) < MIN_AXIS:
        raise invalid(f"the {role} image has shape {list(array.shape)}; registration needs at "
                      f"least {MIN_AXIS} voxels along every axis")
    if array.size > MAX_VOXELS:
        raise too_large(f"the {role} image has {array.size:,} voxels; registration takes at most "
                        f"{MAX_VOXELS:,} per image: resample it to a coarser grid first")
    if array.min() == array.max():
        raise invalid(f"the {role} image is empty: every voxel has the value {array.flat[0]}")


def mask_from_labels(role: str, image_shape, image_ijk_to_ras, labels_array: np.ndarray,
                     labels_ijk_to_ras, labels=None) -> np.ndarray:
    """Boolean mask on the image's grid: voxels of the label map ``labels_array`` whose value
    is in ``labels`` (any non-zero value when None); 422 for another geometry, a non-integer
    label map or an empty mask."""
    if tuple(labels_array.shape) != tuple(image_shape):
        raise invalid(f"the {role} mask has shape {list(labels_array.shape)} but its image "
                      f"{list(image_shape)}; export the mask on the {role} image's grid")
    difference = float(np.abs(np.asarray(labels_ijk_to_ras, dtype=np.float64)
                              - np.asarray(image_ijk_to_ras, dtype=np.float64)).max())
    if difference > GEOMETRY_TOLERANCE_MM:
        raise invalid(f"the {role} mask's geometry (origin, spacing or directions) differs from its "
                      f"image's by up to {difference:.3g} mm; export the mask on the {role} image's grid")
    if labels_array.dtype.kind not in "biu":
        raise invalid(f"the {role} mask must be an integer label map, got {labels_array.dtype}")
    if labels is None:
        mask = labels_array != 0
    else:
        if not isinstance(labels, list) or not labels or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in labels):
            raise invalid(f"'{role}.mask_labels' must be a non-empty list of integer labels")
        mask = np.isin(labels_array, labels)
    if not mask.any():
        raise invalid(f"the {role} mask is empty" + ("" if labels is None else f" for labels {labels}"))
    return mask


def parse_request(state, body: Any, identity=None) -> ParsedRequest:
    """Validate a ``POST /api/register`` body against the store and the served engines."""
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    extra = set(body) - BODY_KEYS
    if extra:
        raise invalid(f"unknown field(s) {', '.join(sorted(extra))}; allowed: {', '.join(sorted(BODY_KEYS))}")
    engine = body.get("engine", "classic")
    if not isinstance(engine, str) or not engine:
        raise invalid("'engine' must be the name of a registration engine")
    io_steps = body.get("io_steps")
    if io_steps is not None and (isinstance(io_steps, bool) or not isinstance(io_steps, int)
                                 or io_steps < 0):
        raise invalid(f"'io_steps' must be a non-negative integer or null, got {io_steps!r}")
    capabilities = state.registration.engine_class(engine).capabilities  # engine_unavailable if not served
    if io_steps is not None and io_steps > capabilities.max_io_steps:
        raise invalid(f"'io_steps' must be at most {capabilities.max_io_steps} for {engine}, got {io_steps}")
    similarity = body.get("similarity")
    if similarity is not None and similarity not in capabilities.similarities:
        raise invalid(f"similarity {similarity!r} is not offered by {engine}; use one of "
                      f"{', '.join(capabilities.similarities)}")
    output_grid = body.get("output_grid", "fixed")
    if output_grid not in OUTPUT_GRIDS:
        raise invalid(f"'output_grid' must be 'fixed' or 'native', got {output_grid!r}")
    fixed, fixed_ids = _image(state, "fixed", body.get("fixed"), identity)
    moving, moving_ids = _image(state, "moving", body.get("moving"), identity)
    request = RegistrationRequest(fixed, moving, io_steps=io_steps, similarity=similarity,
                                  affine_prealign=_flag(body, "affine_prealign"), output_grid=output_grid)
    return ParsedRequest(engine, request, tuple(fixed_ids + moving_ids), _flag(body, "want_warped"))


def run(engine, parsed: ParsedRequest, ctx) -> Dict[str, Any]:
    """The job's work: register, store ``displacement`` (and ``warped``), return the meta."""
    from .field import warp

    start = time.perf_counter()
    result = engine.register(parsed.request, ctx.progress, ctx.device_step)
    field = result.field
    ctx.progress("result", 0, 0)
    ctx.add_array("displacement", np.asarray(field.vectors_ras, dtype=np.float32), {
        "ijk_to_ras": np.asarray(field.ijk_to_ras).tolist(), "convention": CONVENTION,
        "units": "mm", "space": "RAS"})
    if parsed.want_warped:
        moving = parsed.request.moving
        warped = warp(moving.array, moving.ijk_to_ras, field)
        ctx.add_array("warped", warped, {"ijk_to_ras": np.asarray(field.ijk_to_ras).tolist()})
    return {
        "engine": engine.name, "neg_jacobian_fraction": float(result.neg_jacobian_fraction),
        "runtime_s": round(time.perf_counter() - start, 3),
        "timings_s": {k: round(float(v), 4) for k, v in result.timings_s.items()},
        "details": result.details, "field_shape": list(field.shape),
        "output_grid": parsed.request.output_grid,
    }


def result_bytes(parsed: ParsedRequest) -> int:
    """What the job's arrays will need: the float32 field (3 per voxel of the fixed grid)
    and, when asked, the warped image; the native grid may differ, the job then reserves
    the rest when it stores them."""
    voxels = int(np.prod(parsed.request.fixed.array.shape))
    warped = voxels * parsed.request.moving.array.dtype.itemsize if parsed.want_warped else 0
    return voxels * 12 + warped


def submit(state, body: Any, identity=None):
    """Validate ``body`` and queue the registration for ``identity``; returns the job."""
    parsed = parse_request(state, body, identity)
    engine = state.registration.get(parsed.engine)  # loads once; engine_unavailable without weights
    owner = {} if identity is None else {"owner": identity.owner}
    work = EngineWork("registration", parsed.engine, run, parsed, state.registration)
    return state.jobs.submit("registration", work, engine.device,
                             image_ids=parsed.image_ids, estimate_s=engine.estimate_s(parsed.request),
                             result_bytes=result_bytes(parsed), **owner)

