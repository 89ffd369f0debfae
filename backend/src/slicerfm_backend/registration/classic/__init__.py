"""The built-in ``classic`` registration engine (CPU, no weights, SimpleITK).

- ``engine.py``    :class:`ClassicRegistrationEngine`: affine, then demons, then unfolding
- ``intensity.py`` per-modality scaling, masks, working box
- ``affine.py``    the affine stage (Mattes mutual information)
- ``demons.py``    the multi-resolution demons stage
- ``unfold.py``    local smoothing where the Jacobian determinant is <= 0
- ``progress.py``  progress and cancellation from inside SimpleITK filters
"""

from .engine import ClassicRegistrationEngine

__all__ = ["ClassicRegistrationEngine"]
