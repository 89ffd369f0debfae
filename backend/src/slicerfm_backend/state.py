"""Everything one running server holds, created by :func:`slicerfm_backend.app.make_app`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, Optional

from .audit import AuditLog
from .auth.authenticator import Authenticator
from .drain import Drain
from .engine_core.manager import EngineManager
from .engine_core.served import engine_managers
from .engines.caches import EngineCaches
from .image_store import ImageStore
from .jobs import JobManager
from .memory import Budget
from .metrics import Metrics
from .persistence.image_files import ImageFiles
from .persistence.state_dir import StateDirectory
from .scheduler import DeviceSchedulers
from .sessions import SessionManager
from .settings import Settings

log = logging.getLogger(__name__)


@dataclass
class ServerState:
    """``engines``/``registration``: the served engines of each family; ``devices``: one
    scheduler per device, shared by clicks and jobs; ``caches``: the interactive engines'
    per-image caches; ``budgets``: the byte budgets (images, sessions, job_results);
    ``state_dir``: the open state directory (None: everything in memory)."""

    settings: Settings
    auth: Authenticator
    sessions: SessionManager
    images: ImageStore
    engines: EngineManager
    registration: EngineManager
    jobs: JobManager
    devices: DeviceSchedulers
    caches: EngineCaches
    budgets: Dict[str, Budget]
    metrics: Metrics
    audit: AuditLog
    drain: Drain
    state_dir: Optional[StateDirectory] = None

    @classmethod
    def create(cls, settings: Settings) -> "ServerState":
        engines, registration = engine_managers(settings)
        auth = Authenticator.from_settings(settings)
        metrics = Metrics()
        state_dir = None
        if settings.state_dir is not None:
            state_dir = StateDirectory(settings.state_dir, on_write_error=lambda _: metrics.state_errors.inc()).open()
        limits = settings.budgets()
        budgets = {"images": Budget("images", limits["images"], "SLICERFM_IMAGE_CACHE_BYTES"),
                   "sessions": Budget("sessions", limits["sessions"], "SLICERFM_SESSION_BYTES"),
                   "job_results": Budget("job results", limits["job_results"], "SLICERFM_JOB_RESULT_BYTES")}
        devices = DeviceSchedulers(on_wait=metrics.observe_wait)
        caches = EngineCaches()
        sessions = SessionManager(settings, state=state_dir,
                                  byte_limit=limits["sessions"] // settings.max_sessions)
        jobs = JobManager(devices, max_jobs=settings.max_jobs, ttl_s=settings.job_ttl_s,
                          max_jobs_per_user=settings.max_jobs_per_user, results=budgets["job_results"],
                          caches=caches)
        images = ImageStore(settings, budgets["images"], ImageFiles(state_dir) if state_dir else None,
                            in_use=lambda: sessions.images_in_use() | jobs.images_in_use())
        images.on_evict = caches.forget_image
        # A session waiting for its propagation job is at work (propagation.py).
        sessions.busy = lambda session: any(jobs.is_pending(job) for job in session.propagations.values())
        audit = AuditLog(state_dir.audit_log if state_dir else None)
        sessions.on_end = lambda session, why: audit.event(session.user, "session.end", why=why,
                                                           session=session.id)
        state = cls(settings, auth, sessions, images, engines, registration, jobs, devices, caches, budgets,
                    metrics, audit, Drain(), state_dir)
        metrics.attach(state)
        sessions.restore()
        return state

    def budget_figures(self) -> Dict[str, dict]:
        """``{budget: {"used_bytes", "limit_bytes"}}``; sessions' use is counted live."""
        figures = {name: budget.describe() for name, budget in self.budgets.items()}
        figures["sessions"]["used_bytes"] = self.sessions.nbytes()
        return figures

    def housekeeping(self) -> None:
        """The reaper's round: expired sessions, sessions of revoked users, old jobs, files
        of images no session needs."""
        self.sessions.reap()
        users = self.auth.users
        if users is not None and users.enabled:
            allowed = {identity.owner for identity in users.active_identities()}
            self.sessions.end_where(lambda s: s.owner.startswith("user:") and s.owner not in allowed,
                                    "ended: its user's token was revoked or expired")
        self.jobs.reap()
        self.images.collect_files(self.sessions.images_in_use())

    def close(self) -> None:
        """Server shutdown: stop jobs, snapshot sessions, sync and unlock the state directory."""
        self.jobs.shutdown()
        self.sessions.flush()
        if self.state_dir is not None:
            self.state_dir.close()
        self.audit.close()
