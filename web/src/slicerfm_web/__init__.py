"""SlicerFM in the browser: the Slicer module's Logic on trame-slicer, one scene per tab.

Two kinds of process:

* the **gateway** (:mod:`slicerfm_web.gateway`, the ``slicerfm-web`` command): one aiohttp
  server on 127.0.0.1 by default. It checks the web access token (required on any other
  address), gives every new browser tab a **tab process** of its own and forwards that
  tab's HTTP requests and websocket to it under ``/t/<tab id>/``. With ``--local`` it also
  starts and watches one ``slicerfm-backend`` process on loopback, the way the Slicer
  module's local mode does (:class:`slicerfm_client.launcher.LocalBackend`).
* a **tab process** (:mod:`slicerfm_web.tab`): a trame server holding one MRML scene
  (``trame_slicer.core.SlicerApp``), slice and 3D views streamed as images, and the Slicer
  module's Logic from ``SlicerFMLib`` (the same code the module runs in Slicer) with its
  own backend session. It ends when its tab has been closed for ``--tab-grace-s`` seconds,
  releasing the backend session; nothing of one tab is visible to another.

Why a process per tab: MRML's displayable-manager factories are process-wide singletons,
VTK calls hold the GIL, and a crash or a large volume in one tab must not touch another.
"""

__version__ = "0.1.0"
