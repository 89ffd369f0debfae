"""Everything one running server holds, created by :func:`slicerfm_backend.app.make_app`."""

from __future__ import annotations

from dataclasses import dataclass

from .engine_core.devices import DeviceLocks
from .engine_core.manager import EngineManager
from .engine_core.served import engine_managers
from .engines.caches import EngineCaches
from .image_store import ImageStore
from .jobs import JobManager
from .sessions import SessionManager
from .settings import Settings


@dataclass
class ServerState:
    """``engines``/``registration``: the served engines of each family; ``devices``: one fair
    lock per device, shared by clicks and jobs; ``caches``: the interactive engines'
    per-image caches."""

    settings: Settings
    sessions: SessionManager
    images: ImageStore
    engines: EngineManager
    registration: EngineManager
    jobs: JobManager
    devices: DeviceLocks
    caches: EngineCaches

    @classmethod
    def create(cls, settings: Settings) -> "ServerState":
        engines, registration = engine_managers(settings)
        devices = DeviceLocks()
        caches = EngineCaches()
        sessions = SessionManager(settings)
        jobs = JobManager(devices, max_jobs=settings.max_jobs, ttl_s=settings.job_ttl_s)
        images = ImageStore(settings, in_use=lambda: sessions.images_in_use() | jobs.images_in_use())
        images.on_evict = caches.forget_image
        # A session waiting for its propagation job is at work (propagation.py).
        sessions.busy = lambda session: any(jobs.is_pending(job) for job in session.propagations.values())
        return cls(settings, sessions, images, engines, registration, jobs, devices, caches)
