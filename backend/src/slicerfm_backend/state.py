"""Everything one running server holds, created by :func:`slicerfm_backend.app.make_app`."""

from __future__ import annotations

from dataclasses import dataclass

from .engines.registry import EngineManager
from .image_store import ImageStore
from .sessions import SessionManager
from .settings import Settings


@dataclass
class ServerState:
    settings: Settings
    sessions: SessionManager
    images: ImageStore
    engines: EngineManager

    @classmethod
    def create(cls, settings: Settings) -> "ServerState":
        sessions = SessionManager(settings)
        images = ImageStore(settings, in_use=sessions.images_in_use)
        engines = EngineManager(settings.engines, settings.device, weights_dir=str(settings.weights_dir),
                                checkpoints=settings.checkpoints)
        images.on_evict = engines.forget_image
        return cls(settings, sessions, images, engines)
