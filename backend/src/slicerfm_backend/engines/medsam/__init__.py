"""The ``medsam`` engine: MedSAM (ViT-B) on slices, a box on one slice becoming a 3-D segment.

- ``engine.py`` :class:`MedSamEngine`: capabilities, weights, loading
- ``model.py``  MedSAM's preprocessing and mask output around segment-anything's network (torch)

Slices, prompts, propagation and caches are shared with ``sam`` in :mod:`..slicewise`.
Importing this package does not import torch; :meth:`MedSamEngine.load` does.
"""

from .engine import MedSamEngine

__all__ = ["MedSamEngine"]
