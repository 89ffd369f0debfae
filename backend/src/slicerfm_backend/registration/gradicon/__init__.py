"""The ``unigradicon`` and ``multigradicon`` registration engines (pip ``unigradicon``).

- ``engine.py``        :class:`UniGradICONEngine`, :class:`MultiGradICONEngine`
- ``preprocess.py``    intensities to [0, 1], masks, resize to the network grid
- ``affine.py``        optional affine pre-alignment (SimpleITK)
- ``run.py``           forward pass or instance optimisation on a copy of the network
- ``network_field.py`` the network's map as a displacement field in RAS mm
- ``model.py``         the network and strict checkpoint loading (torch: lazy)

Importing this package does not import torch; :meth:`UniGradICONEngine.load` does.
"""

from .engine import MultiGradICONEngine, UniGradICONEngine

__all__ = ["MultiGradICONEngine", "UniGradICONEngine"]
