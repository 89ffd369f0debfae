"""Per-image caches of the interactive engines (``SegmentationRequest.cache``), and the
byte-capped LRU the engines keep in them.

Each (engine, image) pair gets a private dict kept between interactions (embeddings,
working grids); the least recently used images are dropped past ``max_images``, and an
image's caches go when the image store evicts it. Each engine bounds what it keeps in its
dict with :class:`ByteLRU` (sam-med3d's crop embeddings, [1, 384, 8, 8, 8] float32 = 768 KiB
each, and its per-segment step states; the slice engines' per-slice embeddings): a refinement
click in a crop or slice already encoded then costs one decoder pass.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable, Optional


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

    def forget_image(self, image_id: str) -> None:
        with self._lock:
            for key in [k for k in self._caches if k[1] == image_id]:
                del self._caches[key]


def nbytes(value: Any) -> int:
    """Bytes held by a numpy array, a torch tensor, or a tuple/list/dict of them."""
    if isinstance(value, (tuple, list)):
        return sum(nbytes(v) for v in value)
    if isinstance(value, dict):
        return sum(nbytes(v) for v in value.values())
    size = getattr(value, "nbytes", None)
    return int(size) if size is not None else 64


class ByteLRU:
    """LRU map holding at most ``max_bytes`` (as :func:`nbytes` counts); the newest entry is
    always kept, even when it alone exceeds the cap. ``hits`` / ``misses`` count
    :meth:`get_or_compute` calls answered from the cache or computed."""

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self._items: "OrderedDict[Hashable, tuple]" = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def get(self, key: Hashable) -> Optional[Any]:
        """The value for ``key`` (marked as most recently used), or None; not counted."""
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: Hashable, value: Any) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.bytes -= old[1]
        size = nbytes(value)
        self._items[key] = (value, size)
        self.bytes += size
        while self.bytes > self.max_bytes and len(self._items) > 1:
            _, (_, dropped) = self._items.popitem(last=False)
            self.bytes -= dropped

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The cached value for ``key`` (a hit), else ``compute()`` stored under it (a miss)."""
        value = self.get(key)
        if value is not None:
            self.hits += 1
            return value
        self.misses += 1
        value = compute()
        self.put(key, value)
        return value
