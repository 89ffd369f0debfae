"""The SlicerFM protocol: version, paths, headers and conventions shared by client and server.

This module is the single source of truth for both sides: the backend imports it from the
client distribution (``slicerfm-client``), never from a copy. The binary wire format lives
in :mod:`slicerfm_client.wire`; the full description, with examples, is in docs/PROTOCOL.md.

Versioning
    ``PROTOCOL_VERSION`` is ``"MAJOR.MINOR"``. A client and a server are compatible when the
    majors are equal; a minor bump only adds optional fields and endpoints. Every request
    carries the client's version in the ``X-SlicerFM-Protocol`` header; a server with
    another major answers 426 with a message naming the package version to install.

Coordinates
    Arrays travel in numpy order ``(k, j, i)`` -- exactly what Slicer's
    ``slicer.util.arrayFromVolume`` returns: k is the slice index, i the fastest (column)
    index. The geometry travels as ``ijk_to_ras``: the 4x4 matrix (row-major nested lists)
    mapping homogeneous voxel indices ``(i, j, k, 1)`` to RAS millimetres, as
    ``vtkMRMLScalarVolumeNode.GetIJKToRASMatrix`` gives it. Prompts (points, boxes) are voxel
    coordinates of the uploaded image in the same ``(k, j, i)`` order as the array axes,
    named ``*_kji`` in every message; a voxel's centre has integer coordinates. A box
    *prompt* (``box_kji``) is two opposite corners, both inclusive voxel coordinates. A
    *bounding box* of a mask (``bbox_kji``) is ``[[k0, j0, i0], [k1, j1, i1]]`` with start
    inclusive and stop exclusive, like numpy slices.

Authentication and sessions
    ``Authorization: Bearer <access token>`` when the server needs one: the shared token,
    a user's own token (``slicerfm-backend users add``) or a JWT of the site's OpenID
    Connect provider.
    A session is claimed with ``POST /api/sessions``; its lease token then goes in the
    ``X-SlicerFM-Session`` header (never in a URL, so that access logs never hold it).
"""

PROTOCOL_VERSION = "1.2"
"""1.1: servers also decode wire messages of format 2 (the ``blosc2-slicedelta`` codec).
1.2: per-user credentials and roles (403 ``forbidden``), admin endpoints and ``/metrics``,
503 ``storage_unavailable``/``out_of_memory``/``restarting``, ``Server-Timing`` descriptions
(``queue.ahead``), job waiting times; sessions may outlive a server restart."""
SERVER_PACKAGE = "slicerfm-backend"
CLIENT_PACKAGE = "slicerfm-client"

HEADER_PROTOCOL = "X-SlicerFM-Protocol"
HEADER_SESSION = "X-SlicerFM-Session"
HEADER_RETRY_AFTER = "Retry-After"

MEDIA_TYPE_MESSAGE = "application/x-slicerfm-message"

PATH_INFO = "/api/info"
PATH_ENGINES = "/api/engines"
PATH_SESSIONS = "/api/sessions"
PATH_SESSION = "/api/session"
PATH_HEARTBEAT = "/api/session/heartbeat"
PATH_ATTACH_IMAGE = "/api/session/image"
PATH_SEGMENTS = "/api/session/segments"
PATH_INTERACT = "/api/session/interact"
PATH_UNDO = "/api/session/segment/undo"
PATH_REDO = "/api/session/segment/redo"
PATH_RESET = "/api/session/segment/reset"
PATH_DELETE = "/api/session/segment/delete"
PATH_LOCK = "/api/session/segment/lock"
PATH_SEED = "/api/session/segment/seed"
PATH_LABELMAP = "/api/session/labelmap"


PATH_ADMIN_SESSIONS = "/api/admin/sessions"  # GET: every session (admins); DELETE .../{id}: end one
PATH_METRICS = "/metrics"  # Prometheus text format (admins)

PATH_JOBS = "/api/jobs"
PATH_REGISTER = "/api/register"  # POST: registration job (docs/REGISTRATION.md)
PATH_SEGMENT_AUTO = "/api/segment/auto"  # POST: automatic segmentation job (vista3d)
PATH_SEGMENT_AUTO_CLASSES = "/api/segment/auto/classes"  # GET ?engine=: class catalogue


def job_path(job_id: str) -> str:
    """Path of one background job: ``GET`` its status, ``DELETE`` cancels it."""
    return f"{PATH_JOBS}/{job_id}"


def job_array_path(job_id: str, name: str) -> str:
    """Path of one result array of a finished job (a wire message)."""
    return f"{PATH_JOBS}/{job_id}/arrays/{name}"


#: States of a background job; the last three are final.
JOB_STATES = ("queued", "running", "done", "failed", "cancelled")


def image_path(image_id: str) -> str:
    """Path of one stored image; ``HEAD`` asks whether the server has it, ``PUT`` uploads it."""
    return f"/api/images/{image_id}"


#: Image modalities, one set for segmentation and registration: CT (Hounsfield units), MR,
#: and "other" for any other image or when it is not known. Wherever a user types one
#: (API, command line, client) :func:`modality` also takes the usual synonyms.
MODALITY_CT = "CT"
MODALITY_MR = "MR"
MODALITY_OTHER = "other"
MODALITIES = (MODALITY_CT, MODALITY_MR, MODALITY_OTHER)
MODALITY_SYNONYMS = {
    "ct": MODALITY_CT, "computed tomography": MODALITY_CT,
    "mr": MODALITY_MR, "mri": MODALITY_MR, "mrt": MODALITY_MR, "magnetic resonance": MODALITY_MR,
    "magnetic resonance imaging": MODALITY_MR,
    "other": MODALITY_OTHER, "unknown": MODALITY_OTHER, "ot": MODALITY_OTHER, "": MODALITY_OTHER,
}


def modality(name) -> str:
    """The modality ``name`` stands for (``CT``, ``MR`` or ``other``), case and surrounding
    spaces ignored, synonyms accepted (``mri`` -> ``MR``, ``unknown`` -> ``other``);
    ValueError naming what is accepted otherwise."""
    canonical = MODALITY_SYNONYMS.get(str(name).strip().lower()) if isinstance(name, str) else None
    if canonical is None:
        raise ValueError(f"unknown modality {name!r}; use CT, MR or other (also accepted: "
                         f"{', '.join(sorted(k for k in MODALITY_SYNONYMS if k))}, any case)")
    return canonical


def upload_modality(name) -> str:
    """What an image upload's meta carries for the modality ``name``: its canonical name,
    except ``unknown`` for ``other`` -- the name protocol 1.0 servers know (newer ones take
    both), so a newer client can still upload to them."""
    canonical = modality(name)
    return "unknown" if canonical == MODALITY_OTHER else canonical


PROMPT_POINT = "point"
PROMPT_BOX = "box"
PROMPT_KINDS = (PROMPT_POINT, PROMPT_BOX)

#: Array dtypes an image may have on the wire (numpy names, little-endian).
IMAGE_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")

#: Machine-readable error codes carried in every error body ``{"error": code, "message": text}``.
ERROR_BAD_REQUEST = "bad_request"
ERROR_UNAUTHORIZED = "unauthorized"
ERROR_NOT_FOUND = "not_found"
ERROR_IMAGE_NOT_FOUND = "image_not_found"
ERROR_SEGMENT_NOT_FOUND = "segment_not_found"
ERROR_SEGMENT_LOCKED = "segment_locked"
ERROR_SESSION_EXPIRED = "session_expired"
ERROR_TOO_LARGE = "too_large"
ERROR_INVALID = "invalid"
ERROR_CORRUPTED = "corrupted"
ERROR_VERSION = "incompatible_version"
ERROR_SERVER_FULL = "server_full"
ERROR_ENGINE_UNAVAILABLE = "engine_unavailable"
ERROR_ENGINE_FAILED = "engine_failed"
ERROR_NOTHING_TO_UNDO = "nothing_to_undo"
ERROR_NO_IMAGE = "no_image_attached"
ERROR_INTERNAL = "internal_error"
ERROR_JOB_NOT_FOUND = "job_not_found"
ERROR_JOB_NOT_DONE = "job_not_done"
ERROR_JOB_FAILED = "job_failed"
ERROR_FORBIDDEN = "forbidden"  # 403: the identity may not do this (admin endpoints)
ERROR_STORAGE = "storage_unavailable"  # 503: the state directory cannot take the change
ERROR_OUT_OF_MEMORY = "out_of_memory"  # 503: the device ran out of memory; retry
ERROR_RESTARTING = "restarting"  # 503: the server is draining for a restart; retry


def admin_session_path(session_id: str) -> str:
    """Path of one session for admins: ``DELETE`` ends it."""
    return f"{PATH_ADMIN_SESSIONS}/{session_id}"


def major(version: str) -> int:
    """Major number of a ``"MAJOR.MINOR"`` version string; raises ValueError when malformed."""
    return int(str(version).split(".")[0])


def compatible(client_version: str, server_version: str) -> bool:
    """True when the two protocol versions can talk (same major)."""
    try:
        return major(client_version) == major(server_version)
    except ValueError:
        return False


def wire_format_for(server_version: str) -> int:
    """The newest wire message format (:mod:`slicerfm_client.wire`) a server of this protocol
    version decodes: 2 from protocol 1.1 on, 1 for 1.0 (and for a malformed version)."""
    try:
        major_text, minor_text = str(server_version).split(".")[:2]
        return 2 if (int(major_text), int(minor_text)) >= (1, 1) else 1
    except ValueError:
        return 1
