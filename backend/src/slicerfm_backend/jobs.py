"""Background jobs: long work (registration, automatic segmentation) with progress and cancel.

A job is submitted by a feature's endpoint and runs on its device's job thread, one job at
a time per device in submission order. Inside, ``work(ctx)`` reports progress through
:class:`JobContext` and holds the device only one step at a time (``ctx.device_step()``),
with the same first-come-first-served lock that interactive clicks take, so a user clicking
while someone's registration runs waits for one step, not the whole job.

Job ids are unguessable (128 bits) and act as capabilities: a client needs the id (and the
server's access token, when it has one) to see or cancel a job, but no session, so a
result survives a session that expired while the job ran. Finished jobs keep their results
for ``ttl_s`` seconds. The images a job reads are pinned in the image store until it ends.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import secrets
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np

from slicerfm_client import protocol

from .errors import DomainError, EngineError, JobCancelled

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)


class Job:
    """One job's state. Fields are written by its job thread and read under the manager's lock."""

    def __init__(self, kind: str, device: str, work: Callable[["JobContext"], dict],
                 image_ids: Sequence[str], now: float, estimate_s: Optional[float] = None):
        self.id = secrets.token_urlsafe(16)
        self.kind = kind
        self.device = device
        self.estimate_s = estimate_s
        self.work = work
        self.image_ids = tuple(image_ids)
        self.created = now
        self.sequence = 0  # submission order, set by the manager
        self.started: Optional[float] = None
        self.finished: Optional[float] = None
        self.state = QUEUED
        self.stage = "queued"
        self.done = 0
        self.total = 0
        self.error: Optional[Dict[str, str]] = None
        self.result: Optional[dict] = None
        self.arrays: Dict[str, Tuple[np.ndarray, dict]] = {}
        self.cancel_requested = threading.Event()

    def describe(self, now: float, queue_position: Optional[int] = None) -> dict:
        """The status dict answered by ``GET /api/jobs/{id}`` (see docs/PROTOCOL.md)."""
        if self.started is None:
            elapsed = 0.0
        else:
            elapsed = (self.finished or now) - self.started
        return {
            "job_id": self.id, "kind": self.kind, "state": self.state, "stage": self.stage,
            "done": self.done, "total": self.total,
            "progress": (min(1.0, self.done / self.total) if self.total else
                         (1.0 if self.state == DONE else None)),
            "queue_position": queue_position, "elapsed_s": round(elapsed, 3),
            "estimate_s": None if self.estimate_s is None else round(float(self.estimate_s), 1),
            "error": self.error, "result": self.result if self.state == DONE else None,
            "arrays": sorted(self.arrays) if self.state == DONE else [],
        }


class JobContext:
    """What a job's ``work`` sees: progress, cancellation, the device, result arrays."""

    def __init__(self, job: Job, device_lock):
        self._job = job
        self._device_lock = device_lock

    @property
    def job_id(self) -> str:
        return self._job.id

    @property
    def cancelled(self) -> bool:
        return self._job.cancel_requested.is_set()

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise JobCancelled()

    def progress(self, stage: str, done: int = 0, total: int = 0) -> None:
        """Report ``done`` of ``total`` units of ``stage``; raises JobCancelled on cancel."""
        self._job.stage, self._job.done, self._job.total = str(stage), int(done), int(total)
        self.check_cancelled()

    @contextlib.contextmanager
    def device_step(self) -> Iterator[None]:
        """Hold the job's device for one step (fair with interactive work)."""
        self.check_cancelled()
        with self._device_lock:
            yield
        self.check_cancelled()

    def add_array(self, name: str, array: np.ndarray, meta: Optional[dict] = None) -> None:
        """Store a result array, downloadable as ``GET /api/jobs/{id}/arrays/{name}``."""
        self._job.arrays[str(name)] = (np.ascontiguousarray(array), dict(meta or {}))


class JobManager:
    """Queues, runs, reports and forgets jobs; one job thread per device.

    ``device_lock(device)`` gives the lock shared with interactive inference on that device.
    """

    def __init__(self, device_lock: Callable[[str], Any], max_jobs: int = 16,
                 ttl_s: float = 1800.0, clock: Callable[[], float] = time.monotonic):
        self._device_lock = device_lock
        self.max_jobs = max_jobs
        self.ttl_s = ttl_s
        self._clock = clock
        self._jobs: Dict[str, Job] = {}
        self._queues: Dict[str, "queue.Queue[Optional[Job]]"] = {}
        self._threads: List[threading.Thread] = []
        self._lock = threading.Lock()
        self._sequence = itertools.count()

    # -- submitting and running ----------------------------------------------------------

    def submit(self, kind: str, work: Callable[[JobContext], dict], device: str,
               image_ids: Sequence[str] = (), estimate_s: Optional[float] = None) -> Job:
        """Queue ``work`` on ``device``; ``server_full`` when too many jobs are pending.
        ``estimate_s``: the engine's expected running time (seconds), shown in the status."""
        with self._lock:
            self._reap_locked()
            pending = sum(1 for job in self._jobs.values() if job.state not in FINISHED)
            if pending >= self.max_jobs:
                raise DomainError(protocol.ERROR_SERVER_FULL,
                                  f"the server already has {pending} jobs waiting or running; try "
                                  "again later or ask the administrator to raise --max-jobs",
                                  retry_after_s=30)
            job = Job(kind, device, work, image_ids, self._clock(), estimate_s)
            job.sequence = next(self._sequence)
            self._jobs[job.id] = job
            self._queue_for(device).put(job)
        log.info("job %s… (%s) queued on %s", job.id[:6], kind, device)
        return job

    def _queue_for(self, device: str) -> "queue.Queue[Optional[Job]]":
        pending = self._queues.get(device)
        if pending is None:
            pending = self._queues[device] = queue.Queue()
            thread = threading.Thread(target=self._run_jobs, args=(device, pending),
                                      name=f"slicerfm-jobs-{device}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return pending

    def _run_jobs(self, device: str, pending: "queue.Queue[Optional[Job]]") -> None:
        while True:
            job = pending.get()
            if job is None:
                return
            with self._lock:  # the queued -> running step is atomic with cancel()
                if job.cancel_requested.is_set() or job.state != QUEUED:
                    continue  # cancelled while queued: already marked
                work = job.work
                job.started = self._clock()
                job.state, job.stage = RUNNING, "starting"
            self._run(job, work, JobContext(job, self._device_lock(device)))

    def _run(self, job: Job, work: Callable[[JobContext], dict], ctx: JobContext) -> None:
        try:
            result = work(ctx)
            ctx.check_cancelled()
            job.result = dict(result or {})
            job.state = DONE
        except JobCancelled:
            job.state = CANCELLED
            job.arrays.clear()
        except DomainError as error:
            job.state, job.error = FAILED, {"error": error.code, "message": error.message}
        except (EngineError, ValueError) as error:
            job.state, job.error = FAILED, {"error": protocol.ERROR_JOB_FAILED, "message": str(error)}
        except Exception as error:  # a bug: keep the server and the job thread alive
            log.exception("job %s… (%s) failed", job.id[:6], job.kind)
            job.state = FAILED
            job.error = {"error": protocol.ERROR_INTERNAL,
                         "message": f"internal error ({type(error).__name__}: {error}); the server "
                                    "log has the details"}
        finally:
            job.finished = self._clock()
            job.work = None  # drop closures over input arrays
            if job.state != DONE:
                job.arrays.clear()
            log.info("job %s… (%s) %s in %.1f s", job.id[:6], job.kind, job.state,
                     job.finished - job.started)

    # -- looking up ----------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise DomainError(protocol.ERROR_JOB_NOT_FOUND,
                              "no such job: it finished more than the result lifetime ago, the "
                              "server restarted, or the id is wrong; submit it again")
        return job

    def describe(self, job: Job) -> dict:
        with self._lock:
            position = None
            if job.state == QUEUED:
                position = sum(1 for other in self._jobs.values()
                               if other.device == job.device and other.state == QUEUED
                               and other.sequence < job.sequence)
            return job.describe(self._clock(), position)

    def cancel(self, job_id: str, stage: str = "cancelled") -> Job:
        """Ask a job to stop: a queued job is cancelled at once (its ``stage`` becomes
        ``stage``: why), a running one at its next progress report or device step.
        Cancelling a finished job changes nothing."""
        job = self.get(job_id)
        with self._lock:
            if job.state in FINISHED:
                return job
            job.cancel_requested.set()
            if job.state == QUEUED:
                job.state, job.stage = CANCELLED, stage
                job.finished = self._clock()
                job.work = None
        return job

    def array(self, job_id: str, name: str) -> Tuple[np.ndarray, dict]:
        job = self.get(job_id)
        if job.state != DONE:
            raise DomainError(protocol.ERROR_JOB_NOT_DONE,
                              f"job is {job.state}; results can be read once it is done")
        if name not in job.arrays:
            raise DomainError(protocol.ERROR_NOT_FOUND,
                              f"job has no array {name!r}; it has {', '.join(sorted(job.arrays)) or 'none'}")
        return job.arrays[name]

    def is_pending(self, job_id: str) -> bool:
        """Whether the job is queued or running (False for finished and unknown jobs)."""
        with self._lock:
            job = self._jobs.get(job_id)
            return job is not None and job.state not in FINISHED

    def images_in_use(self) -> Set[str]:
        """Image ids of queued and running jobs (pinned in the image store)."""
        with self._lock:
            return {image_id for job in self._jobs.values() if job.state not in FINISHED
                    for image_id in job.image_ids}

    # -- housekeeping --------------------------------------------------------------------

    def reap(self) -> int:
        with self._lock:
            return self._reap_locked()

    def _reap_locked(self) -> int:
        now = self._clock()
        gone = [job_id for job_id, job in self._jobs.items()
                if job.state in FINISHED and job.finished is not None and now - job.finished > self.ttl_s]
        for job_id in gone:
            del self._jobs[job_id]
        return len(gone)

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Cancel every job and stop the job threads (server shutdown)."""
        with self._lock:
            jobs = list(self._jobs.values())
            queues = list(self._queues.values())
        for job in jobs:
            if job.state not in FINISHED:
                self.cancel(job.id)
        for pending in queues:
            pending.put(None)
        for thread in self._threads:
            thread.join(timeout_s)
