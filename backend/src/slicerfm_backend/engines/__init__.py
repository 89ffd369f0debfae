"""Segmentation engines: the interfaces, the registry and one package per engine.

- ``base.py``     the seams: :class:`~.base.Engine` (interactive: ``segment(request)``) and
                  :class:`~.base.AutoSegmentation` (automatic: classes, ``segment_auto``),
                  with the request, image, prompt and result types
- ``registry.py`` built-in names -> ``module:Class`` (the ``SEGMENTATION`` family)
- ``caches.py``   per-(engine, image) caches of the interactive engines
- ``classic/``    built in: CPU, no weights (intensity classes, region growing, watershed)
- ``sam_med3d/``  SAM-Med3D-turbo (points, boxes as points)
- ``vista3d/``    VISTA3D (automatic by class, point corrections)
- ``medsam/``, ``sam/``  MedSAM and SAM on slices, propagated as a job
- ``slicewise/``  what the slice engines share (not an engine: no registry names it)

What all engines share (device, options, weights) is in :mod:`slicerfm_backend.engine_core`;
adding one: docs/ARCHITECTURE.md, "Recipe: add an engine".
"""
