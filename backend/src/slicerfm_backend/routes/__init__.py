"""The HTTP endpoints, one router per feature (included by :func:`slicerfm_backend.app.make_app`).

- ``info.py``         ``/api/info`` (versions, limits), ``/api/engines``
- ``sessions.py``     claim, heartbeat, release a session
- ``images.py``       ``HEAD|PUT /api/images/{id}`` (streamed, validated uploads), attach
- ``segments.py``     interact, seed, undo/redo, reset, delete, lock, label map
- ``jobs.py``         job status, cancel, result arrays
- ``registration.py`` ``POST /api/register`` (-> ``registration/service.py``)
- ``auto_segment.py`` ``POST /api/segment/auto``, the class list (-> ``auto_segment/service.py``)
- ``bodies.py``       size-limited body readers

Routes parse and answer; the work is in the services, and errors are domain errors mapped
to statuses by :mod:`slicerfm_backend.http_errors`.
"""
