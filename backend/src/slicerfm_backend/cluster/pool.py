"""The cluster's named actors: the image directory and the session workers.

:func:`start_actors` creates them (or finds them: the names are fixed, so several ingress
processes share one set) with their Ray resources; Ray places the workers spread over the
nodes and restarts a worker whose process dies. :class:`WorkerPool` is an ingress's view:
which workers answer, and how many sessions each holds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set

from .settings import ClusterSettings, gpus_or_default

log = logging.getLogger(__name__)

DIRECTORY_NAME = "slicerfm-images"
WORKER_NAME = "slicerfm-worker-{}"
LOAD_TTL_S = 1.0  # an ingress asks the workers for their load at most this often
LOAD_TIMEOUT_S = 2.0  # a worker that does not answer this fast is skipped for new sessions
READY_TIMEOUT_S = 600.0  # first start: imports, and engines that load at start-up
HEAD_RESOURCE = "node:__internal_head__"  # Ray's resource marking its head node


def default_worker_count(cluster: ClusterSettings) -> int:
    """``cluster.workers``, else one per GPU in the cluster, else one per alive node."""
    import ray

    if cluster.workers:
        return cluster.workers
    gpus = int(ray.cluster_resources().get("GPU", 0))
    if gpus:
        return gpus
    return max(1, sum(1 for node in ray.nodes() if node.get("Alive")))


def actor_lifetime(cluster: ClusterSettings) -> Dict[str, Any]:
    return {"lifetime": "detached"} if cluster.detached else {}


def forwarded_environment() -> Dict[str, Any]:
    """``runtime_env`` carrying this process's ``SLICERFM_*`` variables that a worker or a
    job reads itself (engine plugins, ...) to the cluster's processes; the server settings
    travel as an object, and the access token only inside it."""
    env = {key: value for key, value in os.environ.items()
           if key.startswith("SLICERFM_") and key not in ("SLICERFM_TOKEN", "SLICERFM_RAY_ADDRESS")}
    return {"runtime_env": {"env_vars": env}} if env else {}


def on_the_head() -> Dict[str, Any]:
    """Scheduling on the head node where there is one (soft): the image directory owns the
    cluster's images, which then live as long as the cluster (a head that dies takes the
    cluster with it anyway), not as long as one GPU machine."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    for node in ray.nodes():
        if node.get("Alive") and HEAD_RESOURCE in node.get("Resources", {}):
            return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node["NodeID"], soft=True)}
    return {}


def start_actors(settings, cluster: ClusterSettings):
    """Create (or find) the image directory and the workers; returns ``(directory,
    [worker handles])`` without waiting for the workers to be ready."""
    import ray

    from .images import ImageDirectory
    from .worker import SessionWorker

    gpus = float(ray.cluster_resources().get("GPU", 0))
    lifetime = actor_lifetime(cluster)
    directory = ray.remote(ImageDirectory).options(
        name=DIRECTORY_NAME, namespace=cluster.namespace, get_if_exists=True, num_cpus=0,
        max_restarts=-1, **on_the_head(), **lifetime).remote(settings.budgets()["images"])
    environment = forwarded_environment()
    task_options = {"num_cpus": cluster.job_cpus, "num_gpus": gpus_or_default(cluster.job_gpus, gpus), **environment}
    worker_options = {"num_cpus": cluster.worker_cpus, "num_gpus": gpus_or_default(cluster.worker_gpus, gpus),
                      **environment,
                      "max_restarts": -1, "max_task_retries": 0, "scheduling_strategy": "SPREAD",
                      "namespace": cluster.namespace, "get_if_exists": True, **lifetime}
    count = default_worker_count(cluster)
    nodes = max(1, sum(1 for node in ray.nodes() if node.get("Alive")))
    node_share = -(-count // nodes)  # workers on one machine (SPREAD): each takes its part of the memory
    workers = [ray.remote(SessionWorker).options(name=WORKER_NAME.format(index), **worker_options)
               .remote(settings, index, directory, task_options, node_share) for index in range(count)]
    log.info("%d session workers (%.2g GPU, %.2g CPU each), jobs as tasks with %s", count,
             worker_options["num_gpus"], worker_options["num_cpus"], task_options)
    return directory, workers


async def wait_ready(workers: List[Any], timeout_s: float = READY_TIMEOUT_S) -> List[Dict[str, Any]]:
    """Wait until every worker has started its application; their loads."""
    return list(await asyncio.wait_for(asyncio.gather(*(w.ready.remote() for w in workers)), timeout_s))


@dataclass
class WorkerState:
    handle: Any
    index: int
    load: Optional[Dict[str, Any]] = None  # None: did not answer the last time
    asked: float = 0.0
    errors: int = 0
    placing: int = 0  # claims sent here and not answered yet
    placed: int = 0  # sessions placed here since ``load`` was read
    down_since: Optional[float] = None  # when it was first found gone (None: answering)
    abandoned: Set[str] = field(default_factory=set)  # leases to end once it answers again
    probing: Optional["asyncio.Future"] = None  # the load call asking whether a gone worker is back

    def abandon(self, lease: str) -> None:
        """End this session when the worker answers again (a request of it was running
        when the worker died: whether it was applied is unknown)."""
        self.abandoned.add(lease)

    def mark_down(self, now: float) -> float:
        """Note that the worker did not answer; seconds since it was first found gone."""
        if self.down_since is None:
            self.down_since = now
        return now - self.down_since

    def sessions(self) -> int:
        return (self.load or {}).get("sessions", 0) + self.placed + self.placing


class WorkerPool:
    """The workers as one ingress sees them (by index, as in their ids)."""

    def __init__(self, workers: List[Any], clock=time.monotonic):
        self.workers = [WorkerState(handle, index) for index, handle in enumerate(workers)]
        self._clock = clock
        self._refreshing: Optional[asyncio.Future] = None

    def __len__(self) -> int:
        return len(self.workers)

    def get(self, index: int) -> Optional[WorkerState]:
        return self.workers[index] if 0 <= index < len(self.workers) else None

    async def refresh(self, force: bool = False) -> None:
        """Ask every worker for its load (at most every LOAD_TTL_S unless ``force``)."""
        if not force and self.workers and self._clock() - min(w.asked for w in self.workers) < LOAD_TTL_S:
            return
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._refresh())
        await asyncio.shield(self._refreshing)

    async def _refresh(self) -> None:
        async def ask(worker: WorkerState) -> None:
            await self._ask(worker)

        await asyncio.gather(*(ask(worker) for worker in self.workers))

    async def _ask(self, worker: WorkerState) -> bool:
        """Ask one worker for its load; whether it answered. A worker answering again
        first ends the sessions abandoned while it was gone."""
        try:
            worker.load = await asyncio.wait_for(worker.handle.load.remote(), LOAD_TIMEOUT_S)
            worker.placed = worker.errors = 0
            worker.down_since = None
        except Exception as error:  # noqa: BLE001 -- dead, restarting or overloaded: skip it
            worker.load = None
            worker.errors += 1
            log.warning("worker %d did not answer (%s)", worker.index, type(error).__name__)
        worker.asked = self._clock()
        if worker.load is not None and worker.abandoned:
            leases, worker.abandoned = sorted(worker.abandoned), set()
            try:
                await worker.handle.abandon.remote(leases)
            except Exception as error:  # noqa: BLE001 -- gone again: try when it is back
                worker.abandoned.update(leases)
                log.warning("worker %d did not end the abandoned sessions (%s)", worker.index, type(error).__name__)
                return False
        return worker.load is not None

    async def is_back(self, worker: WorkerState) -> bool:
        """Whether a worker found gone answers again (asked now; the requests arriving
        meanwhile share the one question)."""
        if worker.probing is None or worker.probing.done():
            worker.probing = asyncio.ensure_future(self._ask(worker))
        return await asyncio.shield(worker.probing)

    def by_load(self, exclude=()) -> List[WorkerState]:
        """Answering workers, fewest sessions (held and being placed) first, then lowest index."""
        alive = [w for w in self.workers if w.load is not None and w.index not in exclude]
        return sorted(alive, key=lambda w: (w.sessions() / max(1, w.load.get("max_sessions", 1)), w.index))
