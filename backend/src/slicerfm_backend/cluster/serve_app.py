"""The cluster's ingress as a Ray Serve application, for KubeRay's RayService.

``import_path: slicerfm_backend.cluster.serve_app:app`` in a RayService's ``serveConfigV2``
(deploy/kubernetes/rayservice.yaml). Each Serve replica runs the same :class:`.ingress.Ingress`
as ``serve --ray`` does under uvicorn; the workers and the image directory are detached
named actors (created by the first replica, found by the others), so any number of
replicas route to the same sessions. Server settings come from ``SLICERFM_*`` variables
(the access token from ``SLICERFM_TOKEN`` or ``SLICERFM_TOKEN_FILE``), the layout from
``SLICERFM_RAY_*`` (:class:`.settings.ClusterSettings`).
"""

from __future__ import annotations

import logging
import os

from ray import serve

from ..settings import Settings
from .ingress import Ingress
from .pool import WorkerPool, start_actors, wait_ready
from .settings import ClusterSettings

log = logging.getLogger(__name__)


def settings_from_environment() -> Settings:
    """The server settings as ``serve`` reads them, with the token file a secret mounts."""
    token_file = os.environ.get("SLICERFM_TOKEN_FILE")
    if token_file and not os.environ.get("SLICERFM_TOKEN"):
        with open(token_file, encoding="utf-8") as handle:
            return Settings(token=handle.read().strip())
    return Settings()


@serve.ingress()
class SlicerFMIngress:
    """One ingress replica; its ASGI application is built at replica start."""

    def __init__(self):
        self.settings = settings_from_environment()
        self.cluster = ClusterSettings(detached=True)
        _, self.workers = start_actors(self.settings, self.cluster)

    async def __serve_build_asgi_app__(self):
        loads = await wait_ready(self.workers)
        log.info("SlicerFM ingress replica ready: %d workers on %s", len(loads),
                 ", ".join(load["device"] for load in loads))
        return Ingress(WorkerPool(self.workers), keeps_sessions=self.settings.state_dir is not None)


app = serve.deployment(name="slicerfm-ingress")(SlicerFMIngress).bind()
