"""Everything one running server holds, created by :func:`slicerfm_backend.app.make_app`."""

from __future__ import annotations

from dataclasses import dataclass

from .engines.registry import EngineManager
from .image_store import ImageStore
from .jobs import JobManager
from .registration.registry import RegistrationEngineManager
from .sessions import SessionManager
from .settings import Settings


@dataclass
class ServerState:
    settings: Settings
    sessions: SessionManager
    images: ImageStore
    engines: EngineManager
    jobs: JobManager
    registration: RegistrationEngineManager

    @classmethod
    def create(cls, settings: Settings) -> "ServerState":
        sessions = SessionManager(settings)
        engines = EngineManager(settings.engines, settings.device, weights_dir=str(settings.weights_dir),
                                checkpoints=settings.checkpoints, engine_options=settings.engine_options)
        jobs = JobManager(engines.device_lock, max_jobs=settings.max_jobs, ttl_s=settings.job_ttl_s)
        images = ImageStore(settings, in_use=lambda: sessions.images_in_use() | jobs.images_in_use())
        images.on_evict = engines.forget_image
        registration = RegistrationEngineManager(settings.registration_engines, settings.device,
                                                 weights_dir=str(settings.weights_dir),
                                                 checkpoints=settings.checkpoints)
        return cls(settings, sessions, images, engines, jobs, registration)
