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
from typing import Any, Dict, List, Optional

from ..imaging import StoredImage

log = logging.getLogger(__name__)


class ImageDirectory:
    """Content id -> object reference, least recently used first out past ``budget_bytes``.

    References travel wrapped in a list so that Ray hands over the reference, not the image.
    """

    def __init__(self, budget_bytes: int):
        self.budget_bytes = int(budget_bytes)
        self._entries: "OrderedDict[str, tuple]" = OrderedDict()  # id -> (ref, nbytes)

    def contains(self, image_id: str) -> bool:
        return image_id in self._entries

    def fetch(self, image_id: str) -> Optional[List[Any]]:
        entry = self._entries.get(image_id)
        if entry is None:
            return None
        self._entries.move_to_end(image_id)
        return [entry[0]]

    def store(self, image: StoredImage) -> List[Any]:
        """Keep ``image`` (arrived as an argument) in the object store, owned here; an id
        stored already keeps its first copy."""
        import ray

        existing = self.fetch(image.image_id)
        if existing is not None:
            return existing
        self._entries[image.image_id] = (ray.put(image), image.nbytes)
        self._evict(keep=image.image_id)
        return [self._entries[image.image_id][0]]

    def _evict(self, keep: str) -> None:
        total = sum(nbytes for _, nbytes in self._entries.values())
        for image_id in list(self._entries):
            if total <= self.budget_bytes:
                break
            if image_id == keep:
                continue
            total -= self._entries.pop(image_id)[1]
            log.info("dropped image %s… from the cluster's store (budget %d bytes)", image_id[:12], self.budget_bytes)

    def stats(self) -> Dict[str, int]:
        return {"images": len(self._entries), "bytes": sum(n for _, n in self._entries.values()),
                "budget_bytes": self.budget_bytes}


class ClusterImages:
    """A worker's side of :class:`ImageDirectory` (the protocol
    :class:`~slicerfm_backend.image_store.SharedImages`); blocking calls, made from the
    server's worker threads."""

    def __init__(self, directory):
        self.directory = directory

    def contains(self, image_id: str) -> bool:
        import ray

        return bool(ray.get(self.directory.contains.remote(image_id)))

    def fetch(self, image_id: str) -> Optional[StoredImage]:
        import ray

        refs = ray.get(self.directory.fetch.remote(image_id))
        return None if refs is None else ray.get(refs[0])

    def publish(self, image: StoredImage) -> StoredImage:
        import ray

        refs = ray.get(self.directory.store.remote(image))
        return ray.get(refs[0])  # the shared copy; the upload's own array can go
