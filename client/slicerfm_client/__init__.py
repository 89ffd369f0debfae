"""Torch-free client library for the SlicerFM backend.

No slicer, qt, vtk or torch imports: the Slicer module ships this package and the backend's
tests use it. ``protocol``, ``wire`` and ``geometry`` are shared with the server.

- ``protocol.py``     version, paths, headers, error codes, job states, modality names
- ``wire.py``         the binary message format (+ ``slice_delta.py``, its integer codec)
- ``geometry.py``     ``ijk_to_ras`` validation, content ids, boxes of voxels
- ``client.py``       :class:`SlicerFMClient`: sessions, heartbeats, uploads, interactions
- ``jobs.py``         background jobs: submit, poll, cancel, result arrays
- ``registration.py``, ``auto_segment.py``  the job features as one call each
- ``errors.py``       typed errors from the server's error codes
- ``launcher.py``     a local backend process on loopback
"""

__version__ = "0.1.0"
