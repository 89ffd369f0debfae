"""SlicerFM backend: the inference server behind the SlicerFM Slicer module.

Map (docs/ARCHITECTURE.md has the seams, threads and devices):

- HTTP layer (the only FastAPI importers): ``app.py`` (factory), ``deps.py`` (token,
  version, session), ``http_errors.py`` (error code -> status), ``routes/``
- domain errors: ``errors.py``; settings and server state: ``settings.py``, ``state.py``
- services: ``sessions.py``, ``image_store.py`` + ``imaging.py`` (uploads, geometry),
  ``segments.py`` + ``sparse_mask.py`` (segments, locks, undo), ``interaction.py`` (one
  click), ``propagation.py`` (slice engines' propagation jobs), ``jobs.py`` +
  ``fair_lock.py`` (background jobs, device fairness),
  ``auto_segment/`` and ``registration/service.py`` (the job features)
- engines: ``engine_core/`` (shared base, registry, manager, devices, options),
  ``engines/`` (segmentation), ``registration/``; their weights: ``weights/``
- command line: ``cli.py`` loops over the subcommand modules (``serve.py``,
  ``engine_core/cli.py``, ``evaluation/cli.py``, ``weights/cli.py``, ``auto_segment/cli.py``,
  ``registration/cli.py``); ``evaluation/`` simulates users
"""

__version__ = "0.1.0"
