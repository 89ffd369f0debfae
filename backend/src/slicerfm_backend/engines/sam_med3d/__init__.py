"""The ``sam-med3d`` engine: SAM-Med3D-turbo point prompts on 128³ crops at 1.5 mm.

- ``engine.py``   :class:`SamMed3DEngine`: options, loading, one interaction
- ``pipeline.py`` crop geometry in RAS, resampling in, the general (oblique) paste back out
- ``logits.py``   low-resolution logits to masks where they are (CPU or GPU): touched faces,
                  the paste through per-axis index tables
- ``steps.py``    which crops, points and previous logits one step uses
- ``model.py``    the network from ``medim`` and strict checkpoint loading (torch, lazy)

Embeddings and step states are kept in ``engine_core/lru.py``'s byte-capped LRU.

Importing this package does not import torch; :meth:`SamMed3DEngine.load` does.
"""

from .engine import SamMed3DEngine

__all__ = ["SamMed3DEngine"]
