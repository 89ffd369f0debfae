"""The built-in ``classic`` segmentation engine (CPU, no weights).

- ``engine.py``    :class:`ClassicEngine`: prompts -> local edits of one segment
- ``grid.py``      the ~1 mm and ~2 mm working grids (block-averaged, filled lazily)
- ``intensity.py`` intensity classes of clicks and boxes (CT in HU, MR relative to its range)
- ``region.py``    ``grow`` (positive click / box) and ``cut`` (negative click) on one ROI,
                   with the reach styles of small and large structures
"""

from .engine import ClassicEngine

__all__ = ["ClassicEngine"]
