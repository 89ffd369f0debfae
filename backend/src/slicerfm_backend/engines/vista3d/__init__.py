"""The ``vista3d`` engine: MONAI VISTA3D (``vista3d132``) on CT, automatic and point prompts.

- ``engine.py`` :class:`Vista3DEngine`: options, loading, automatic run, corrections
- ``labels.py`` the label dictionary (ids, names, groups, colours, special classes)
- ``grid.py``   the 1.5 mm RAS working grid, foreground crop, intensity scaling and back
- ``auto.py``   sliding-window class-prompt inference with a bounded accumulator
- ``points.py`` point corrections through MONAI's point inferer
- ``model.py``  the network and strict checkpoint loading (torch, monai: lazy)

Importing this package does not import torch or monai; :meth:`Vista3DEngine.load` does.
"""

from .engine import Vista3DEngine

__all__ = ["Vista3DEngine"]
