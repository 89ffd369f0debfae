"""The built-in ``classic`` segmentation engine (CPU, no weights).

- ``engine.py``    :class:`ClassicEngine`: prompts -> local edits of one segment
- ``grid.py``      the ~2 mm working grid (block-averaged, filled lazily)
- ``intensity.py`` intensity classes of clicks and boxes (CT in HU, MR normalised)
- ``region.py``    ``grow`` (positive click / box) and ``cut`` (negative click) on one ROI
"""

from .engine import ClassicEngine

__all__ = ["ClassicEngine"]
