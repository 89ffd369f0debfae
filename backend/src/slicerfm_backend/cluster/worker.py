"""A cluster worker: the single-process server inside a Ray actor, pinned to its device.

:class:`SessionWorker` builds the same FastAPI application ``slicerfm-backend serve``
runs (:func:`slicerfm_backend.app.make_app`) and serves the requests the ingress forwards
by calling it in-process (:mod:`.asgi_call`), so sessions, segments, locks, limits, access
checks and the device's fair scheduling are the single-process code, unchanged. What the
worker adds is wiring:

* session ids start with ``w<index>-`` and job ids with ``w<index>x<incarnation>-``, so
  the ingress finds the worker from an id alone;
* its image store's shared tier is the cluster's (:mod:`.images`);
* its job manager runs engine work as Ray tasks (:mod:`.jobs`);
* its state directory is ``<state_dir>/worker-<index>``, its users those of ``<state_dir>``,
  its memory budget its part of the machine's (:func:`worker_settings`).

The actor is restarted by Ray when its process dies (``max_restarts``). With a state
directory the new incarnation reads its sessions back (the same leases go on); without
one it starts empty, so a session held by the old one answers 410 and the client claims a
new session and re-seeds its segments. Jobs die with their incarnation.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from ..errors import DomainError
from .asgi_call import BodyFeed, Lifespan, Reply, RequestHead, call, call_whole
from .images import ClusterImages
from .jobs import ClusterJobExecutor

log = logging.getLogger(__name__)


def session_prefix(index: int) -> str:
    return f"w{index}-"


def job_prefix(index: int, incarnation: str) -> str:
    return f"w{index}x{incarnation}-"


def in_ray_actor() -> bool:
    """Whether this runs inside a Ray actor (not in-process, as in tests)."""
    try:
        import ray

        return ray.is_initialized() and ray.get_runtime_context().get_actor_id() is not None
    except ImportError:
        return False


def node_id() -> Optional[str]:
    """The Ray node this runs on (None outside Ray)."""
    if not in_ray_actor():
        return None
    import ray

    return ray.get_runtime_context().get_node_id()


def rss_bytes() -> int:
    """This process's resident memory (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def worker_settings(settings, index: int, node_share: int = 1):
    """A worker's settings: its own state directory ``<state_dir>/worker-<index>`` (a state
    directory belongs to one server; a restarted worker finds its sessions there again),
    and, unless ``memory_budget_bytes`` is set (then it is each worker's), its ``node_share``-th
    part of the machine's default memory budget (``node_share`` workers run on one machine)."""
    from ..memory import machine_memory_bytes
    from ..settings import DEFAULT_MEMORY_SHARE

    update: Dict[str, Any] = {}
    if settings.state_dir is not None:
        update["state_dir"] = Path(settings.state_dir) / f"worker-{index}"
    if settings.memory_budget_bytes is None and node_share > 1:
        update["memory_budget_bytes"] = int(machine_memory_bytes() * DEFAULT_MEMORY_SHARE) // node_share
    return settings.model_copy(update=update) if update else settings


def share_users(state, top_state_dir: Optional[Path]) -> None:
    """Every worker reads the users of the server's state directory (where ``slicerfm-backend
    users`` writes them), not of its own ``worker-<index>`` directory."""
    if top_state_dir is not None and state.auth.users is not None:
        from ..auth.users import UserStore

        state.auth.users = UserStore(Path(top_state_dir))


class SessionWorker:
    """One worker: ``settings`` as for one server, ``index`` its place in the pool,
    ``directory`` the cluster's image directory actor, ``task_options`` the Ray resources
    of its job tasks."""

    def __init__(self, settings, index: int, directory, task_options: Dict[str, Any], node_share: int = 1):
        from ..app import make_app

        top_state_dir = settings.state_dir
        settings = worker_settings(settings, index, node_share)
        if in_ray_actor():  # its own process: log as `serve` does (text or JSON lines)
            from .. import log_setup

            log_setup.configure(settings.log_level, settings.log_format)
        self.index = index
        self.node = node_id()
        self.incarnation = secrets.token_hex(2)
        self.app = make_app(settings)
        state = self.app.state.slicerfm
        state.sessions.id_prefix = session_prefix(index)
        state.jobs.id_prefix = job_prefix(index, self.incarnation)
        state.images.shared = ClusterImages(directory)
        self.jobs = ClusterJobExecutor(settings, task_options)
        state.jobs.execute = self.jobs
        share_users(state, top_state_dir)
        self.state = state
        self._lifespan = Lifespan(self.app)
        self._started: Optional[asyncio.Future] = None
        self._streams: Dict[str, Tuple[BodyFeed, asyncio.Task]] = {}

    async def _start(self) -> None:
        if self._started is None:
            self._started = asyncio.ensure_future(self._lifespan.start())
        await asyncio.shield(self._started)

    async def ready(self) -> Dict[str, Any]:
        """Start the application (once); the worker's load."""
        await self._start()
        log.info("worker %d (incarnation %s) ready in process %d on %s", self.index, self.incarnation,
                 os.getpid(), self.state.engines.device)
        return await self.load()

    async def load(self) -> Dict[str, Any]:
        """What the ingress chooses by: sessions held, and who this is."""
        return {"index": self.index, "incarnation": self.incarnation, "sessions": len(self.state.sessions),
                "max_sessions": self.state.settings.max_sessions, "pid": os.getpid(), "node": self.node,
                "rss_bytes": rss_bytes(), "device": self.state.engines.device, "device_queue": self.device_queue()}

    def device_queue(self) -> Dict[str, int]:
        """Slots held and waiting (by priority) on this worker's device schedulers."""
        queue = {"busy": 0, "interactive": 0, "background": 0}
        for scheduler in self.state.devices.all():
            queue["busy"] += scheduler.busy()
            for priority, waiting in scheduler.depth().items():
                queue[priority] += waiting
        return queue

    async def handle(self, head: RequestHead, body: bytes) -> Reply:
        """One request whose whole body came along."""
        await self._start()
        return await call_whole(self.app, head, body)

    # -- a request whose body streams in (uploads, large seeds) -------------------------------

    async def open(self, stream_id: str, head: RequestHead) -> None:
        await self._start()
        feed = BodyFeed()
        self._streams[stream_id] = (feed, asyncio.ensure_future(call(self.app, head, feed)))

    async def push(self, stream_id: str, piece: bytes, more: bool) -> bool:
        """The next piece of the body; False when the answer is ready (send no more)."""
        feed, _ = self._streams[stream_id]
        return await feed.put(piece, more)

    async def finish(self, stream_id: str) -> Reply:
        _, task = self._streams.pop(stream_id)
        return await task

    async def abort(self, stream_id: str) -> None:
        """The client went away: the application sees a disconnect and frees the upload."""
        entry = self._streams.pop(stream_id, None)
        if entry is not None:
            feed, task = entry
            feed.disconnect()
            try:
                await task
            except Exception:  # noqa: BLE001 -- nobody waits for this answer
                pass

    async def abandon(self, leases) -> int:
        """End the sessions of these leases: a request of each was running when the
        previous incarnation died, so whether it was applied is unknown (the ingress told
        the client 410; it re-seeds a new session). How many were ended."""
        return await asyncio.to_thread(self._abandon, list(leases))  # ending waits for the session's lock

    def _abandon(self, leases) -> int:
        ended = 0
        for lease in leases:
            try:
                session = self.state.sessions.get(lease, activity=False)
            except DomainError:  # not here (no state directory, expired): nothing to end
                continue
            ended += self.state.sessions.end_where(lambda s, doomed=session: s is doomed,
                                                   "ended: a request of it was running when its worker died")
        return ended

    # -- jobs ----------------------------------------------------------------------------------

    async def job_progress(self, job_id: str, stage: str, done: int, total: int) -> bool:
        """From a job's Ray task: its progress; True when it should stop."""
        return self.jobs.progress(job_id, stage, done, total)

    async def job_step(self, job_id: str, begin: bool) -> bool:
        """From a job's Ray task on this worker's device: begin (after the device's waiting
        clicks) or end one device step; True when it should stop."""
        return await asyncio.to_thread(self.jobs.step, job_id, begin)

    async def shutdown(self) -> None:
        """Stop jobs and the reaper (the lifespan's end)."""
        await self._lifespan.stop()
