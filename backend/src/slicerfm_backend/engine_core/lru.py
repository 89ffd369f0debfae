"""A least-recently-used cache with a byte cap and hit/miss counters, for engines' caches.

Network engines keep image embeddings in one per image (SAM-Med3D per 128³ crop, MedSAM and
SAM per slice), so that a refinement click whose input was already encoded costs one
prompt-encoder + mask-decoder pass; SAM-Med3D also keeps its per-segment step states there.
``nbytes`` counts what a value holds (numpy arrays, torch tensors, containers of them).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Hashable, Optional


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
