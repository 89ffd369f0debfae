"""A segment's change as it travels back to a client: the mask update message, decoded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import numpy as np

from . import wire


@dataclass
class MaskUpdate:
    """A segment's change as the server sent it: the new mask inside ``bbox`` only.

    ``bbox`` is ``((k0, j0, i0), (k1, j1, i1))`` (stop exclusive) in voxels of the image, or
    None when nothing changed; ``mask`` is bool with the bbox's shape. ``timings_ms`` holds
    the server's stages in ms from its Server-Timing header (decode, queue, engine,
    engine.<stage>, commit, encode, server) and ``roundtrip_ms`` the
    client-measured total. ``wire_bytes`` is the response body size. ``propagation`` is the
    status of the propagation job a slice engine (medsam, sam) started after this change
    (see :mod:`slicerfm_client.propagation`), else None; ``propagation_error`` the server's
    ``{"error", "message"}`` when it could not start one (e.g. ``server_full``), else None.
    ``notes`` holds the header's other figures (``queue.ahead``: requests ahead of this one
    for the device when it arrived; ``engine.<count>``).
    """

    segment: str
    bbox: Optional[Tuple[Tuple[int, int, int], Tuple[int, int, int]]]
    mask: np.ndarray
    voxels: int = 0
    can_undo: bool = False
    can_redo: bool = False
    timings_ms: Dict[str, float] = field(default_factory=dict)
    roundtrip_ms: float = 0.0
    wire_bytes: int = 0
    propagation: Optional[Dict[str, Any]] = None
    propagation_error: Optional[Dict[str, Any]] = None
    notes: Dict[str, str] = field(default_factory=dict)

    @property
    def queue_ahead(self) -> Optional[int]:
        """How many requests were ahead of this one for the device when it arrived."""
        value = self.notes.get("queue.ahead")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def slices(self) -> Tuple[slice, ...]:
        if self.bbox is None:
            return (slice(0, 0),) * 3
        return tuple(slice(a, b) for a, b in zip(self.bbox[0], self.bbox[1]))

    def apply_to(self, volume: np.ndarray) -> None:
        """Write this update into a full ``(K, J, I)`` boolean/uint8 volume of the segment."""
        if self.bbox is not None:
            volume[self.slices] = self.mask


def parse_server_timing(value: str) -> Dict[str, float]:
    """``{"engine": 12.3, ...}`` from a ``Server-Timing: engine;dur=12.3, ...`` header (ms)."""
    timings: Dict[str, float] = {}
    for entry in (value or "").split(","):
        name, _, params = entry.strip().partition(";")
        for param in params.split(";"):
            key, _, number = param.strip().partition("=")
            if name and key == "dur":
                try:
                    timings[name] = float(number)
                except ValueError:
                    pass
    return timings


def parse_server_timing_notes(value: str) -> Dict[str, str]:
    """``{"queue.ahead": "2", ...}``: the ``desc`` of each ``Server-Timing`` entry that has one."""
    notes: Dict[str, str] = {}
    for entry in (value or "").split(","):
        name, _, params = entry.strip().partition(";")
        for param in params.split(";"):
            key, _, text = param.strip().partition("=")
            if name and key == "desc":
                notes[name] = text.strip('"')
    return notes


def mask_update(header: wire.Header, mask: np.ndarray, roundtrip_ms: float = 0.0, nbytes: int = 0,
                timings: Optional[Dict[str, float]] = None) -> MaskUpdate:
    """The :class:`MaskUpdate` of a decoded mask update message (docs/PROTOCOL.md section 7)."""
    meta = header.meta
    bbox = meta.get("bbox_kji")
    return MaskUpdate(
        segment=meta.get("segment", ""),
        bbox=None if bbox is None else (tuple(bbox[0]), tuple(bbox[1])),
        mask=mask.astype(bool, copy=False),
        voxels=int(meta.get("voxels", 0)),
        can_undo=bool(meta.get("can_undo", False)),
        can_redo=bool(meta.get("can_redo", False)),
        timings_ms=dict(timings or {}),
        roundtrip_ms=roundtrip_ms,
        wire_bytes=nbytes,
        propagation=meta.get("propagation"),
        propagation_error=meta.get("propagation_error"),
    )
