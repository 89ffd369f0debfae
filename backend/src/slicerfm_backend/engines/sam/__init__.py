"""The ``sam`` engine: Meta's Segment Anything (ViT-B, -L or -H) on slices, with propagation.

- ``engine.py`` :class:`SamEngine`: capabilities, the ``model`` option, weights, loading
- ``model.py``  SAM's own preprocessing (longest side, pixel mean/std, padding) and mask
  output around segment-anything's network (torch)

Slices, prompts, propagation and caches are shared with ``medsam`` in :mod:`..slicewise`.
Importing this package does not import torch; :meth:`SamEngine.load` does.
"""

from .engine import SamEngine

__all__ = ["SamEngine"]
