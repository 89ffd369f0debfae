"""SlicerFM backend: the inference server behind the SlicerFM Slicer module.

Map (docs/ARCHITECTURE.md has the seams, threads and devices):

- HTTP layer (the only FastAPI importers): ``app.py`` (factory), ``deps.py`` (identity,
  version, session), ``http_errors.py`` (error code -> status), ``http_middleware.py``
  (drain, access log, request metrics), ``routes/``
- domain errors: ``errors.py``; settings and server state: ``settings.py``, ``state.py``
- who is asking: ``auth/`` (shared token, users, OIDC; the ``users`` command)
- services: ``sessions.py`` + ``session.py`` (sessions and their operations),
  ``image_store.py`` + ``imaging.py`` (uploads, ownership, geometry), ``segments.py`` +
  ``sparse_mask.py`` + ``packed_mask.py`` (segments, locks, compressed undo),
  ``interaction.py`` (one click), ``propagation.py`` (slice engines' propagation jobs),
  ``scheduler.py`` (device slots: clicks first, round-robin between users), ``jobs.py`` +
  ``job_queue.py`` (background jobs),
  ``auto_segment/`` and ``registration/service.py`` (the job features)
- operations: ``memory.py`` (byte budgets), ``device_memory.py`` (GPU out of memory),
  ``persistence/`` (state directory: journals, snapshots, image files), ``drain.py``
  (SIGTERM), ``metrics.py``, ``log_setup.py``, ``audit.py``
- engines: ``engine_core/`` (shared base, registry, manager, devices, options),
  ``engines/`` (segmentation), ``registration/``; their weights: ``weights/``
- command line: ``cli.py`` loops over the subcommand modules (``serve.py``, ``auth/cli.py``,
  ``engine_core/cli.py``, ``evaluation/cli.py``, ``weights/cli.py``, ``auto_segment/cli.py``,
  ``registration/cli.py``, ``benchmark/cli.py``); ``evaluation/`` simulates users,
  ``benchmark/`` measures; ``progress.py`` draws the long commands' progress bars
"""

__version__ = "0.1.0"
