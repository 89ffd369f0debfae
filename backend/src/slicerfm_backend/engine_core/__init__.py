"""What both engine families share: base class, registry, manager, devices, options.

- ``base.py``     :class:`EngineBase` (name, capabilities, device, options, checkpoint,
                  weights status, load), the ``Progress`` and ``StepGuard`` types of long work
- ``registry.py`` :class:`Family`: names to ``module:Class``, plugins (``SLICERFM_ENGINE_PLUGINS``)
- ``manager.py``  :class:`EngineManager`: the served engines of one family, the load-error
                  mapping, :func:`split_options` (``--engine-option`` for both families)
- ``served.py``   :func:`engine_managers`: both families' managers from the settings
- ``devices.py``  ``auto`` (CUDA, MPS, CPU), the device an engine runs on, (shared out by scheduler.py)
- ``options.py``  option parsers (``positive_int``, ``choice``, ``on_off``, ``shape3``, ...)
- ``lru.py``      a byte-capped LRU for engines' per-image caches (embeddings, states)
- ``cli.py``      ``slicerfm-backend engines``

The families themselves: :mod:`slicerfm_backend.engines` (segmentation) and
:mod:`slicerfm_backend.registration`.
"""
