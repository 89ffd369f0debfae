"""Images stored once per content id, owned by the users who uploaded them, within a byte budget.

An upload is decoded chunk by chunk straight into its final array (see
:class:`slicerfm_client.wire.MessageDecoder`), so a volume is held once plus one chunk; its
bytes are reserved in the images budget as soon as its header arrives, before any voxel
is allocated, and given back when the upload fails or the client goes away. The content
id covers the geometry and the voxels, and is recomputed on arrival: an upload whose id or
checksum does not match is rejected as corrupted.

*Ownership*: an image is visible to the identities that uploaded it (a second user uploads
it too, which proves they hold it; it is stored once), or to everyone with
``share_images``. For anyone else it does not exist: 404, also for ``HEAD``.

*Memory*: images attached to a session, read by a job, or uploaded in the last
``UPLOAD_GRACE_S`` are never evicted. Others are dropped least-recently-used when room is
needed (with a state directory their file stays, and they come back on the next use).
When nothing can be dropped, an upload is refused with 503 and Retry-After.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Callable, Optional, Protocol, Set

from slicerfm_client import geometry, protocol, wire

from .auth.identity import Identity
from .errors import DomainError, corrupted, too_large
from .imaging import StoredImage, check_finite, check_image_header
from .memory import Budget, return_memory_to_system
from .persistence.image_files import ImageFiles
from .persistence.state_dir import storage_error
from .settings import Settings

log = logging.getLogger(__name__)

UPLOAD_GRACE_S = 600.0


def not_found() -> DomainError:
    return DomainError(protocol.ERROR_IMAGE_NOT_FOUND, "the server does not hold this image; upload it first")


class ImageStore:
    """Thread-safe map image id -> StoredImage (see the module docstring).

    ``in_use()`` returns the ids attached to live sessions or read by jobs.
    """

    def __init__(self, settings: Settings, budget: Budget, files: Optional[ImageFiles] = None,
                 in_use: Callable[[], Set[str]] = set, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.budget = budget
        self.files = files
        self._in_use = in_use
        self._clock = clock
        self._images: "OrderedDict[str, StoredImage]" = OrderedDict()
        self._fresh: dict = {}  # image id -> when its upload finished
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        self.on_evict: Optional[Callable[[str], None]] = None
        #: The images of a whole cluster (:class:`SharedImages`; None on one server): an
        #: upload is published there, and an id missing here is looked up there.
        self.shared: Optional["SharedImages"] = None

    # -- looking up ----------------------------------------------------------------------

    def _visible(self, owners: Set[str], identity: Optional[Identity]) -> bool:
        return identity is None or self.settings.share_images or identity.owner in owners

    def has(self, image_id: str, identity: Optional[Identity]) -> bool:
        """Whether ``identity`` may use the image (in memory or in the state directory)."""
        with self._lock:
            image = self._images.get(image_id)
        if image is not None and self._visible(image.owners, identity):
            return True
        if self.shared is not None:
            owners = self.shared.owners(image_id)  # another worker may know more owners
            if owners is not None:
                return self._visible(owners, identity)
        if image is not None:
            return False
        return self.files is not None and self.files.exists(image_id) and self._visible(
            self.files.owners(image_id), identity)

    def get(self, image_id: str, identity: Optional[Identity] = None) -> StoredImage:
        """The image, read back from the state directory when it was evicted or held before
        a restart; 404 when absent or not visible to ``identity`` (None: the server itself)."""
        with self._lock:
            image = self._images.get(image_id)
            if image is not None:
                self._images.move_to_end(image_id)
        if image is None and self.shared is not None:
            image = self._from_shared(image_id, identity)
        if image is None:
            # Whose it is comes from its owners file: nobody else makes the server read it back.
            if self.files is None or not self._visible(self.files.owners(image_id), identity):
                raise not_found()
            image = self._load(image_id)
        if not self._visible(image.owners, identity):
            owners = self.shared.owners(image_id) if self.shared is not None else None
            if owners is None or not self._visible(owners, identity):
                raise not_found()
            image.owners |= owners  # uploaded by this user through another worker
        return image

    def _from_shared(self, image_id: str, identity: Optional[Identity]) -> Optional[StoredImage]:
        """The cluster's copy of an image this process does not hold (None: the cluster has none)."""
        owners = self.shared.owners(image_id)
        if owners is None:
            return None
        if not self._visible(owners, identity):
            raise not_found()
        image = self.shared.fetch(image_id)
        if image is None:
            return None
        reserved = self.reserve(image.nbytes, "this image")
        with self._lock:
            existing = self._images.get(image_id)
            if existing is None:
                self._images[image_id] = image
        if existing is not None:
            self.budget.release(reserved)
            return existing
        self._write_copy(image)
        return image

    def _write_copy(self, image: StoredImage) -> None:
        """Keep an image that came from the cluster in this server's state directory too, so
        that its sessions find it after a restart even once the cluster's store dropped it.
        A failed write leaves the image usable (the cluster still holds it): logged only."""
        if self.files is None or self.files.exists(image.image_id):
            return
        writer = self.files.writer(image.image_id)
        try:
            writer.write(wire.encode(image.array, {"ijk_to_ras": image.ijk_to_ras.tolist(),
                                                   "modality": image.modality}))
            writer.commit(image.owners)
        except DomainError as error:
            log.warning("an image from the cluster's store was not written to the state directory: %s",
                        error.message)

    def _load(self, image_id: str) -> StoredImage:
        if self.files is None or not self.files.exists(image_id):
            raise not_found()
        with self._load_lock:
            with self._lock:
                if image_id in self._images:
                    return self._images[image_id]
            reserved = []

            def on_header(header: wire.Header) -> None:
                reserved.append(self.reserve(header.nbytes, "this image (read back from disk)"))

            try:
                header, array = self.files.read(image_id, on_header)
            except (OSError, wire.WireFormatError) as error:
                for nbytes in reserved:
                    self.budget.release(nbytes)
                log.error("a stored image could not be read back (%s)", error)
                raise not_found() from None
            ijk_to_ras, modality = check_image_header(header, self.settings)
            array.setflags(write=False)
            image = StoredImage(image_id, array, ijk_to_ras, modality, self.files.owners(image_id))
            with self._lock:
                self._images[image_id] = image
        return image

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(image.nbytes for image in self._images.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._images)

    # -- room --------------------------------------------------------------------------------

    def _pinned(self) -> Set[str]:
        now = self._clock()
        fresh = {image_id for image_id, when in self._fresh.items() if now - when < UPLOAD_GRACE_S}
        self._fresh = {image_id: self._fresh[image_id] for image_id in fresh}
        return set(self._in_use()) | fresh

    def reserve(self, nbytes: int, what: str) -> int:
        """Reserve ``nbytes`` in the images budget, evicting unpinned images (least recently
        used first) when that makes room; 503 when it does not, 413 when it never could."""
        self.budget.check_size(nbytes, what)
        evicted = []
        with self._lock:
            if not self.budget.fits(nbytes):
                pinned = self._pinned()
                for image_id in list(self._images):
                    if self.budget.fits(nbytes):
                        break
                    if image_id not in pinned:
                        self.budget.release(self._images.pop(image_id).nbytes)
                        evicted.append(image_id)
        for image_id in evicted:
            if self.on_evict is not None:
                self.on_evict(image_id)
        if evicted:
            log.info("dropped %d cached image(s) from memory to make room", len(evicted))
            return_memory_to_system()
        return self.budget.reserve(nbytes, what)

    def _add(self, image: StoredImage, reserved: int) -> StoredImage:
        """Store a decoded upload (its bytes already reserved); an image that arrived twice
        is kept once, with both uploaders as owners."""
        if self.shared is not None:
            image = self.shared.publish(image)  # the cluster's copy, with every owner
        with self._lock:
            existing = self._images.get(image.image_id)
            if existing is None:
                self._images[image.image_id] = image
                self._fresh[image.image_id] = self._clock()
                return image
            existing.owners |= image.owners
            self._fresh[image.image_id] = self._clock()
        self.budget.release(reserved)
        return existing

    def holds_in_memory(self, image_id: str) -> bool:
        with self._lock:
            return image_id in self._images

    def add_owner(self, image_id: str, identity: Identity) -> None:
        if self.shared is not None:
            self.shared.add_owner(image_id, identity.owner)
        image = self.get(image_id)
        if identity.owner not in image.owners:
            self.write_owners(image_id, image.owners | {identity.owner})
            image.owners.add(identity.owner)

    def write_owners(self, image_id: str, owners: Set[str]) -> None:
        """Persist an image's owners; 503 when the state directory refuses."""
        if self.files is None:
            return
        try:
            self.files.set_owners(image_id, owners)
        except OSError as error:
            self.files.state.report(error)
            raise storage_error(error, "this image") from None

    def collect_files(self, referenced: Set[str]) -> int:
        """Delete stored files of images neither in memory nor ``referenced`` by a session."""
        if self.files is None:
            return 0
        with self._lock:
            keep = set(self._images) | set(referenced)
        gone = [image_id for image_id in self.files.ids() if image_id not in keep]
        for image_id in gone:
            self.files.delete(image_id)
        return len(gone)

    def forget(self, image_id: str) -> None:
        """Drop an image from memory now (tests, and an image whose file is gone)."""
        with self._lock:
            image = self._images.pop(image_id, None)
        if image is not None:
            self.budget.release(image.nbytes)

    def new_upload(self, image_id: str, identity: Identity) -> "ImageUpload":
        return ImageUpload(self, image_id, identity)


class SharedImages(Protocol):
    """Images stored once for a cluster (see :mod:`slicerfm_backend.cluster.images`)."""

    def owners(self, image_id: str) -> Optional[Set[str]]:
        """The image's owners, or None when the cluster does not hold it."""

    def fetch(self, image_id: str) -> Optional[StoredImage]:
        """The image (read-only, shared memory where possible) with its owners, or None."""

    def publish(self, image: StoredImage) -> StoredImage:
        """Store a new upload for the cluster; returns the copy to keep, with every owner."""

    def add_owner(self, image_id: str, owner: str) -> None:
        """Another identity proved it holds the image."""


class ImageUpload:
    """One upload in progress: ``feed`` it the body piece by piece, then ``finish()``; or
    ``abort()``, which frees everything it held."""

    def __init__(self, store: ImageStore, image_id: str, identity: Identity):
        self.store = store
        self.image_id = image_id
        self.identity = identity
        self.received = 0
        self._geometry = None
        self._reserved = 0
        self._writer = store.files.writer(image_id) if store.files is not None else None
        self._decoder: Optional[wire.MessageDecoder] = wire.MessageDecoder(on_header=self._on_header)

    def _on_header(self, header: wire.Header) -> None:
        self._geometry = check_image_header(header, self.store.settings)
        self._reserved = self.store.reserve(header.nbytes, "this image")

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        limit = self.store.settings.max_upload_bytes
        if self.received > limit:
            raise too_large(f"upload exceeds this server's limit of {limit:,} bytes (SLICERFM_MAX_UPLOAD_BYTES)")
        problem = None
        try:
            self._decoder.feed(data)
        except wire.WireFormatError as error:
            problem = str(error)
        if problem is not None:  # raised outside the handler: no traceback keeps the decoder alive
            raise corrupted(f"the upload is not a valid SlicerFM image message: {problem}")
        if self._writer is not None:
            self._writer.write(data)

    def finish(self) -> StoredImage:
        problem = None
        try:
            header, array = self._decoder.finish()
        except wire.WireFormatError as error:
            problem = str(error)
        if problem is not None:
            raise corrupted(f"the upload is incomplete or corrupted: {problem}")
        ijk_to_ras, modality = self._geometry
        computed = geometry.image_id(header.dtype, header.shape, ijk_to_ras, header.sha256)
        if computed != self.image_id:
            raise corrupted("the image id in the URL does not match the uploaded geometry and voxels")
        check_finite(array)
        array.setflags(write=False)
        image = StoredImage(self.image_id, array, ijk_to_ras, modality, {self.identity.owner})
        if self.store.holds_in_memory(self.image_id):  # this upload proved its sender holds it
            self.abort()
            self.store.add_owner(self.image_id, self.identity)
            return self.store.get(self.image_id)
        if self._writer is not None:
            files = self.store.files
            if files.exists(self.image_id):  # on disk from before: keep that file, add the owner
                self._writer.abort()
                image.owners |= files.owners(self.image_id)
                self.store.write_owners(self.image_id, image.owners)
            else:
                self._writer.commit(image.owners)
        self._decoder, reserved, self._reserved = None, self._reserved, 0
        return self.store._add(image, reserved)

    def abort(self) -> None:
        """Free the partly decoded array, its reservation and its partial file."""
        self._decoder = None
        if self._reserved:
            self.store.budget.release(self._reserved)
            self._reserved = 0
        if self._writer is not None:
            self._writer.abort()
        return_memory_to_system()
