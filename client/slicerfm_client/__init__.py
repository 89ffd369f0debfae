"""Torch-free client library for the SlicerFM backend.

No slicer, qt, vtk or torch imports: the Slicer module ships this package and the backend's
tests use it. ``protocol`` and ``wire`` are shared with the server.
"""

__version__ = "0.1.0"
