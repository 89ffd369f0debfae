"""What the benchmark scripts share; the implementation is in :mod:`slicerfm_backend.benchmark`."""

from __future__ import annotations

from slicerfm_backend.benchmark.common import data_folder, proc_status, require_data  # noqa: F401

DATA = data_folder()
"""The shared sample data: ``$SLICERFM_DATA``, else ``../shared/data`` beside the repository."""
