"""Images stored once for the cluster, in Ray's object store.

:class:`ImageDirectory` (one named Ray actor) maps content ids to object references of
:class:`~slicerfm_backend.imaging.StoredImage` objects it put into the object store itself,
so it owns them: an image outlives the worker that received the upload. It keeps at most
``budget_bytes`` of images, dropping the least recently used (a worker that holds one
keeps using its copy; a new attach elsewhere answers ``image_not_found`` and the client
uploads it again).

:class:`ClusterImages` is a worker's view of it, the ``shared`` tier of the worker's own
:class:`~slicerfm_backend.image_store.ImageStore`: an upload is published once, and an id
the worker does not hold is fetched from the object store -- a read-only array in shared
memory on the same machine, copied once per machine by Ray otherwise.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Set

from ..imaging import StoredImage

log = logging.getLogger(__name__)


class ImageDirectory:
    """Content id -> object reference and owners, least recently used first out past
    ``budget_bytes``. ``owners``: the identities that uploaded an image (the server's
    per-user access; an upload of the same image through another worker adds its sender).

    References travel wrapped in a list so that Ray hands over the reference, not the image.
    """

    def __init__(self, budget_bytes: int):
        self.budget_bytes = int(budget_bytes)
        self._entries: "OrderedDict[str, list]" = OrderedDict()  # id -> [ref, nbytes, owners]

    def owners(self, image_id: str) -> Optional[Set[str]]:
        """The image's owners, or None when the cluster does not hold it."""
        entry = self._entries.get(image_id)
        return None if entry is None else set(entry[2])

    def fetch(self, image_id: str) -> Optional[List[Any]]:
        """``[reference, owners]`` of a held image, or None."""
        entry = self._entries.get(image_id)
        if entry is None:
            return None
        self._entries.move_to_end(image_id)
        return [entry[0], set(entry[2])]

    def store(self, image: StoredImage) -> List[Any]:
        """Keep ``image`` (arrived as an argument) in the object store, owned here; an id
        held already keeps its first copy and gains the new owners. ``[reference, owners]``."""
        import ray

        entry = self._entries.get(image.image_id)
        if entry is None:
            entry = self._entries[image.image_id] = [ray.put(image), image.nbytes, set()]
        entry[2] |= set(getattr(image, "owners", ()) or ())
        self._entries.move_to_end(image.image_id)
        self._evict(keep=image.image_id)
        return [entry[0], set(entry[2])]

    def add_owner(self, image_id: str, owner: str) -> None:
        entry = self._entries.get(image_id)
        if entry is not None:
            entry[2].add(owner)

    def _evict(self, keep: str) -> None:
        total = sum(entry[1] for entry in self._entries.values())
        for image_id in list(self._entries):
            if total <= self.budget_bytes:
                break
            if image_id == keep:
                continue
            total -= self._entries.pop(image_id)[1]
            log.info("dropped an image from the cluster's store (budget %d bytes)", self.budget_bytes)

    def stats(self) -> Dict[str, int]:
        return {"images": len(self._entries), "bytes": sum(entry[1] for entry in self._entries.values()),
                "budget_bytes": self.budget_bytes}


class ClusterImages:
    """A worker's side of :class:`ImageDirectory` (the protocol
    :class:`~slicerfm_backend.image_store.SharedImages`); blocking calls, made from the
    server's worker threads."""

    def __init__(self, directory):
        self.directory = directory

    def owners(self, image_id: str) -> Optional[Set[str]]:
        import ray

        return ray.get(self.directory.owners.remote(image_id))

    def fetch(self, image_id: str) -> Optional[StoredImage]:
        import ray

        found = ray.get(self.directory.fetch.remote(image_id))
        return None if found is None else _with_owners(ray.get(found[0]), found[1])

    def publish(self, image: StoredImage) -> StoredImage:
        import ray

        reference, owners = ray.get(self.directory.store.remote(image))
        return _with_owners(ray.get(reference), owners)  # the shared copy; the upload's array can go

    def add_owner(self, image_id: str, owner: str) -> None:
        import ray

        ray.get(self.directory.add_owner.remote(image_id, owner))


def _with_owners(image: StoredImage, owners: Set[str]) -> StoredImage:
    if hasattr(image, "owners"):
        image.owners = set(owners)
    return image
