"""Per-image caches of the interactive engines (``SegmentationRequest.cache``).

Each (engine, image) pair gets a private dict kept between interactions (embeddings,
working grids); the least recently used images are dropped past ``max_images``, and an
image's caches go when the image store evicts it. Each engine bounds what it keeps in its
dict (e.g. sam-med3d's byte-capped embedding LRU).
"""

from __future__ import annotations

import threading
from collections import OrderedDict


class EngineCaches:
    def __init__(self, max_images: int = 8):
        self.max_images = max_images
        self._caches: "OrderedDict[tuple, dict]" = OrderedDict()
        self._lock = threading.Lock()

    def cache_for(self, engine: str, image_id: str) -> dict:
        """The engine's private cache for one image (LRU over images)."""
        key = (engine, image_id)
        with self._lock:
            cache = self._caches.get(key)
            if cache is None:
                cache = self._caches[key] = {}
            self._caches.move_to_end(key)
            while len(self._caches) > self.max_images:
                self._caches.popitem(last=False)
            return cache

    def clear(self) -> None:
        """Drop every cache (after the device ran out of memory)."""
        with self._lock:
            self._caches.clear()

    def forget_image(self, image_id: str) -> None:
        with self._lock:
            for key in [k for k in self._caches if k[1] == image_id]:
                del self._caches[key]
