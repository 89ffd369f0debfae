"""The backend on a Ray cluster: many GPUs and machines behind one URL (docs/SCALE.md).

- ``launch.py``    ``serve --ray [ADDRESS]``: join or start Ray, start the workers, run the ingress
- ``settings.py``  :class:`ClusterSettings` (``SLICERFM_RAY_*``): workers, GPUs per worker and job
- ``pool.py``      the named actors (image directory, workers) and an ingress's view of them
- ``worker.py``    :class:`SessionWorker`: the single-process server in an actor, on its device
- ``asgi_call.py`` calling that server's ASGI application in-process (requests, lifespan)
- ``router.py``    which worker answers a request; 410, 503 restarting or failed jobs when a worker is gone
- ``fanout.py``    what every worker is asked: an admin's list of sessions, ``/metrics`` (``metrics.py``)
- ``ingress.py``   the ASGI front that streams requests to the workers (and drains on SIGTERM)
- ``images.py``    images stored once for the cluster (Ray's object store)
- ``jobs.py``      registration and automatic-segmentation jobs as Ray tasks
- ``serve_app.py`` the same ingress as a Ray Serve application (KubeRay's RayService)

Ray is imported lazily: the base server never needs it.
"""
