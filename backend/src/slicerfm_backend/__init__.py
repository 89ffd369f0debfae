"""SlicerFM backend: the inference server behind the SlicerFM Slicer module."""

__version__ = "0.1.0"
