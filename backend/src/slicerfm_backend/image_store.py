"""Images stored once per content id, shared by sessions, evicted least-recently-used.

An upload is decoded chunk by chunk straight into its final array (see
:class:`slicerfm_client.wire.MessageDecoder`), so a volume is held once plus one chunk.
The content id covers the geometry and the voxels, and is recomputed on arrival: an upload
whose id or checksum does not match is rejected as corrupted.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Callable, Optional, Set

from slicerfm_client import geometry, protocol, wire

from .errors import DomainError, corrupted, too_large
from .imaging import StoredImage, check_finite, check_image_header
from .settings import Settings

log = logging.getLogger(__name__)


class ImageStore:
    """Thread-safe map image id -> StoredImage with a memory cap.

    ``in_use`` returns the ids attached to live sessions; those are never evicted (the cap
    may then be exceeded temporarily, and a warning is logged).
    """

    def __init__(self, settings: Settings, in_use: Callable[[], Set[str]] = set):
        self.settings = settings
        self._in_use = in_use
        self._images: "OrderedDict[str, StoredImage]" = OrderedDict()
        self._lock = threading.Lock()
        self.on_evict: Optional[Callable[[str], None]] = None

    def __contains__(self, image_id: str) -> bool:
        with self._lock:
            return image_id in self._images

    def get(self, image_id: str) -> StoredImage:
        with self._lock:
            image = self._images.get(image_id)
            if image is None:
                raise DomainError(protocol.ERROR_IMAGE_NOT_FOUND,
                                  f"the server does not hold image {image_id[:12]}…; upload it first")
            self._images.move_to_end(image_id)
            return image

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(image.nbytes for image in self._images.values())

    def new_decoder(self, image_id: str) -> "ImageUpload":
        return ImageUpload(self, image_id)

    def _add(self, image: StoredImage) -> None:
        with self._lock:
            self._images[image.image_id] = image
            self._images.move_to_end(image.image_id)
            evicted = self._evict_locked()
        for image_id in evicted:
            if self.on_evict is not None:
                self.on_evict(image_id)

    def _evict_locked(self) -> list:
        pinned = self._in_use()
        total = sum(image.nbytes for image in self._images.values())
        evicted = []
        for image_id in list(self._images):
            if total <= self.settings.image_cache_bytes:
                break
            if image_id in pinned:
                continue
            total -= self._images.pop(image_id).nbytes
            evicted.append(image_id)
            log.info("evicted image %s… from memory", image_id[:12])
        if total > self.settings.image_cache_bytes:
            log.warning("images in use need %.1f GB, more than SLICERFM_IMAGE_CACHE_BYTES", total / 1e9)
        return evicted


class ImageUpload:
    """One upload in progress: feed it the request body piece by piece, then ``finish()``."""

    def __init__(self, store: ImageStore, image_id: str):
        self.store = store
        self.image_id = image_id
        self.received = 0
        self._geometry = None
        self._decoder = wire.MessageDecoder(on_header=self._on_header)

    def _on_header(self, header: wire.Header) -> None:
        self._geometry = check_image_header(header, self.store.settings)

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        limit = self.store.settings.max_upload_bytes
        if self.received > limit:
            raise too_large(
                f"upload exceeds this server's limit of {limit:,} bytes (SLICERFM_MAX_UPLOAD_BYTES)"
            )
        try:
            self._decoder.feed(data)
        except wire.WireFormatError as error:
            raise corrupted(f"the upload is not a valid SlicerFM image message: {error}") from error

    def finish(self) -> StoredImage:
        try:
            header, array = self._decoder.finish()
        except wire.WireFormatError as error:
            raise corrupted(f"the upload is incomplete or corrupted: {error}") from error
        ijk_to_ras, modality = self._geometry
        computed = geometry.image_id(header.dtype, header.shape, ijk_to_ras, header.sha256)
        if computed != self.image_id:
            raise corrupted(
                "the image id in the URL does not match the uploaded geometry and voxels "
                f"(expected {computed[:12]}…)"
            )
        check_finite(array)
        array.setflags(write=False)
        image = StoredImage(self.image_id, array, ijk_to_ras, modality)
        self.store._add(image)
        return image
