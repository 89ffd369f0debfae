"""The SlicerFM client: one object per server connection and session.

Typical use (Slicer's Python console or a script)::

    client = SlicerFMClient("http://127.0.0.1:8765", token=None)
    client.connect()                                  # version check + session claim
    client.set_image(array_kji, ijk_to_ras, "CT")     # uploads only if the server lacks it
    update = client.add_point("spleen", (40, 55, 61), positive=True, engine="classic")
    labels[update.slices] = update.mask               # apply the changed box only
    client.undo("spleen")
    client.close()

Thread safety: one request at a time per client (calls are serialised by a lock); the
heartbeat runs in its own daemon thread with its own HTTP connection.

Security: ``https://`` certificates are always verified -- against the system's CA store
or the ``ca_bundle`` given (a lab's own CA) -- and never skipped. Plain ``http://`` to a
server that is not on this machine needs ``allow_insecure_http=True`` (or the environment
variable ``SLICERFM_ALLOW_INSECURE_HTTP=1``) and logs a warning: the access token and the
images would cross the network unencrypted.

Restarts: a server that is draining for a restart answers 503 ``restarting``; the client
waits and sends the request again (for up to ``restart_wait_s``). A server with a state
directory keeps the session, its segments and their undo history across restarts (it says
``persistent`` when the session is claimed): the client then also waits through refused
connections while it comes back, and the same lease goes on working.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import requests

from . import errors, geometry, protocol, wire
from .jobs import JobsMixin
from .propagation import PropagationMixin
from .transport import check_transport, connection_lost, is_stream
from .updates import MaskUpdate, mask_update, parse_server_timing, parse_server_timing_notes

__all__ = ["SlicerFMClient", "MaskUpdate", "parse_server_timing", "normalise_url"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 300.0
CONNECT_TIMEOUT_S = 5.0
RESTART_WAIT_S = 60.0
RETRY_PAUSE_S = 1.0


def normalise_url(url: str) -> str:
    """Check and tidy a server URL; raises ConfigurationError with the fix when it is wrong."""
    url = (url or "").strip()
    if not url:
        raise errors.ConfigurationError("no server URL given: enter e.g. http://127.0.0.1:8765")
    if not (url.startswith("http://") or url.startswith("https://")):
        raise errors.ConfigurationError(
            f"the server URL {url!r} must start with http:// or https:// "
            f"(e.g. http://{url.split('/')[0]})"
        )
    return url.rstrip("/")


class SlicerFMClient(JobsMixin, PropagationMixin):
    """Talks to one SlicerFM backend. See the module docstring for an example."""

    def __init__(self, url: str, token: Optional[str] = None, timeout_s: float = DEFAULT_TIMEOUT_S,
                 chunk_bytes: int = wire.DEFAULT_CHUNK_BYTES, ca_bundle: Optional[str] = None,
                 allow_insecure_http: bool = False, restart_wait_s: float = RESTART_WAIT_S):
        self.url = normalise_url(url)
        self.insecure = check_transport(self.url, allow_insecure_http)
        self._token = token or None
        self.timeout_s = timeout_s
        self.chunk_bytes = chunk_bytes
        self.ca_bundle = ca_bundle
        self.restart_wait_s = restart_wait_s
        if ca_bundle is not None and not os.path.isfile(ca_bundle):
            raise errors.ConfigurationError(f"the CA bundle {ca_bundle} does not exist")
        self._http = self._new_http()
        self._lock = threading.RLock()
        self.session_token: Optional[str] = None
        self.session_info: Dict[str, Any] = {}
        self.server_info: Dict[str, Any] = {}
        self.image_id: Optional[str] = None
        self._heartbeat_stop: Optional[threading.Event] = None
        self._heartbeat_thread: Optional[threading.Thread] = None

    def _new_http(self) -> requests.Session:
        """An HTTP session that verifies certificates (the system's CAs, or ``ca_bundle``)."""
        http = requests.Session()
        http.verify = self.ca_bundle or True  # never False
        return http

    @property
    def persistent_session(self) -> bool:
        """True when the server keeps this session across its restarts (it said so at the claim)."""
        return bool(self.session_token and self.session_info.get("persistent"))

    def __repr__(self) -> str:  # never shows the token
        return f"SlicerFMClient({self.url!r}, session={'yes' if self.session_token else 'no'})"

    # -- HTTP plumbing -------------------------------------------------------------------

    def _headers(self, session: bool = True) -> Dict[str, str]:
        headers = {protocol.HEADER_PROTOCOL: protocol.PROTOCOL_VERSION}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if session and self.session_token:
            headers[protocol.HEADER_SESSION] = self.session_token
        return headers

    def _request(self, method: str, path: str, *, json: Any = None, data: Any = None,
                 session: bool = True, http: Optional[requests.Session] = None,
                 ok: Sequence[int] = (200, 201), headers: Optional[dict] = None,
                 timeout: Optional[float] = None) -> requests.Response:
        """Send one request; waits through a server restart (503 ``restarting``, and refused
        connections once connected) for up to ``restart_wait_s`` before giving up."""
        all_headers = self._headers(session)
        if headers:
            all_headers.update(headers)
        deadline = time.monotonic() + self.restart_wait_s
        while True:
            try:
                response = self._send(method, path, http, json, data, all_headers, timeout)
            except errors.ServerUnreachableError as error:
                # Nothing was sent. A server that keeps sessions across restarts may be coming
                # back: wait for it; any other gets the error at once (e.g. a local backend that
                # died: the caller restarts it).
                if error.code != "refused" or not self.persistent_session or time.monotonic() > deadline:
                    raise
                time.sleep(RETRY_PAUSE_S)
                continue
            if response.status_code in ok:
                return response
            try:
                body = response.json()
            except ValueError:
                body = None
            retry_after = response.headers.get(protocol.HEADER_RETRY_AFTER)
            restarting = isinstance(body, dict) and body.get("error") == protocol.ERROR_RESTARTING
            if restarting and time.monotonic() < deadline and not is_stream(data):
                time.sleep(min(max(float(retry_after or 1), RETRY_PAUSE_S), 5.0))
                continue
            raise errors.error_from_response(response.status_code, body, self.url, response.reason, retry_after)

    def _send(self, method, path, http, json, data, headers, timeout) -> requests.Response:
        try:
            return (http or self._http).request(
                method, self.url + path, json=json, data=data, headers=headers,
                timeout=(CONNECT_TIMEOUT_S, timeout or self.timeout_s),
                verify=self.ca_bundle or True,  # per request: REQUESTS_CA_BUNDLE must not override it
            )
        except requests.exceptions.SSLError as error:
            raise errors.ServerUnreachableError(
                f"the TLS certificate of {self.url} could not be verified ({error.__class__.__name__}): "
                "ask the administrator for the server's CA certificate and give it as the CA bundle; "
                "SlicerFM never connects without checking it", code="tls") from error
        except requests.exceptions.ConnectionError as error:
            if connection_lost(error):
                raise errors.ServerUnreachableError(
                    f"the connection to the SlicerFM backend at {self.url} was lost during the request "
                    "(the server restarted or stopped, or a proxy or the network dropped it); the "
                    "request may or may not have been done: check the result, then try again",
                    code="connection_lost") from error
            raise errors.ServerUnreachableError(
                f"cannot reach the SlicerFM backend at {self.url}: is it running, and are the "
                "address and port right? (a remote server may also be behind a firewall)",
                code="refused") from error
        except requests.exceptions.Timeout as error:
            raise errors.ServerUnreachableError(
                f"the SlicerFM backend at {self.url} did not answer within "
                f"{timeout or self.timeout_s:.0f} s", code="timeout"
            ) from error

    def _mask_request(self, method: str, path: str, **kwargs) -> MaskUpdate:
        start = time.perf_counter()
        response = self._request(method, path, **kwargs)
        header, mask = wire.decode(response.content)
        roundtrip_ms = (time.perf_counter() - start) * 1000.0
        timing = response.headers.get("Server-Timing", "")
        update = mask_update(header, mask, roundtrip_ms, len(response.content), parse_server_timing(timing))
        update.notes = parse_server_timing_notes(timing)
        return update

    # -- server and session --------------------------------------------------------------

    def info(self) -> Dict[str, Any]:
        """Server info, checking protocol compatibility (raises IncompatibleVersionError)."""
        info = self._request("GET", protocol.PATH_INFO, session=False).json()
        server_version = str(info.get("protocol_version", "?"))
        if not protocol.compatible(protocol.PROTOCOL_VERSION, server_version):
            raise errors.IncompatibleVersionError(
                f"this client speaks SlicerFM protocol {protocol.PROTOCOL_VERSION} but the server "
                f"at {self.url} speaks {server_version} ({protocol.SERVER_PACKAGE} "
                f"{info.get('server_version', '?')}). Install a matching pair: update the "
                f"SlicerFM extension, or run {protocol.SERVER_PACKAGE} with protocol "
                f"{protocol.major(protocol.PROTOCOL_VERSION)}.x on the server."
            )
        self.server_info = info
        return info

    def engines(self) -> List[Dict[str, Any]]:
        """Engines the server offers: name, prompt kinds, modalities, device, weights present."""
        return self._request("GET", protocol.PATH_ENGINES, session=False).json()["engines"]

    def connect(self, client_name: str = "slicerfm-client", heartbeat: bool = True) -> Dict[str, Any]:
        """Check the version, claim a session and (by default) start heartbeats."""
        info = self.info()
        with self._lock:
            claim = self._request("POST", protocol.PATH_SESSIONS, json={"client": client_name},
                                  session=False).json()
            self.session_token = claim.pop("session")
            self.session_info = claim
            self.image_id = None
        if heartbeat:
            self.start_heartbeat()
        return info

    def heartbeat(self, http: Optional[requests.Session] = None) -> None:
        self._request("POST", protocol.PATH_HEARTBEAT, http=http, timeout=CONNECT_TIMEOUT_S * 2)

    def start_heartbeat(self) -> None:
        """Send heartbeats in a daemon thread at the interval the server asked for."""
        self.stop_heartbeat()
        interval = float(self.session_info.get("heartbeat_interval_s", 15.0))
        stop = threading.Event()
        http = self._new_http()

        def beat():
            while not stop.wait(interval):
                try:
                    self.heartbeat(http=http)
                except errors.SlicerFMError as error:
                    log.warning("SlicerFM heartbeat failed: %s", error)

        self._heartbeat_stop = stop
        self._heartbeat_thread = threading.Thread(target=beat, name="slicerfm-heartbeat", daemon=True)
        self._heartbeat_thread.start()

    def stop_heartbeat(self) -> None:
        if self._heartbeat_stop is not None:
            self._heartbeat_stop.set()
            self._heartbeat_stop = None

    def close(self) -> None:
        """Release the session (best effort) and stop heartbeats."""
        self.stop_heartbeat()
        with self._lock:
            if self.session_token:
                try:
                    self._request("DELETE", protocol.PATH_SESSION, timeout=CONNECT_TIMEOUT_S * 2)
                except errors.SlicerFMError as error:
                    log.info("releasing the SlicerFM session failed: %s", error)
                self.session_token = None

    def __enter__(self) -> "SlicerFMClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- images ----------------------------------------------------------------------------

    def has_image(self, image_id: str) -> bool:
        response = self._request("HEAD", protocol.image_path(image_id), session=False, ok=(200, 404))
        return response.status_code == 200

    def upload_image(self, array: np.ndarray, ijk_to_ras, modality: str = protocol.MODALITY_OTHER,
                     image_id: Optional[str] = None, data_sha256: Optional[str] = None) -> str:
        """Upload ``array`` (K, J, I) with its geometry unless the server has it; return its id.
        ``modality``: CT, MR or other, any case, with synonyms (:func:`protocol.modality`).

        The body is in the newest wire format the server reads (``GET /api/info`` first when
        this client has not asked yet): slice differences for integer images from protocol
        1.1 on (docs/PROTOCOL.md section 7)."""
        wire_modality = protocol.upload_modality(modality)  # ValueError before any transfer
        array = np.ascontiguousarray(array)
        geometry.validate_ijk_to_ras(ijk_to_ras)
        data_sha256 = data_sha256 or wire.array_sha256(array)
        image_id = image_id or geometry.image_id(array.dtype.name, array.shape, ijk_to_ras, data_sha256)
        if self.has_image(image_id):
            return image_id
        if not self.server_info:
            self.info()  # the server's limits and the wire formats it decodes
        self._check_limits(array)
        meta = {"ijk_to_ras": geometry.as_matrix(ijk_to_ras).tolist(), "modality": wire_modality}
        reader_format = protocol.wire_format_for(self.server_info.get("protocol_version", "1.0"))
        deadline = time.monotonic() + self.restart_wait_s
        while True:
            body = wire.encode_iter(array, meta, codec=wire.best_codec(array.dtype, reader_format),
                                    chunk_bytes=self.chunk_bytes, sha256=data_sha256)
            try:
                self._request("PUT", protocol.image_path(image_id), data=body, session=False,
                              headers={"Content-Type": protocol.MEDIA_TYPE_MESSAGE})
                return image_id
            except errors.ServerBusyError as error:  # a streamed body is sent again from the start
                if error.code != protocol.ERROR_RESTARTING or time.monotonic() > deadline:
                    raise
                time.sleep(min(error.retry_after or RETRY_PAUSE_S, 5.0))

    def _check_limits(self, array: np.ndarray) -> None:
        """Refuse locally what the server would refuse, before sending gigabytes."""
        limits = self.server_info.get("limits") or {}
        if array.ndim == 3 and limits:
            if max(array.shape) > limits.get("max_dimension", float("inf")):
                raise errors.TooLargeError(
                    f"image shape {list(array.shape)} exceeds the server's limit of "
                    f"{limits['max_dimension']} voxels per axis; crop or resample it")
            if array.size > limits.get("max_voxels", float("inf")):
                raise errors.TooLargeError(
                    f"image of {array.size:,} voxels exceeds the server's limit of "
                    f"{limits['max_voxels']:,}; crop or resample it")

    def attach_image(self, image_id: str) -> Dict[str, Any]:
        """Make ``image_id`` the session's image. Re-attaching the same image keeps the
        session's segments; another image starts with none."""
        with self._lock:
            result = self._request("POST", protocol.PATH_ATTACH_IMAGE, json={"image_id": image_id}).json()
            self.image_id = image_id
            return result

    def set_image(self, array: np.ndarray, ijk_to_ras, modality: str = protocol.MODALITY_OTHER) -> str:
        """Upload (only when needed) and attach; returns the image id."""
        image_id = self.upload_image(array, ijk_to_ras, modality)
        self.attach_image(image_id)
        return image_id

    # -- segments --------------------------------------------------------------------------

    def interact(self, segment: str, prompt: Dict[str, Any], engine: str = "classic",
                 label: Optional[Union[str, int]] = None, **slice_options: Any) -> MaskUpdate:
        """Send one prompt (see add_point/add_box) for ``segment``; returns the change.
        ``label`` (a class name or id) tells a class-aware engine (vista3d) the points' class.
        ``slice_options`` are the slice engines' fields (medsam, sam): ``slice_axis`` (0, 1, 2:
        the voxel axis of the slice view), ``propagate`` (bool), ``max_slices`` (per direction);
        None values are left out."""
        body = {"segment": segment, "engine": engine, "prompt": prompt}
        if label is not None:
            body["label"] = label
        unknown = set(slice_options) - {"slice_axis", "propagate", "max_slices"}
        if unknown:
            raise TypeError(f"unknown interaction field(s): {', '.join(sorted(unknown))}")
        body.update({key: value for key, value in slice_options.items() if value is not None})
        with self._lock:
            return self._mask_request("POST", protocol.PATH_INTERACT, json=body)

    def add_point(self, segment: str, point_kji: Sequence[float], positive: bool = True,
                  engine: str = "classic", **slice_options: Any) -> MaskUpdate:
        """A positive or negative click at voxel ``(k, j, i)`` of the attached image."""
        prompt = {"kind": protocol.PROMPT_POINT, "positive": bool(positive),
                  "point_kji": [float(v) for v in point_kji]}
        return self.interact(segment, prompt, engine, **slice_options)

    def add_box(self, segment: str, corner_a_kji: Sequence[float], corner_b_kji: Sequence[float],
                engine: str = "classic", **slice_options: Any) -> MaskUpdate:
        """A box given by two opposite corners (inclusive voxel coordinates, (k, j, i)); one
        voxel thick on an axis it is a slice box for the slice engines (see add_slice_box)."""
        prompt = {"kind": protocol.PROMPT_BOX, "positive": True,
                  "box_kji": [[float(v) for v in corner_a_kji], [float(v) for v in corner_b_kji]]}
        return self.interact(segment, prompt, engine, **slice_options)

    def _segment_op(self, path: str, segment: str, **extra) -> MaskUpdate:
        with self._lock:
            return self._mask_request("POST", path, json={"segment": segment, **extra})

    def undo(self, segment: str) -> MaskUpdate:
        return self._segment_op(protocol.PATH_UNDO, segment)

    def redo(self, segment: str) -> MaskUpdate:
        return self._segment_op(protocol.PATH_REDO, segment)

    def reset(self, segment: str) -> MaskUpdate:
        """Empty the segment and forget its prompts (undoable)."""
        return self._segment_op(protocol.PATH_RESET, segment)

    def delete_segment(self, segment: str) -> None:
        with self._lock:
            self._request("POST", protocol.PATH_DELETE, json={"segment": segment})

    def lock(self, segment: str, locked: bool = True) -> Dict[str, Any]:
        """Lock (or unlock) a segment: no interaction on another segment may change its voxels."""
        with self._lock:
            return self._request("POST", protocol.PATH_LOCK,
                                 json={"segment": segment, "locked": bool(locked)}).json()

    def seed(self, segment: str, mask: np.ndarray, bbox_kji=None) -> MaskUpdate:
        """Replace the segment with ``mask`` (full image, or the block at ``bbox_kji``)."""
        mask = np.ascontiguousarray(mask, dtype=np.uint8)
        if bbox_kji is None:
            bbox_kji = [[0, 0, 0], list(mask.shape)]
        meta = {"segment": segment, "bbox_kji": [list(map(int, bbox_kji[0])), list(map(int, bbox_kji[1]))]}
        with self._lock:
            return self._mask_request("POST", protocol.PATH_SEED, data=wire.encode(mask, meta),
                                      headers={"Content-Type": protocol.MEDIA_TYPE_MESSAGE})

    def segments(self) -> List[Dict[str, Any]]:
        """The session's segments: name, label, locked, voxels, can_undo, can_redo."""
        with self._lock:
            return self._request("GET", protocol.PATH_SEGMENTS).json()["segments"]

    def labelmap(self) -> Tuple[np.ndarray, List[Dict[str, Any]]]:
        """The full label map (K, J, I) and the list of segments with their label values."""
        with self._lock:
            response = self._request("GET", protocol.PATH_LABELMAP)
        header, labels = wire.decode(response.content)
        return labels, header.meta.get("segments", [])
