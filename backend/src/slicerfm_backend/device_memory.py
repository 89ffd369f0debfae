"""Running out of GPU memory: recognising it, freeing what can be freed, telling the user.

An engine that runs out of device memory (``torch.cuda.OutOfMemoryError``, or the same
condition reported as a RuntimeError by other backends) must not take the server down:
the interaction or job is answered 503 ``out_of_memory`` with Retry-After, the engines'
per-image caches (embeddings, working grids) are dropped and torch's cached blocks are
given back, so the next try (or the next user) finds the memory free.
"""

from __future__ import annotations

import gc
import logging
import sys
from typing import Dict, List

from slicerfm_client import protocol

from .errors import DomainError, EngineError

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5


def is_out_of_memory(error: BaseException) -> bool:
    """True for a device (GPU/MPS) out-of-memory error; host ``MemoryError`` is not one, nor
    an :class:`EngineError` (the engine already told the user what to do)."""
    if isinstance(error, EngineError):
        return False
    torch = sys.modules.get("torch")
    oom = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None) if torch is not None else None
    if oom is not None and isinstance(error, oom):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def free_device_memory(caches=None) -> None:
    """Drop the engines' per-image caches and give torch's cached device memory back."""
    if caches is not None:
        caches.clear()
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def out_of_memory(engine: str, device: str) -> DomainError:
    return DomainError(
        protocol.ERROR_OUT_OF_MEMORY,
        f"engine {engine!r} ran out of memory on {device} (other users' work may hold it); the "
        f"server freed its caches and keeps running, and your segments are unchanged. Try again "
        f"in a few seconds; if it keeps happening, ask the administrator to serve fewer or "
        f"smaller models on this device (e.g. sam-med3d.max_crops)", retry_after_s=RETRY_AFTER_S)


def gpu_memory() -> List[Dict[str, object]]:
    """``[{"device", "allocated", "reserved", "total"}]`` in bytes for each CUDA device torch
    has initialised; empty without torch or CUDA (never initialises CUDA itself)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return []
    rows = []
    for index in range(torch.cuda.device_count()):
        rows.append({"device": f"cuda:{index}", "allocated": torch.cuda.memory_allocated(index),
                     "reserved": torch.cuda.memory_reserved(index),
                     "total": torch.cuda.get_device_properties(index).total_memory})
    return rows
